"""Building blocks shared by the Keras architectures, mirroring `models/torch/layers.py`.

Keras's default initialisers are the reference (see the torch module's docstring): Dense is
Glorot-uniform with zero bias, LSTM is Glorot-uniform / orthogonal with unit forget bias. Layers carry
the same names as the PyTorch modules (dots as underscores), which is what weight transfer keys on.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers, ops

from ytlabel.data import schema
from ytlabel.features.encoder import load_encoder
from ytlabel.models.spec import VIDEO, EncoderRef
from ytlabel.models.weight_fit import check_fit


def model_inputs(level: str) -> dict[str, keras.KerasTensor]:
    """Named inputs matching the batch stream's keys."""
    if level == VIDEO:
        return {
            "rgb": keras.Input((schema.RGB_DIM,), name="rgb"),
            "audio": keras.Input((schema.AUDIO_DIM,), name="audio"),
        }
    return {
        "rgb": keras.Input((None, schema.RGB_DIM), name="rgb"),
        "audio": keras.Input((None, schema.AUDIO_DIM), name="audio"),
        "num_frames": keras.Input((), dtype="int64", name="num_frames"),
    }


def encode_inputs(ref: EncoderRef | None, rgb, audio):
    """Applies the optional expansion encoder (standardised relu(x W + b) per modality, per frame)."""
    if ref is None:
        return rgb, audio
    encoder = load_encoder(ref.path)
    coded = []
    for modality, features, kernel, bias in (
        ("rgb", rgb, encoder.rgb_kernel, encoder.rgb_bias),
        ("audio", audio, encoder.audio_kernel, encoder.audio_bias),
    ):
        dense = layers.Dense(kernel.shape[1], name=f"inputs_encoder_{modality}", trainable=ref.finetune)
        dense.build((None, kernel.shape[0]))
        dense.set_weights([kernel, bias])
        mean, std = encoder.standardisation(modality)
        # Constants, not weights: fixed statistics of the artifact, as the torch buffers.
        coded.append((ops.relu(dense(features)) - mean) / std)
    return tuple(coded)


@keras.saving.register_keras_serializable(package="ytlabel")
class FrameMask(layers.Layer):
    """(batch, time) bool, True for real frames. A layer, so the time axis may be unknown until called."""

    def call(self, frames, num_frames):
        time = ops.shape(frames)[1]
        return ops.expand_dims(ops.arange(time, dtype="int64"), 0) < ops.expand_dims(ops.cast(num_frames, "int64"), 1)


@keras.saving.register_keras_serializable(package="ytlabel")
class MaskedMean(layers.Layer):
    """Mean over the real frames: (batch, time, features) -> (batch, features).

    Takes the LSTM's Keras mask along but needs none: `num_frames` says which frames are real.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None  # the time axis is pooled away

    def call(self, frames, num_frames):
        time = ops.shape(frames)[1]
        mask = ops.expand_dims(ops.arange(time, dtype="int64"), 0) < ops.expand_dims(ops.cast(num_frames, "int64"), 1)
        weights = ops.cast(ops.expand_dims(mask, -1), frames.dtype)
        count = ops.cast(ops.maximum(num_frames, 1), frames.dtype)
        return ops.sum(frames * weights, axis=1) / ops.expand_dims(count, -1)


def frame_mask(num_frames, frames):
    return FrameMask()(frames, num_frames)


def masked_mean(frames, num_frames):
    return MaskedMean()(frames, num_frames)


def lstm_stack(name: str, frames, mask, hidden: int, count: int, bidirectional: bool, last_only: bool):
    """`count` stacked LSTM layers named {name}_l{k}; padding is masked out of the recurrence.

    Returns the last layer's whole sequence, or (unidirectional only) its output at each video's
    last real frame.
    """
    sequence = frames
    for k in range(count):
        final = k == count - 1
        cell = layers.LSTM(hidden, return_sequences=not (final and last_only), name=f"{name}_l{k}")
        if bidirectional:
            cell = layers.Bidirectional(cell, name=f"{name}_l{k}")
        sequence = cell(sequence, mask=mask)
    return sequence


def average_probabilities(logits: list):
    """Logit of the mean of sigmoid(logits), in log space (see the torch twin)."""
    stacked = ops.stack(logits)
    return ops.logsumexp(ops.log_sigmoid(stacked), axis=0) - ops.logsumexp(ops.log_sigmoid(-stacked), axis=0)


def batch_norm(name: str) -> layers.BatchNormalization:
    """Epsilon 1e-3 (Keras's default); moving averages at 0.9 per step (see models/torch/layers.py)."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=name)


# --- weight transfer in the canonical layout (see models/torch/layers.py) --------------------------
BATCH_NORM_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")  # get_weights() order


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    weights = {}
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            kernel, bias = layer.get_weights()
            weights[f"{layer.name}.kernel"], weights[f"{layer.name}.bias"] = kernel, bias
        elif isinstance(layer, layers.BatchNormalization):
            for part, value in zip(BATCH_NORM_PARTS, layer.get_weights()):
                weights[f"{layer.name}.{part}"] = value
        elif isinstance(layer, (layers.LSTM, layers.Bidirectional)):
            for direction, cell in _lstm_parts(layer):
                kernel, recurrent, bias = cell.get_weights()
                weights[f"{layer.name}.{direction}.kernel"] = kernel
                weights[f"{layer.name}.{direction}.recurrent_kernel"] = recurrent
                weights[f"{layer.name}.{direction}.bias"] = bias
    return weights


def import_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    check_fit(export_weights(model), weights)
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            layer.set_weights([weights[f"{layer.name}.kernel"], weights[f"{layer.name}.bias"]])
        elif isinstance(layer, layers.BatchNormalization):
            layer.set_weights([weights[f"{layer.name}.{part}"] for part in BATCH_NORM_PARTS])
        elif isinstance(layer, (layers.LSTM, layers.Bidirectional)):
            for direction, cell in _lstm_parts(layer):
                cell.set_weights(
                    [weights[f"{layer.name}.{direction}.{part}"] for part in ("kernel", "recurrent_kernel", "bias")]
                )


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def _lstm_parts(layer):
    if isinstance(layer, layers.Bidirectional):
        return [("fw", layer.forward_layer), ("bw", layer.backward_layer)]
    return [("fw", layer)]
