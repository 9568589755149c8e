"""Video level: separate RGB and audio towers, concatenated, an MLP head."""

import keras
from keras import layers, ops

from ytlabel.kinds import VIDEO
from ytlabel.models.keras.layers import batch_norm, encode_inputs, model_inputs
from ytlabel.models.spec import FCSpec, output_bias


def fc_classifier(spec: FCSpec, rgb, audio, prefix: str = "fc"):
    """Towers and head on already-encoded (batch, rgb_in) and (batch, audio_in) features -> logits.

    With `spec.batch_norm`: inputs are batch-normalised, and every hidden layer is dense -> batch norm -> relu.
    """

    def norm(name: str, tensor):
        return batch_norm(f"{prefix}_{name}")(tensor) if spec.batch_norm else tensor

    def hidden_layer(name: str, width: int, tensor):
        if not width:  # a tower of width 0 passes the features through
            return tensor
        return ops.relu(norm(f"{name}_norm", layers.Dense(width, name=f"{prefix}_{name}")(tensor)))

    rgb = layers.Dropout(spec.input_dropout, name=f"{prefix}_rgb_input_dropout")(norm("rgb_input_norm", rgb))
    audio = layers.Dropout(spec.input_dropout, name=f"{prefix}_audio_input_dropout")(norm("audio_input_norm", audio))
    towers = ops.concatenate(
        [
            hidden_layer("rgb_tower", spec.rgb_hidden, rgb),
            hidden_layer("audio_tower", spec.audio_hidden, audio),
        ],
        axis=-1,
    )
    hidden = hidden_layer("head_hidden", spec.head_hidden, towers)
    if spec.gating:  # context gating: hidden * sigmoid(batchnorm(W hidden + b))
        gate = norm("gate_norm", layers.Dense(spec.head_hidden, name=f"{prefix}_gate")(hidden))
        hidden = ops.multiply(hidden, ops.sigmoid(gate))
    hidden = layers.Dropout(spec.dropout, name=f"{prefix}_dropout")(hidden)
    return layers.Dense(
        spec.num_classes,
        name=f"{prefix}_logits",
        bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes)),
    )(hidden)


def build(spec: FCSpec) -> keras.Model:
    """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
    inputs = model_inputs(VIDEO)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    return keras.Model(inputs, fc_classifier(spec, rgb, audio), name="fc")
