"""Training reads shards from S3 and writes the run to S3; a rerun resumes from the S3 checkpoint."""

import glob
import json
import os

import pytest

from ytlabel.config import load_config
from ytlabel.training.run import train

pytestmark = pytest.mark.slow


def test_train_from_and_to_s3_then_resume(s3_env, synth_dir, tmp_path, monkeypatch):
    client = s3_env
    client.make_bucket("ytlabel-train")
    for path in glob.glob(os.path.join(synth_dir, "video", "*.tfrecord")):
        client.fput_object("ytlabel-train", f"data/video/{os.path.basename(path)}", path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the local mirror of the run directory
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    settings = ["batch_size=4", "model.rgb_hidden=8", "model.head_hidden=8", "validation_fraction=0.34"]
    first = train(
        load_config(
            "fc", "torch", "s3://ytlabel-train/data/video", "s3://ytlabel-train/runs/fc", None, ["epochs=1", *settings]
        )
    )
    assert first["epochs"] == 1 and first["steps_per_epoch"] == 4
    stored = sorted(obj.object_name for obj in client.list_objects("ytlabel-train", prefix="runs/fc/", recursive=True))
    for name in ("result.json", "model/model.pt", "checkpoints/last.pt", "curves.csv", "spec.json", "config.yaml"):
        assert f"runs/fc/{name}" in stored
    remote = json.loads(client.get_object("ytlabel-train", "runs/fc/result.json").read())
    assert remote["train_loss"] == pytest.approx(first["train_loss"])

    # A new machine: the local mirror is gone, the checkpoint comes back from S3.
    import shutil

    shutil.rmtree(os.path.join(str(tmp_path), "ytlabel-runs"))
    second = train(
        load_config(
            "fc", "torch", "s3://ytlabel-train/data/video", "s3://ytlabel-train/runs/fc", None, ["epochs=2", *settings]
        )
    )
    assert second["epochs"] == 2
    curves = client.get_object("ytlabel-train", "runs/fc/curves.csv").read().decode().splitlines()
    assert [line.split(",")[0] for line in curves[1:]] == ["0", "1"]
