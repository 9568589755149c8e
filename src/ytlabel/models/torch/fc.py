"""Video level: separate RGB and audio towers, concatenated, an MLP head."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.kinds import VIDEO
from ytlabel.models.spec import FCSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, batch_norm, dense


class Tower(nn.Module):
    """One modality's optional dense -> [batch norm] -> relu; width 0 passes the features through."""

    def __init__(self, inputs: int, width: int, norm):
        super().__init__()
        self.width = width or inputs
        self.tower = dense(inputs, width) if width else nn.Identity()
        self.tower_norm = norm(width) if width else nn.Identity()
        self.activation = nn.ReLU() if width else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.tower_norm(self.tower(features)))


class FCClassifier(nn.Module):
    """The towers and head on already-encoded (batch, rgb_in) and (batch, audio_in) features.

    With `spec.batch_norm`: inputs are batch-normalised, and every hidden layer is dense -> batch norm -> relu.
    """

    def __init__(self, spec: FCSpec, rgb_in: int, audio_in: int):
        super().__init__()
        norm = batch_norm if spec.batch_norm else (lambda features: nn.Identity())
        self.rgb_input_norm, self.audio_input_norm = norm(rgb_in), norm(audio_in)
        self.input_dropout = nn.Dropout(spec.input_dropout)
        self.rgb = Tower(rgb_in, spec.rgb_hidden, norm)
        self.audio = Tower(audio_in, spec.audio_hidden, norm)
        self.head_hidden = dense(self.rgb.width + self.audio.width, spec.head_hidden)
        self.head_hidden_norm = norm(spec.head_hidden)
        self.gating = spec.gating
        if spec.gating:
            self.gate = dense(spec.head_hidden, spec.head_hidden)
            self.gate_norm = norm(spec.head_hidden)
        self.dropout = nn.Dropout(spec.dropout)
        self.logits = dense(spec.head_hidden, spec.num_classes, output_bias(spec.num_classes))

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        rgb, audio = self.input_dropout(self.rgb_input_norm(rgb)), self.input_dropout(self.audio_input_norm(audio))
        towers = torch.cat([self.rgb(rgb), self.audio(audio)], dim=-1)
        hidden = torch.relu(self.head_hidden_norm(self.head_hidden(towers)))
        if self.gating:
            hidden = hidden * torch.sigmoid(self.gate_norm(self.gate(hidden)))
        return self.logits(self.dropout(hidden))


class FC(nn.Module):
    level = VIDEO

    def __init__(self, spec: FCSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        self.fc = FCClassifier(spec, *self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
        return self.fc(*self.inputs(batch["rgb"], batch["audio"]))
