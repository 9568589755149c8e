"""A run directory never lies: it records what it is (spec, every setting, the data), a rerun either continues
exactly that run or is refused naming the first difference with nothing changed, --force starts over, and a
start that fails leaves nothing behind."""

import glob
import hashlib
import json
import logging
import os
import shutil

import pytest

from tests.helpers.cli_rule import one_error_line
from ytlabel.cli import main


def _argv(data: str, out: str, *settings: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "train",
        "--arch",
        "fc",
        "--framework",
        "torch",
        "--data",
        data,
        "--out",
        out,
        *extra,
        "epochs=2",
        "batch_size=8",
        "model.head_hidden=8",
        "validation_fraction=0",
        *settings,
    ]


def _contents(folder) -> dict[str, str]:
    """Every file under `folder` with its sha256 (TensorBoard event files included)."""
    return {
        os.path.relpath(path, folder): hashlib.sha256(open(path, "rb").read()).hexdigest()
        for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
        if os.path.isfile(path)
    }


@pytest.fixture(scope="module")
def finished(synth_dir, tmp_path_factory) -> tuple[str, str]:
    """A finished 2-epoch fc run (the fc preset, the default) on the 3 synthetic video shards."""
    out = str(tmp_path_factory.mktemp("integrity") / "run")
    assert main(_argv(os.path.join(synth_dir, "video"), out)) == 0
    return os.path.join(synth_dir, "video"), out


def test_the_run_records_its_data_and_every_setting(finished):
    _, out = finished
    record = json.load(open(os.path.join(out, "data.json")))
    assert record["train"] == [
        {"shard": "synth-00000-of-00003.tfrecord", "videos": 8},
        {"shard": "synth-00001-of-00003.tfrecord", "videos": 8},
        {"shard": "synth-00002-of-00003.tfrecord", "videos": 8},
    ]
    assert record["validation"] == [] and record["videos"] == 24 and record["shards"] == 3
    assert record["sha256"] == json.load(open(os.path.join(out, "result.json")))["dataset"]["sha256"]
    import yaml

    config = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    # the fc preset applied without --config: cosine schedule, L2-normalised inputs, gating
    assert (config["schedule"], config["l2_normalize"], config["model"]["gating"]) == ("cosine", True, True)


@pytest.mark.parametrize(
    "change, first_difference",
    [
        (["epochs=1", "learning_rate=0.1"], "epochs: 2 -> 1"),
        (["learning_rate=0.1"], "learning_rate: 0.001 -> 0.1"),
        (["epochs=3"], "epochs: 2 -> 3"),  # more epochs under the cosine schedule would be another run
        (["seed=1"], "seed: 0 -> 1"),
        ([], "training data: '3 shards, 24 videos"),  # one shard of the three: see `one_shard` below
    ],
    ids=["the-issue", "learning-rate", "cosine-epochs", "seed", "other-data"],
)
def test_a_rerun_that_differs_is_refused_and_changes_nothing(finished, capsys, change, first_difference):
    data, out = finished
    if not change:
        data = os.path.join(data, "synth-00000-of-00003.tfrecord")
    before = _contents(out)
    assert main(_argv(data, out, *change)) == 2
    line = one_error_line(capsys)
    assert f"{out} holds another run ({first_difference}" in line
    assert "pass --force to start over in it, or a new --out" in line
    assert _contents(out) == before


def test_the_same_rerun_leaves_a_finished_run_as_it_is(finished, caplog):
    caplog.set_level(logging.INFO)
    data, out = finished
    before = _contents(out)
    assert main(_argv(data, out, "metrics_port=0", "read_ahead=2")) == 0  # watching it differently is the same run
    assert "already holds this run, finished; nothing to train" in caplog.text
    assert _contents(out) == before


