"""What another party wrote is checked before it is used: registry keys and manifests, symbolic links in a
run, checkpoints and model files, non-finite numbers, hostile record lengths, a run directory reused for a
different model, special files. Each case ends in one `ytlabel: error:` line (exit 2) or a located error,
and nothing is written outside where it belongs."""

import json
import os
import shutil
import struct

import numpy as np
import pytest

from tests.helpers.cli_rule import one_error_line
from ytlabel import runs
from ytlabel.cli import main
from ytlabel.data import records, tfrecord
from ytlabel.data.reader import read_shard
from ytlabel.data.tfrecord import CorruptionReport, TFRecordWriter, masked_crc32c
from ytlabel.errors import DataError, NonFiniteError
from ytlabel.registry import Registry

# --- registry keys ----------------------------------------------------------------------------------------


@pytest.fixture
def published(fc_run, tmp_path):
    registry = tmp_path / "registry"
    Registry(str(registry)).push(fc_run, "yt8m")
    return registry


def test_pull_refuses_a_manifest_whose_keys_leave_the_version(published, tmp_path, capsys):
    manifest_path = published / "yt8m" / "1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../../payload.txt"] = {"sha256": "0" * 64, "bytes": 1}
    manifest_path.write_text(json.dumps(manifest))
    out = tmp_path / "pulled" / "deep" / "model"
    assert main(["registry", "pull", "yt8m:1", "--out", str(out), "--registry", str(published)]) == 2
    line = one_error_line(capsys)
    assert "unsafe key" in line and "'..' segments are not allowed" in line
    assert not (tmp_path / "pulled").exists() and not (tmp_path / "payload.txt").exists()


def test_serving_refuses_a_version_whose_manifest_names_a_file_outside_it(published, tmp_path):
    from ytlabel.serving.model import verify_model_dir

    version = tmp_path / "copy"
    shutil.copytree(published / "yt8m" / "1", version)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["/etc/hostname"] = {"sha256": "0" * 64, "bytes": 1}
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="must be a relative, slash-separated name"):
        verify_model_dir(str(version))


@pytest.mark.parametrize(
    "argv",
    [
        ["registry", "promote", "../other/name", "1", "--alias", "x"],
        ["registry", "promote", "yt8m", "1", "--alias", "../../x"],
        ["registry", "show", "../yt8m:1"],
    ],
)
def test_names_and_aliases_cannot_leave_the_registry(published, tmp_path, capsys, argv):
    assert main([*argv, "--registry", str(published)]) == 2
    assert "use lowercase letters, digits and '-'" in one_error_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ["registry"] and sorted(os.listdir(published)) == ["yt8m"]


