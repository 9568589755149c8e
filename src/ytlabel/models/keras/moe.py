"""Starter baseline: per-class mixture of logistic experts with a softmax gate (see the torch twin)."""

import keras
from keras import layers, ops

from ytlabel.kinds import VIDEO
from ytlabel.models.keras.layers import encode_inputs, model_inputs
from ytlabel.models.spec import MoeSpec, output_bias


def build(spec: MoeSpec) -> keras.Model:
    """rgb (batch, 1024), audio (batch, 128) -> logits (batch, classes)."""
    inputs = model_inputs(VIDEO)
    rgb, audio = encode_inputs(spec.encoder, inputs["rgb"], inputs["audio"])
    features = ops.concatenate([rgb, audio], axis=-1)
    classes, mixtures = spec.num_classes, spec.mixtures
    gates = layers.Dense(classes * (mixtures + 1), name="gates")(features)
    experts = layers.Dense(
        classes * mixtures, name="experts", bias_initializer=keras.initializers.Constant(output_bias(spec.num_classes))
    )(features)
    log_gates = ops.log_softmax(ops.reshape(gates, (-1, classes, mixtures + 1)), axis=-1)
    experts = ops.reshape(experts, (-1, classes, mixtures))
    expert_gates, null_gate = log_gates[..., :mixtures], log_gates[..., mixtures:]
    log_yes = ops.logsumexp(expert_gates + ops.log_sigmoid(experts), axis=-1)
    log_no = ops.logsumexp(ops.concatenate([null_gate, expert_gates + ops.log_sigmoid(-experts)], axis=-1), axis=-1)
    return keras.Model(inputs, log_yes - log_no, name="moe")
