"""Video level: separate RGB and audio towers, concatenated, an MLP head."""

import keras
from keras import layers, ops

from ytlabel.models.keras.layers import encode_inputs, model_inputs
from ytlabel.models.spec import FCSpec, output_bias


def fc_classifier(spec: FCSpec, rgb, audio, prefix: str = "fc"):
    """Towers and head on already-encoded (batch, rgb_in) and (batch, audio_in) features -> logits."""
    towers = ops.concatenate([
        layers.Dense(spec.rgb_hidden, activation="relu", name=f"{prefix}_rgb_tower")(rgb),
        layers.Dense(spec.audio_hidden, activation="relu", name=f"{prefix}_audio_tower")(audio),
    ], axis=-1)
    hidden = layers.Dense(spec.head_hidden, activation="relu", name=f"{prefix}_head_hidden")(towers)
    hidden = layers.Dropout(spec.dropout, name=f"{prefix}_dropout")(hidden)
    return layers.Dense(spec.num_classes, name=f"{prefix}_logits", bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes)))(hidden)


def build(spec: FCSpec) -> keras.Model:
    """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
    inputs = model_inputs("video")
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    return keras.Model(inputs, fc_classifier(spec, rgb, audio), name="fc")
