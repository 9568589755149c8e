"""Video level: separate RGB and audio towers, concatenated, an MLP head."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.models.spec import FCSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, batch_norm, dense


class FCClassifier(nn.Module):
    """The towers and head on already-encoded (batch, rgb_in) and (batch, audio_in) features.

    With `spec.batch_norm`: inputs are batch-normalised, and every hidden layer is dense -> batch norm -> relu.
    """

    def __init__(self, spec: FCSpec, rgb_in: int, audio_in: int):
        super().__init__()
        norm = batch_norm if spec.batch_norm else (lambda features: nn.Identity())
        self.rgb_norm, self.audio_norm = norm(rgb_in), norm(audio_in)
        self.rgb_tower, self.rgb_tower_norm = dense(rgb_in, spec.rgb_hidden), norm(spec.rgb_hidden)
        self.audio_tower, self.audio_tower_norm = dense(audio_in, spec.audio_hidden), norm(spec.audio_hidden)
        self.head_hidden = dense(spec.rgb_hidden + spec.audio_hidden, spec.head_hidden)
        self.head_hidden_norm = norm(spec.head_hidden)
        self.dropout = nn.Dropout(spec.dropout)
        self.logits = dense(spec.head_hidden, spec.num_classes, output_bias(spec.num_classes))

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        rgb = torch.relu(self.rgb_tower_norm(self.rgb_tower(self.rgb_norm(rgb))))
        audio = torch.relu(self.audio_tower_norm(self.audio_tower(self.audio_norm(audio))))
        hidden = torch.relu(self.head_hidden_norm(self.head_hidden(torch.cat([rgb, audio], dim=-1))))
        return self.logits(self.dropout(hidden))


class FC(nn.Module):
    level = "video"

    def __init__(self, spec: FCSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        self.fc = FCClassifier(spec, *self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
        return self.fc(*self.inputs(batch["rgb"], batch["audio"]))
