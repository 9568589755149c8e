"""Same spec -> same parameter count; weights moved across frameworks -> same logits (<= 1e-4)."""

import numpy as np
import pytest
import torch

from tests.helpers.model_helpers import tiny_spec
from ytlabel.models import keras as keras_models
from ytlabel.models import parity
from ytlabel.models import spec as S
from ytlabel.models import torch as torch_models
from ytlabel.models.keras import layers as keras_layers
from ytlabel.models.torch import layers as torch_layers


def test_transfer_both_ways_gives_the_same_logits(arch):
    result = parity.check(arch, tiny_spec(arch), seed=3)
    assert result.torch_params == result.keras_params > 0
    assert result.max_abs_diff <= 1e-4 and result.max_abs_diff_back <= 1e-4


def test_transfer_is_lossless(arch):
    torch.manual_seed(0)
    model = torch_models.build(arch, tiny_spec(arch))
    weights = torch_layers.export_weights(model)
    keras_model = keras_models.build(arch, tiny_spec(arch))
    keras_layers.import_weights(keras_model, weights)
    back = keras_layers.export_weights(keras_model)
    assert set(back) == set(weights)
    for key in weights:
        np.testing.assert_array_equal(back[key], weights[key], err_msg=key)


def test_mismatched_weights_are_refused():
    model = torch_models.build("fc", tiny_spec("fc"))
    weights = torch_layers.export_weights(model)
    weights["fc_logits.kernel"] = weights["fc_logits.kernel"][:, :3]
    with pytest.raises(ValueError, match="fc_logits.kernel: shape \\(6, 3\\), model expects \\(6, 7\\)"):
        torch_layers.import_weights(model, weights)
    del weights["fc_logits.bias"]
    with pytest.raises(ValueError, match="missing \\['fc_logits.bias'\\]"):
        keras_layers.import_weights(keras_models.build("fc", tiny_spec("fc")), weights)


@pytest.mark.parametrize("arch", ["bilstm", "stream_lstm", "fc_stream_lstm"])
def test_padding_does_not_change_the_output(arch):
    torch.manual_seed(1)
    model = torch_models.build(arch, tiny_spec(arch))
    keras_model = keras_models.build(arch, tiny_spec(arch))
    keras_layers.import_weights(keras_model, torch_layers.export_weights(model))
    short = parity.sample_batch("frame", batch=4, frames=6, seed=5)
    padded = {key: value.copy() for key, value in short.items()}
    for key in ("rgb", "audio"):
        extra = np.full((4, 14, short[key].shape[-1]), 7.0, np.float32)  # garbage, not zeros, past the end
        padded[key] = np.concatenate([short[key], extra], axis=1)
    for logits in (parity.torch_logits, parity.keras_logits):
        framework_model = model if logits is parity.torch_logits else keras_model
        np.testing.assert_allclose(logits(framework_model, short), logits(framework_model, padded), atol=1e-6)


def test_lstm_initialisation_matches_keras_defaults():
    model = torch_models.build("bilstm", tiny_spec("bilstm"))
    hidden = 5
    bias = model.lstm.bias_ih_l0.detach().numpy()
    assert bias.tolist() == [0.0] * hidden + [1.0] * hidden + [0.0] * (2 * hidden)  # unit forget bias
    assert not model.lstm.bias_hh_l0.requires_grad and model.lstm.bias_hh_l0.abs().sum() == 0
    recurrent = model.lstm.weight_hh_l0.detach().numpy()  # (4H, H), orthogonal columns
    np.testing.assert_allclose(recurrent.T @ recurrent, np.eye(hidden), atol=1e-5)
    limit = np.sqrt(6.0 / (1152 + 4 * hidden))  # Glorot over Keras's (in, 4H) kernel
    kernel = model.lstm.weight_ih_l0.detach().numpy()
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


def test_dense_initialisation_matches_keras_defaults():
    model = torch_models.build("fc", S.make_spec("fc"))
    weight = model.fc.head_hidden.weight.detach().numpy()  # (2048, 1152): no towers by default
    limit = np.sqrt(6.0 / (1152 + 2048))
    assert np.abs(weight).max() <= limit and weight.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert model.fc.head_hidden.bias.abs().sum().item() == 0.0


def test_batch_norm_statistics_transfer_and_update_alike():
    """Moving statistics learnt in PyTorch give the same inference logits in Keras, and one training
    batch moves them the same way in both (PyTorch's running variance uses the unbiased batch
    variance, Keras the biased one: they differ by n/(n-1))."""
    spec = tiny_spec("fc")
    torch.manual_seed(4)
    model = torch_models.build("fc", spec)
    model.train()
    batches = [parity.sample_batch("video", batch=16, frames=1, seed=seed) for seed in range(5)]
    with torch.no_grad():
        for batch in batches:
            model({key: torch.from_numpy(value) for key, value in batch.items()})
    weights = torch_layers.export_weights(model)
    assert np.abs(weights["fc_rgb_input_norm.moving_mean"]).max() > 0.01  # the statistics really moved
    keras_model = keras_models.build("fc", spec)
    keras_layers.import_weights(keras_model, weights)
    model.eval()
    probe = parity.sample_batch("video", batch=4, frames=1, seed=9)
    np.testing.assert_allclose(parity.torch_logits(model, probe), parity.keras_logits(keras_model, probe), atol=1e-4)

    model.train()
    with torch.no_grad():
        model({key: torch.from_numpy(value) for key, value in batches[0].items()})
    keras_model(batches[0], training=True)
    after_torch, after_keras = torch_layers.export_weights(model), keras_layers.export_weights(keras_model)
    np.testing.assert_allclose(
        after_keras["fc_rgb_input_norm.moving_mean"], after_torch["fc_rgb_input_norm.moving_mean"], atol=1e-6
    )
    start = weights["fc_rgb_input_norm.moving_variance"]
    torch_step = after_torch["fc_rgb_input_norm.moving_variance"] - 0.9 * start  # 0.1 * unbiased batch variance
    keras_step = after_keras["fc_rgb_input_norm.moving_variance"] - 0.9 * start  # 0.1 * biased batch variance
    np.testing.assert_allclose(keras_step * 16 / 15, torch_step, rtol=1e-4, atol=1e-7)


def test_fc_with_context_gating_and_input_dropout_keeps_parity():
    spec = S.make_spec("fc", num_classes=11, head_hidden=6, gating=True, input_dropout=0.2)
    result = parity.check("fc", spec, seed=5)
    assert (
        result.torch_params
        == result.keras_params
        == (
            (1024 + 128) * 2  # input batch norms: gamma, beta
            + (1152 * 6 + 6)
            + 2 * 6  # hidden layer and its batch norm
            + (6 * 6 + 6)
            + 2 * 6  # the gate and its batch norm
            + (6 * 11 + 11)
        )
    )  # output
    assert result.max_abs_diff <= 1e-4 and result.max_abs_diff_back <= 1e-4
    weights = torch_layers.export_weights(torch_models.build("fc", spec))
    assert {"fc_gate.kernel", "fc_gate.bias", "fc_gate_norm.gamma"} <= set(weights)
