import os

import pytest

import ytlabel.models
from ytlabel.models import keras as keras_models
from ytlabel.models import spec as S
from ytlabel.models import torch as torch_models


def test_registry_is_complete_in_both_frameworks():
    root = os.path.dirname(ytlabel.models.__file__)
    for arch in S.ARCHITECTURES:
        assert os.path.isfile(os.path.join(root, "torch", f"{arch}.py")), arch
        assert os.path.isfile(os.path.join(root, "keras", f"{arch}.py")), arch
    assert set(torch_models.BUILDERS) == set(keras_models.BUILDERS) == set(S.ARCHITECTURES)
    assert {name for name, entry in S.ARCHITECTURES.items() if entry.level == "frame"} == {
        "bilstm",
        "stream_lstm",
        "fc_stream_lstm",
    }


@pytest.mark.parametrize(
    "arch, fields, message",
    [
        ("fc", {"widht": 3}, "fc: unknown setting\\(s\\) \\['widht'\\]"),
        ("cnn", {}, "unknown architecture 'cnn'"),
        ("bilstm", {"hidden": 0}, "BiLSTMSpec.hidden=0: must be a positive integer"),
        ("fc", {"dropout": 1.0}, "FCSpec.dropout=1.0: must be in \\[0, 1\\)"),
        ("stream_lstm", {"fusion": "concat"}, "fusion='concat': only 'average' is implemented"),
    ],
)
def test_spec_errors_name_the_field(arch, fields, message):
    with pytest.raises(ValueError, match=message):
        S.make_spec(arch, **fields)


def test_fc_stream_lstm_parts_follow_the_outer_spec():
    spec = S.make_spec("fc_stream_lstm", num_classes=11)
    assert spec.fc.num_classes == spec.streams.num_classes == 11
    with pytest.raises(ValueError, match="num_classes and encoder must match"):
        S.FCStreamLSTMSpec(num_classes=11)
    narrow = S.make_spec("fc_stream_lstm", num_classes=11, fc={"head_hidden": 8}, streams={"layers": 2})
    assert (narrow.fc.head_hidden, narrow.fc.num_classes, narrow.streams.layers, narrow.streams.num_classes) == (
        8,
        11,
        2,
        11,
    )
    with pytest.raises(ValueError, match="fc_stream_lstm.streams: unknown setting\\(s\\) \\['hidden'\\]"):
        S.make_spec("fc_stream_lstm", streams={"hidden": 8})


def test_default_parameter_counts_follow_the_spec_arithmetic():
    from ytlabel.models.torch.layers import trainable_parameters

    def dense(i, o):
        return i * o + o

    def norm(features):  # gamma and beta train; the moving statistics do not
        return 2 * features

    def lstm(i, h):
        return 4 * h * (i + h) + 4 * h

    c = 3862
    expected = {
        "logistic": dense(1152, c),
        "moe": dense(1152, 3 * c) + dense(1152, 2 * c),
        "fc": norm(1024) + norm(128) + dense(1152, 2048) + norm(2048) + dense(2048, c),
        "bilstm": 2 * lstm(1152, 256) + 2 * lstm(512, 256) + dense(512, c),
        "stream_lstm": lstm(1024, 256) + dense(256, c) + lstm(128, 64) + dense(64, c),
    }
    expected["fc_stream_lstm"] = expected["fc"] + expected["stream_lstm"]
    for arch, count in expected.items():
        assert trainable_parameters(torch_models.build(arch, S.make_spec(arch))) == count, arch
        assert count < 60_000_000