def test_force_starts_over_and_the_record_says_what_trained(finished, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data, out = finished
    copy = str(tmp_path / "run")
    shutil.copytree(out, copy)
    assert main(_argv(data, copy, "learning_rate=0.01", extra=("--force",))) == 0
    assert "--force: removed what" in caplog.text
    assert json.load(open(os.path.join(copy, "result.json")))["learning_rate"] == 0.01
    assert len(glob.glob(os.path.join(copy, "tensorboard", "train", "events.*"))) == 1  # the old events are gone


def test_force_refuses_a_folder_that_is_not_a_run(synth_dir, tmp_path, capsys):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(_argv(os.path.join(synth_dir, "video"), str(folder), extra=("--force",))) == 2
    assert "holds files but no spec.json, so it is not a run directory; refusing to empty it" in one_error_line(capsys)
    assert os.listdir(folder) == ["notes.txt"]


def test_more_epochs_continue_a_constant_schedule_run_as_if_asked_from_the_start(synth_dir, tmp_path):
    data = os.path.join(synth_dir, "video")
    constant = ("--config", "none")
    assert main(_argv(data, str(tmp_path / "short"), "epochs=1", extra=constant)) == 0
    assert main(_argv(data, str(tmp_path / "short"), "epochs=2", extra=constant)) == 0
    assert main(_argv(data, str(tmp_path / "long"), extra=constant)) == 0
    short, long = (json.load(open(tmp_path / name / "result.json")) for name in ("short", "long"))
    assert short["epochs"] == long["epochs"] == 2
    import torch

    first, second = (
        torch.load(tmp_path / name / "model" / "model.pt", weights_only=True) for name in ("short", "long")
    )
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("case", ["missing-data", "level-mismatch"])
@pytest.mark.parametrize("folder_existed", [False, True], ids=["new-folder", "empty-folder"])
def test_a_failed_start_leaves_nothing_behind(synth_dir, tmp_path, capsys, case, folder_existed):
    out = tmp_path / "run"
    if folder_existed:
        out.mkdir()
    data = str(tmp_path / "no-such-shards") if case == "missing-data" else os.path.join(synth_dir, "frame")
    assert main(_argv(data, str(out))) == 2
    one_error_line(capsys)
    assert out.exists() == folder_existed
    if folder_existed:
        assert os.listdir(out) == []


def test_a_run_record_round_trips_and_names_its_first_difference(tmp_path):
    from ytlabel.runs import RunDir
    from ytlabel.training.run_record import RunRecord

    data = {"train": [{"shard": "a.tfrecord", "videos": 8}], "validation": ["v.tfrecord"], "sha256": "ab" * 32}
    record = RunRecord(spec={"arch": "fc", "spec": {"hidden": (8, 4)}}, settings={"lr": 0.1, "out": "x"}, data=data)
    run = RunDir(str(tmp_path / "run"))
    record.write(run)
    stored = RunRecord.read(run)
    assert stored.spec == {"arch": "fc", "spec": {"hidden": [8, 4]}}  # as it reads back: tuples are lists
    assert stored.first_difference(record) is None
    assert stored.first_difference(RunRecord({"arch": "fc", "spec": {"hidden": (8, 2)}}, {"lr": 0.2}, data)) == (
        "spec.hidden: [8, 4] -> [8, 2]"  # the model is compared first
    )
    moved = RunRecord(record.spec, {"lr": 0.1, "out": "y"}, data)
    assert stored.first_difference(moved) == "out: 'x' -> 'y'"
    assert stored.first_difference(moved, ignored_settings=("out",)) is None
    fewer = RunRecord(record.spec, record.settings, {**data, "train": []})
    assert stored.first_difference(fewer) == (
        f"training data: '1 shards, 8 videos, sha256 {'ab' * 6}' -> '0 shards, 0 videos, sha256 {'ab' * 6}'"
    )
    os.remove(os.path.join(run.local, "data.json"))  # a run from before data.json: its data is not compared
    assert RunRecord.read(run).data is None and RunRecord.read(run).first_difference(fewer) is None
