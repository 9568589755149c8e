"""Frame level, two streams: RGB and audio LSTMs, each with its own classifier, probabilities averaged."""

import keras
from keras import layers

from ytlabel.kinds import FRAME
from ytlabel.models.keras.layers import average_probabilities, encode_inputs, frame_mask, lstm_stack, model_inputs
from ytlabel.models.spec import StreamLSTMSpec, output_bias


def streams(spec: StreamLSTMSpec, rgb, audio, num_frames, prefix: str = "streams") -> list:
    """[rgb logits, audio logits] from each stream's output at the last real frame."""
    mask = frame_mask(num_frames, rgb)
    rgb_state = lstm_stack(f"{prefix}_rgb_lstm", rgb, mask, spec.rgb_hidden, spec.layers, False, last_only=True)
    audio_state = lstm_stack(f"{prefix}_audio_lstm", audio, mask, spec.audio_hidden, spec.layers, False, last_only=True)
    return [
        layers.Dense(
            spec.num_classes,
            name=f"{prefix}_rgb_logits",
            bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes)),
        )(rgb_state),
        layers.Dense(
            spec.num_classes,
            name=f"{prefix}_audio_logits",
            bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes)),
        )(audio_state),
    ]


def build(spec: StreamLSTMSpec) -> keras.Model:
    """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
    inputs = model_inputs(FRAME)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    logits = average_probabilities(streams(spec, rgb, audio, inputs["num_frames"]))
    return keras.Model(inputs, logits, name="stream_lstm")
