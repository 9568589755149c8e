import pytest

from ytlabel.config import load_config, preset_path
from ytlabel.errors import YtlabelError


def _load(*overrides, preset=None, arch="bilstm"):
    return load_config(arch, "torch", "data", "out", preset, overrides)


def test_overrides_are_typed_and_beat_the_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("epochs: 7\nlearning_rate: 0.01\nmodel:\n  hidden: 32\n")
    config = _load("epochs=2", "amp=false", "encoder=none", "model.layers=1", preset=str(preset))
    assert (config.epochs, config.learning_rate, config.amp, config.encoder) == (2, 0.01, False, None)
    assert config.model == {"hidden": 32, "layers": 1}
    assert (config.spec().hidden, config.spec().layers) == (32, 1)


def test_fc_stream_lstm_parts_take_their_own_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("model:\n  fc:\n    dropout: 0.25\n  streams:\n    layers: 2\n")
    config = _load(
        "model.fc.head_hidden=8",
        "model.streams.rgb_hidden=4",
        "model.num_classes=10",
        preset=str(preset),
        arch="fc_stream_lstm",
    )
    assert config.model == {
        "fc": {"dropout": 0.25, "head_hidden": 8},
        "streams": {"layers": 2, "rgb_hidden": 4},
        "num_classes": 10,
    }
    spec = config.spec()
    assert (spec.fc.head_hidden, spec.fc.dropout, spec.fc.num_classes) == (8, 0.25, 10)
    assert (spec.streams.rgb_hidden, spec.streams.audio_hidden, spec.streams.layers) == (4, 64, 2)
    with pytest.raises(YtlabelError, match="unknown setting 'model.fc.hidden' .* known: \\['model.fc.audio_hidden'"):
        _load("model.fc.hidden=8", arch="fc_stream_lstm")
    with pytest.raises(YtlabelError, match="unknown setting 'model.fc.num_classes'"):  # the parts share the outer one
        _load("model.fc.num_classes=8", arch="fc_stream_lstm")
    with pytest.raises(ValueError, match="model.streams.layers='x': expected int"):
        _load("model.streams.layers=x", arch="fc_stream_lstm")


@pytest.mark.parametrize(
    "override, message",
    [
        ("epoch=2", "unknown setting 'epoch' \\(command line\\); did you mean 'epochs'\\?"),
        ("model.widht=3", "unknown setting 'model.widht' \\(command line\\) for bilstm; known: \\['model.dropout'"),
        ("arch=fc", "unknown setting 'arch' \\(command line\\); set it with its --flag"),
        ("epochs", "override 'epochs': expected key=value"),
    ],
)
def test_unknown_keys_are_named(override, message):
    with pytest.raises(YtlabelError, match=message):
        _load(override)


@pytest.mark.parametrize(
    "override, message",
    [
        ("epochs=0", "epochs=0: must be >= 1"),
        ("epochs=two", "epochs='two': expected int"),
        ("optimizer=rmsprop", "optimizer='rmsprop': choose one of \\('adam', 'sgd'\\)"),
        ("model.hidden=1.5", "model.hidden='1.5': expected int"),
        ("amp=maybe", "amp='maybe': expected bool"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        _load(override)


def test_preset_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_sise: 3\n")
    with pytest.raises(YtlabelError, match=f"unknown setting 'batch_sise' \\({bad}\\); did you mean 'batch_size'"):
        _load(preset=str(bad))
    with pytest.raises(YtlabelError, match="no shipped preset of that name"):
        _load(preset="nope")


def test_every_architecture_ships_a_preset_that_loads_and_names_its_command():
    from ytlabel.models.spec import ARCHITECTURES

    for arch in ARCHITECTURES:
        path = preset_path(arch)
        header = open(path).readline()
        assert header.startswith(f"# ytlabel train --arch {arch} --framework ") and f"--config {arch}" in header
        for framework in ("torch", "keras"):
            assert load_config(arch, framework, "d", "o", arch).arch == arch


def test_the_fc_preset_turns_on_gating_and_input_dropout():
    spec = load_config("fc", "keras", "d", "o", "fc").spec()
    assert (spec.gating, spec.input_dropout, spec.dropout, spec.head_hidden) == (True, 0.2, 0.5, 2048)


def test_a_setting_one_framework_cannot_honour_is_refused_not_ignored():
    assert load_config("fc", "torch", "data", "out", None, ["checkpoint_every_steps=5"]).checkpoint_every_steps == 5
    with pytest.raises(YtlabelError, match="checkpoint_every_steps=5: checkpoints within an epoch are the PyTorch"):
        load_config("fc", "keras", "data", "out", None, ["checkpoint_every_steps=5"])
