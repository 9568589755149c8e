"""Frame level: per-frame [rgb, audio], stacked bidirectional LSTM, masked mean pooling, head."""

import keras
from keras import layers, ops

from ytlabel.kinds import FRAME
from ytlabel.models.keras.layers import encode_inputs, frame_mask, lstm_stack, masked_mean, model_inputs
from ytlabel.models.spec import BiLSTMSpec, output_bias


def build(spec: BiLSTMSpec) -> keras.Model:
    """rgb (batch, time, 1024), audio (batch, time, 128), num_frames (batch,) -> (batch, classes)."""
    inputs = model_inputs(FRAME)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    frames = ops.concatenate([rgb, audio], axis=-1)
    mask = frame_mask(inputs["num_frames"], frames)
    sequence = lstm_stack("lstm", frames, mask, spec.hidden, spec.layers, bidirectional=True, last_only=False)
    pooled = masked_mean(sequence, inputs["num_frames"])  # (batch, 2H)
    pooled = layers.Dropout(spec.dropout, name="dropout")(pooled)
    return keras.Model(
        inputs,
        layers.Dense(
            spec.num_classes, name="logits", bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes))
        )(pooled),
        name="bilstm",
    )
