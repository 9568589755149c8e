"""Frame level: per-frame [rgb, audio], stacked bidirectional LSTM, masked mean pooling, head."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.kinds import FRAME
from ytlabel.models.spec import BiLSTMSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, dense, lstm, masked_mean, run_lstm


class BiLSTM(nn.Module):
    level = FRAME

    def __init__(self, spec: BiLSTMSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        rgb, audio = self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM)
        self.lstm = lstm(rgb + audio, spec.hidden, spec.layers, bidirectional=True)
        self.dropout = nn.Dropout(spec.dropout)
        self.logits = dense(2 * spec.hidden, spec.num_classes, output_bias(spec.num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
        rgb, audio = self.inputs(batch["rgb"], batch["audio"])
        sequence = run_lstm(self.lstm, torch.cat([rgb, audio], dim=-1), batch["num_frames"], last_only=False)
        return self.logits(self.dropout(masked_mean(sequence, batch["num_frames"])))  # (batch, 2H) pooled