def test_push_publishes_no_symbolic_link(fc_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    (tmp_path / "host-secret.txt").write_text("not the run's")
    os.remove(run / "curves.csv")
    os.symlink(tmp_path / "host-secret.txt", run / "curves.csv")
    assert main(["registry", "push", str(run), "--name", "yt8m", "--registry", str(tmp_path / "reg")]) == 2
    assert "curves.csv is not a regular file of the run (a symbolic link" in one_error_line(capsys)
    assert not (tmp_path / "reg").exists()


def test_push_publishes_nothing_reached_through_a_linked_folder(fc_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    shutil.move(run / "model", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", run / "model")  # model/ leads outside the run
    assert main(["registry", "push", str(run), "--name", "yt8m", "--registry", str(tmp_path / "reg")]) == 2
    assert "model/model.pt is not a regular file of the run" in one_error_line(capsys)
    assert not (tmp_path / "reg").exists()


def test_a_missing_local_registry_is_an_error_not_an_empty_list(tmp_path, capsys):
    assert main(["registry", "list", "--registry", f"file://{tmp_path}/typo"]) == 2
    assert f"registry file://{tmp_path}/typo does not exist" in one_error_line(capsys)


# --- loading never executes code --------------------------------------------------------------------------


class _Payload:
    """Unpickling this writes a file: what a crafted checkpoint would do with a real payload."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(synth_dir, tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    argv = [
        "train",
        "--arch",
        "fc",
        "--framework",
        "torch",
        "--data",
        os.path.join(synth_dir, "video"),
        "--out",
        str(out),
        "epochs=1",
        "batch_size=8",
        "model.head_hidden=8",
        "validation_fraction=0",
    ]
    assert main(argv) == 0
    marker = tmp_path / "code-ran"
    torch.save({"model": _Payload(str(marker))}, out / "checkpoints" / "last.pt")
    os.remove(out / "result.json")  # as if killed after its last checkpoint: the rerun resumes from it
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert f"{out}/checkpoints/last.pt: not a checkpoint this run can resume from" in line
    assert not marker.exists()
    assert (out / "checkpoints" / "state.json").exists()  # a failed resume keeps the run's progress


def test_a_crafted_model_file_is_refused(fc_run, tmp_path):
    import torch

    from ytlabel.models.predictor import load_predictor

    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    marker = tmp_path / "code-ran"
    torch.save(_Payload(str(marker)), run / "model" / "model.pt")
    with pytest.raises(runs.RunError, match="model.pt: not a model this spec can load"):
        load_predictor(str(run))
    assert not marker.exists()


# --- non-finite numbers -----------------------------------------------------------------------------------


def _shard(path, rgb_values):
    with TFRecordWriter(str(path)) as out:
        for index, rgb in enumerate(rgb_values):
            out.write(records.encode_video(f"v{index}", [1, 2], rgb, np.zeros(128, np.float32)))
    return str(path)


def test_non_finite_features_stop_where_they_enter(tmp_path, capsys):
    good, bad = np.full(1024, 0.1, np.float32), np.full(1024, 0.1, np.float32)
    bad[7] = np.nan
    shard = _shard(tmp_path / "nan.tfrecord", [good, bad, good])
    with pytest.raises(NonFiniteError) as caught:
        list(read_shard(shard))
    second = tfrecord._HEADER.size + len(records.encode_video("v0", [1, 2], good, np.zeros(128, np.float32))) + 4
    assert str(caught.value) == (
        f"{shard} at byte offset {second}: feature 'mean_rgb' holds a non-finite value (nan) at index 7"
    )
    report = CorruptionReport()
    assert [r.id for r in read_shard(shard, skip_corrupt=True, report=report)] == ["v0", "v2"]
    assert report.skipped == 1 and "non-finite" in report.problems[0]
    assert main(["data", "inspect", shard]) == 2
    assert "feature 'mean_rgb' holds a non-finite value" in one_error_line(capsys)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_diverging_loss_stops_training_naming_epoch_and_step(synth_dir, tmp_path, capsys, framework):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--arch",
                "fc",
                "--framework",
                framework,
                "--data",
                os.path.join(synth_dir, "video"),
                "--out",
                str(out),
                "epochs=2",
                "batch_size=8",
                "model.head_hidden=8",
                "validation_fraction=0",
                "optimizer=sgd",
                "learning_rate=1e30",
                "schedule=constant",
            ]
        )
        == 2
    )
    line = one_error_line(capsys)
    assert "the training loss became nan at epoch 0, step" in line or "the training loss became inf at epoch 0" in line
    assert not (out / "result.json").exists() and not (out / "model").exists()


def test_push_refuses_non_finite_metrics_and_json_stays_strict(fc_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "gap_at_20": float("nan")}))  # bare NaN, as before
    assert main(["registry", "push", str(run), "--name", "yt8m", "--registry", str(tmp_path / "reg")]) == 2
    assert "metrics.gap_at_20 not finite (NaN or infinity)" in one_error_line(capsys)
    with pytest.raises(runs.RunError, match="non-finite"):
        runs.write_metrics(str(run), {"gap_at_20": float("nan")})


def test_serving_refuses_a_model_with_non_finite_weights(fc_run, tmp_path):
    import torch

    from ytlabel.serving.server import build_model

    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    weights = torch.load(run / "model" / "model.pt", weights_only=True)
    weights = {
        key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
        for key, value in weights.items()
    }
    torch.save(weights, run / "model" / "model.pt")
    Registry(str(tmp_path / "reg")).push(str(run), "yt8m")  # its recorded metrics are finite
    Registry(str(tmp_path / "reg")).pull("yt8m:1", str(tmp_path / "pulled"))
    with pytest.raises(Exception, match="scores for a probe input are not finite; refusing to serve it"):
        build_model(str(tmp_path / "pulled"))


# --- hostile sizes, special files, reused run directories ------------------------------------------------


def test_a_hostile_record_length_is_a_located_error_never_an_allocation(tmp_path):
    length = struct.pack("<Q", 1 << 60)
    path = tmp_path / "huge.tfrecord"
    path.write_bytes(length + struct.pack("<I", masked_crc32c(length)) + b"x" * 100)
    with pytest.raises(
        DataError,
        match=f"{path} at byte offset 0: record length {1 << 60} bytes exceeds the "
        f"67108864-byte ceiling \\(YTLABEL_MAX_RECORD_BYTES\\)",
    ):
        list(read_shard(str(path)))
    report = CorruptionReport()
    assert list(read_shard(str(path), skip_corrupt=True, report=report)) == [] and report.skipped == 1
    with pytest.raises(DataError, match="exceeds the"):
        from ytlabel.data import stream

        stream.count_records([str(path)])


def test_a_fifo_named_like_a_shard_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "data" / "pipe.tfrecord"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    assert main(["data", "inspect", str(tmp_path / "data")]) == 2
    assert f"{fifo}: not a regular file" in one_error_line(capsys)


@pytest.mark.parametrize(
    "flags, width, difference",
    [
        ({"--arch": "logistic"}, [], "arch: 'fc' -> 'logistic'"),
        ({}, ["model.head_hidden=16"], "spec.head_hidden: 8 -> 16"),
        ({"--framework": "keras"}, ["model.head_hidden=8"], "framework: 'torch' -> 'keras'"),
    ],
)
def test_rerunning_into_a_run_of_another_model_is_refused(synth_dir, tmp_path, capsys, flags, width, difference):
    out = str(tmp_path / "run")

    def argv(changed: dict, model: list[str]) -> list[str]:
        chosen = {"--arch": "fc", "--framework": "torch", **changed}
        return [
            "train",
            *[x for pair in chosen.items() for x in pair],
            "--data",
            os.path.join(synth_dir, "video"),
            "--out",
            out,
            "epochs=1",
            "batch_size=8",
            "validation_fraction=0",
            *model,
        ]

    assert main(argv({}, ["model.head_hidden=8"])) == 0
    before = sorted(os.listdir(out))
    assert main(argv(flags, width)) == 2
    line = one_error_line(capsys)
    assert f"{out} holds another run (" in line and difference in line
    assert sorted(os.listdir(out)) == before


@pytest.mark.parametrize("verb", ["train", "synth", "evaluate", "report", "pull", "push"])
def test_an_out_that_is_a_file_is_one_line(fc_run, synth_dir, tmp_path, capsys, verb):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = str(blocker / "under")
    registry = tmp_path / "reg"
    if verb in ("pull",):
        Registry(str(registry)).push(fc_run, "yt8m")
    argv = {
        "train": [
            "train",
            "--arch",
            "fc",
            "--framework",
            "torch",
            "--data",
            os.path.join(synth_dir, "video"),
            "--out",
            out,
            "epochs=1",
        ],
        "synth": ["data", "synth", "--out", out, "--videos", "4"],
        "evaluate": ["evaluate", "--model", fc_run, "--data", os.path.join(synth_dir, "video"), "--out", out],
        "report": ["report", fc_run, "--out", out],
        "pull": ["registry", "pull", "yt8m:1", "--out", out, "--registry", str(registry)],
        "push": ["registry", "push", fc_run, "--name", "yt8m", "--registry", out],
    }[verb]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert str(blocker) in line
    assert blocker.read_text() == "x"


def test_evaluate_never_rewrites_a_registry_version(published, synth_dir, tmp_path, capsys):
    version = published / "yt8m" / "1"
    before = (version / "metrics.json").read_bytes()
    assert main(["evaluate", "--model", str(version), "--data", os.path.join(synth_dir, "video")]) == 2
    assert "is a registry version, whose manifest checksums its files: pass --out DIR" in one_error_line(capsys)
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(version),
                "--data",
                os.path.join(synth_dir, "video"),
                "--out",
                str(tmp_path / "metrics"),
            ]
        )
        == 0
    )
    assert (version / "metrics.json").read_bytes() == before and (tmp_path / "metrics" / "metrics.json").exists()


def test_a_keras_model_file_with_code_in_it_is_refused(fc_run, tmp_path):
    import keras

    from ytlabel.models.predictor import load_predictor

    run = tmp_path / "run"
    shutil.copytree(fc_run, run)
    spec = json.loads((run / "spec.json").read_text())
    (run / "spec.json").write_text(json.dumps({**spec, "framework": "keras"}))
    marker = str(tmp_path / "code-ran")
    inputs = keras.Input((4,))
    crafted = keras.Model(inputs, keras.layers.Lambda(lambda x: (open(marker, "w"), x)[1])(inputs))
    crafted.save(run / "model" / "model.keras")
    os.remove(marker)  # building it above ran the lambda once, here, on purpose
    with pytest.raises(runs.RunError, match="model.keras: not a Keras model this project can load safely"):
        load_predictor(str(run))
    assert not os.path.exists(marker)
