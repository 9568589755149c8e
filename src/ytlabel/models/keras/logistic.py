"""Starter baseline: logistic regression on the concatenated video-level features."""

import keras
from keras import layers, ops

from ytlabel.kinds import VIDEO
from ytlabel.models.keras.layers import encode_inputs, model_inputs
from ytlabel.models.spec import LogisticSpec, output_bias


def build(spec: LogisticSpec) -> keras.Model:
    """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
    inputs = model_inputs(VIDEO)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    logits = layers.Dense(
        spec.num_classes, name="logits", bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes))
    )(ops.concatenate([rgb, audio], axis=-1))
    return keras.Model(inputs, logits, name="logistic")
