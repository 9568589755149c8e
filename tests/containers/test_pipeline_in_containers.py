"""The KFP pipeline under kfp.local.DockerRunner: every component runs in the pipeline image (as uid 10001,
read-only root, capabilities dropped), installs nothing when it starts, and keeps data, run_root and
registry on S3 (SeaweedFS on the host's loopback, reached with host networking), through deploy.

kfp.local mounts the pipeline root into each container at the same path, so it must be writable by the
image's user (../shared/containers.md). The train step runs with the `local` backend inside the pipeline
container (the operator is what only a cluster has); test_training_jobs.py runs the trainer images."""

import glob
import os
import re

import pytest

from ytlabel import storage
from ytlabel.platform import images
from ytlabel.registry import Registry

BUCKET = "ytlabel-kfp"
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.fixture
def keep_print():
    import builtins

    original = builtins.print
    yield
    builtins.print = original


def test_pipeline_runs_every_step_in_the_pipeline_image(engine, s3_env, tmp_path, keep_print, monkeypatch, capfd):
    from kfp import local

    from pipelines.ytlabel_pipeline import ytlabel_pipeline

    monkeypatch.setenv("DOCKER_HOST", engine.docker_host())
    client = s3_env
    client.make_bucket(BUCKET)
    for shard in sorted(glob.glob(os.path.join(ROOT, "samples", "yt8m-video", "validate000[2-5].tfrecord"))):
        storage.upload(shard, f"s3://{BUCKET}/data/video/{os.path.basename(shard)}")
    root = tmp_path / "kfp"
    root.mkdir()
    os.chmod(root, 0o777)
    environment = {key: os.environ[key] for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    runner = local.DockerRunner(
        network_mode="host",
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": "rw,mode=1777"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        shm_size="256m",
        environment=environment,
        labels={"io.ytlabel.test": "1"},
    )
    local.init(runner=runner, pipeline_root=str(root), raise_on_error=True)
    ytlabel_pipeline(
        data_source=f"s3://{BUCKET}/data/video",
        eval_fraction=0.25,
        architectures=["logistic", "fc"],
        frameworks=["torch", "keras"],
        expansion_archs=[],
        epochs=1,
        workers=1,
        gpus_per_worker=0,
        threshold=0.001,
        train_settings={"all": ["batch_size=32"], "fc": ["model.head_hidden=16"]},
        registry=f"s3://{BUCKET}/registry",
        model_name="yt8m",
        run_root=f"s3://{BUCKET}/runs",
        backend="local",
        encoder_rgb_dim=1040,
        encoder_audio_dim=132,
        encoder_epochs=1,
    )

    runs = sorted(obj.object_name for obj in client.list_objects(BUCKET, prefix="runs/", recursive=True))
    cells = sorted({name.split("/")[2] for name in runs} - {"encoder"})
    assert cells == ["fc-keras", "fc-torch", "logistic-keras", "logistic-torch"]
    assert all(any(name.endswith(f"/{cell}/metrics.json") for name in runs) for cell in cells)
    rows = Registry(f"s3://{BUCKET}/registry").listing()
    assert [(row["name"], row["version"], row["aliases"]) for row in rows] == [("yt8m", 1, ["champion"])]
    [answer] = glob.glob(str(root / "**" / "deploy" / "answer"), recursive=True)
    text = open(answer).read()
    assert text.startswith("yt8m:1 (") and text.count("\n- video `") == 3
    # every step ran in the pipeline image (DockerRunner names the image of each task it starts)
    started = re.findall(r"Found image '([^']+)'", capfd.readouterr().out)
    assert set(started) == {images.PIPELINE} and len(started) >= 14, started
