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


@pytest.mark.parametrize("override, message", [
    ("epoch=2", "unknown setting 'epoch' \\(command line\\); did you mean 'epochs'\\?"),
    ("model.widht=3", "unknown setting 'model.widht' \\(command line\\) for bilstm; known: \\['model.dropout'"),
    ("arch=fc", "unknown setting 'arch' \\(command line\\); set it with its --flag"),
    ("epochs", "override 'epochs': expected key=value"),
])
def test_unknown_keys_are_named(override, message):
    with pytest.raises(YtlabelError, match=message):
        _load(override)


@pytest.mark.parametrize("override, message", [
    ("epochs=0", "epochs=0: must be >= 1"),
    ("epochs=two", "epochs='two': expected int"),
    ("optimizer=rmsprop", "optimizer='rmsprop': choose one of \\('adam', 'sgd'\\)"),
    ("model.hidden=1.5", "model.hidden='1.5': expected int"),
    ("amp=maybe", "amp='maybe': expected bool"),
])
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
