"""Video + frame level: `fc` on the masked mean of the (encoded) frames, plus `stream_lstm`; the three
classifiers' probabilities are averaged."""

import keras

from ytlabel.kinds import FRAME
from ytlabel.models.keras.fc import fc_classifier
from ytlabel.models.keras.layers import average_probabilities, encode_inputs, masked_mean, model_inputs
from ytlabel.models.keras.stream_lstm import streams
from ytlabel.models.spec import FCStreamLSTMSpec


def build(spec: FCStreamLSTMSpec) -> keras.Model:
    """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
    inputs = model_inputs(FRAME)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    frames = inputs["num_frames"]
    video_logits = fc_classifier(spec.fc, masked_mean(rgb, frames), masked_mean(audio, frames))
    logits = average_probabilities([video_logits, *streams(spec.streams, rgb, audio, frames)])
    return keras.Model(inputs, logits, name="fc_stream_lstm")
