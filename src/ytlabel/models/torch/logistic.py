"""Starter baseline: logistic regression on the concatenated video-level features."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.kinds import VIDEO
from ytlabel.models.spec import LogisticSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, dense


class Logistic(nn.Module):
    level = VIDEO

    def __init__(self, spec: LogisticSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        rgb, audio = self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM)
        self.logits = dense(rgb + audio, spec.num_classes, output_bias(spec.num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
        rgb, audio = self.inputs(batch["rgb"], batch["audio"])
        return self.logits(torch.cat([rgb, audio], dim=-1))
