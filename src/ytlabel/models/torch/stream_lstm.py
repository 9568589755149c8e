"""Frame level, two streams: RGB and audio LSTMs, each with its own classifier, probabilities averaged."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.kinds import FRAME
from ytlabel.models.spec import StreamLSTMSpec, output_bias
from ytlabel.models.torch.layers import InputEncoder, average_probabilities, dense, lstm, run_lstm


class Streams(nn.Module):
    """Both streams on encoded frames; returns [rgb logits, audio logits], each (batch, classes)."""

    def __init__(self, spec: StreamLSTMSpec, rgb_in: int, audio_in: int):
        super().__init__()
        self.rgb_lstm = lstm(rgb_in, spec.rgb_hidden, spec.layers, bidirectional=False)
        self.rgb_logits = dense(spec.rgb_hidden, spec.num_classes, output_bias(spec.num_classes))
        self.audio_lstm = lstm(audio_in, spec.audio_hidden, spec.layers, bidirectional=False)
        self.audio_logits = dense(spec.audio_hidden, spec.num_classes, output_bias(spec.num_classes))

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor, num_frames: torch.Tensor) -> list[torch.Tensor]:
        rgb_state = run_lstm(self.rgb_lstm, rgb, num_frames, last_only=True)  # (batch, rgb_hidden)
        audio_state = run_lstm(self.audio_lstm, audio, num_frames, last_only=True)  # (batch, audio_hidden)
        return [self.rgb_logits(rgb_state), self.audio_logits(audio_state)]


class StreamLSTM(nn.Module):
    level = FRAME

    def __init__(self, spec: StreamLSTMSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        self.streams = Streams(spec, *self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
        rgb, audio = self.inputs(batch["rgb"], batch["audio"])
        return average_probabilities(self.streams(rgb, audio, batch["num_frames"]))
