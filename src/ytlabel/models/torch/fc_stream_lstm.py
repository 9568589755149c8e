"""Video + frame level: `fc` on the masked mean of the (encoded) frames, plus `stream_lstm`; the three
classifiers' probabilities are averaged."""

import torch
from torch import nn

from ytlabel.data import schema
from ytlabel.kinds import FRAME
from ytlabel.models.spec import FCStreamLSTMSpec
from ytlabel.models.torch.fc import FCClassifier
from ytlabel.models.torch.layers import InputEncoder, average_probabilities, masked_mean
from ytlabel.models.torch.stream_lstm import Streams


class FCStreamLSTM(nn.Module):
    level = FRAME

    def __init__(self, spec: FCStreamLSTMSpec):
        super().__init__()
        self.inputs = InputEncoder(spec.encoder)
        dims = self.inputs.dims(schema.RGB_DIM, schema.AUDIO_DIM)
        self.fc = FCClassifier(spec.fc, *dims)
        self.streams = Streams(spec.streams, *dims)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
        rgb, audio = self.inputs(batch["rgb"], batch["audio"])
        frames = batch["num_frames"]
        video_logits = self.fc(masked_mean(rgb, frames), masked_mean(audio, frames))
        return average_probabilities([video_logits, *self.streams(rgb, audio, frames)])
