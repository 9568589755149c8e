"""The cluster's data path, end to end on a real S3 server (SeaweedFS on 127.0.0.1): shards, run
directories, the encoder and the registry all on s3://, as on Kubeflow.

1. The pipeline function under kfp.local with the local job backend: ingest -> expand -> fc and logistic
   in both frameworks + fc on the expansion -> evaluate -> select -> register -> promote -> deploy (KServe
   answers a real request with the champion pulled from S3).
2. The CLI alone on S3: train to s3://, evaluate --model s3://, registry push s3://, serve NAME@ALIAS, and a
   version directory on s3:// loaded as KServe would load it.
"""

import glob
import json
import os
import tempfile

import pytest

from ytlabel import storage
from ytlabel.cli import main
from ytlabel.registry import Registry

pytestmark = pytest.mark.slow
BUCKET = "ytlabel-cluster"


@pytest.fixture
def s3_dataset(s3_env, synth_dir, tmp_path, monkeypatch):
    """The synthetic video-level shards on S3, and local scratch (run mirrors) inside tmp_path."""
    client = s3_env
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    for path in sorted(glob.glob(os.path.join(synth_dir, "video", "*.tfrecord"))):
        storage.upload(path, f"s3://{BUCKET}/data/video/{os.path.basename(path)}")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    os.makedirs(tmp_path / "scratch")
    monkeypatch.setattr(tempfile, "tempdir", None)
    return f"s3://{BUCKET}/data/video"


@pytest.fixture
def keep_print():
    import builtins

    original = builtins.print
    yield
    builtins.print = original


def _objects(client, prefix: str) -> list[str]:
    return sorted(obj.object_name for obj in client.list_objects(BUCKET, prefix=prefix, recursive=True))


def test_pipeline_with_data_runs_and_registry_on_s3(s3_dataset, s3_env, tmp_path, keep_print):
    from kfp import local

    from pipelines.ytlabel_pipeline import ytlabel_pipeline

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)
    ytlabel_pipeline(
        data_source=s3_dataset,
        eval_fraction=0.34,
        architectures=["logistic", "fc"],
        frameworks=["torch", "keras"],
        expansion_archs=["fc"],
        epochs=1,
        workers=1,
        gpus_per_worker=0,
        threshold=0.001,
        train_settings={"all": ["batch_size=4"], "fc": ["model.head_hidden=16"]},
        registry=f"s3://{BUCKET}/registry",
        model_name="yt8m",
        run_root=f"s3://{BUCKET}/runs",
        backend="local",
        encoder_rgb_dim=1040,
        encoder_audio_dim=132,
        encoder_epochs=1,
    )

    client = s3_env
    runs = _objects(client, "runs/")
    [pipeline_run] = {name.split("/")[1] for name in runs}
    cells = sorted({name.split("/")[2] for name in runs} - {"encoder"})
    assert cells == [
        "fc-keras",
        "fc-keras-expanded",
        "fc-torch",
        "fc-torch-expanded",
        "logistic-keras",
        "logistic-torch",
    ]
    for cell in cells:  # every run directory lives on S3, evaluated there
        for name in ("spec.json", "config.yaml", "result.json", "metrics.json", "curves.csv"):
            assert f"runs/{pipeline_run}/{cell}/{name}" in runs, (cell, name)
    assert f"runs/{pipeline_run}/encoder/encoder.npz" in runs
    spec = json.loads(storage.read_bytes(f"s3://{BUCKET}/runs/{pipeline_run}/fc-torch-expanded/spec.json"))
    assert spec["spec"]["encoder"]["path"] == f"s3://{BUCKET}/runs/{pipeline_run}/encoder"

    rows = Registry(f"s3://{BUCKET}/registry").listing()
    assert [(row["name"], row["version"], row["aliases"]) for row in rows] == [("yt8m", 1, ["champion"])]
    manifest = Registry(f"s3://{BUCKET}/registry").manifest("yt8m", 1)
    evaluated = json.loads(
        storage.read_bytes(
            f"s3://{BUCKET}/runs/{pipeline_run}/{manifest['arch']}-{manifest['framework']}"
            f"{'-expanded' if manifest['encoder'] else ''}/metrics.json"
        )
    )
    assert manifest["metrics"]["gap_at_20"] == evaluated["gap_at_20"]  # the registered run is the evaluated one
    [report] = glob.glob(str(tmp_path / "kfp" / "**" / "comparison" / "report.md"), recursive=True)
    assert "| fc-keras-expanded | fc | keras | on |" in open(report).read()
    [answer] = glob.glob(str(tmp_path / "kfp" / "**" / "deploy" / "answer"), recursive=True)
    text = open(answer).read()
    assert text.startswith("yt8m:1 (") and "asked about 3 real videos" in text and text.count("\n- video `") == 3


def test_cli_trains_evaluates_pushes_and_serves_on_s3(s3_dataset, s3_env, capsys, tmp_path):
    from ytlabel.serving.server import running

    run = f"s3://{BUCKET}/cli-runs/fc-keras"
    registry = f"s3://{BUCKET}/cli-registry"
    assert (
        main(
            [
                "train",
                "--arch",
                "fc",
                "--framework",
                "keras",
                "--data",
                s3_dataset,
                "--out",
                run,
                "epochs=1",
                "batch_size=4",
                "model.head_hidden=16",
                "validation_fraction=0",
            ]
        )
        == 0
    )
    assert main(["evaluate", "--model", run, "--data", s3_dataset, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stored = json.loads(storage.read_bytes(f"{run}/metrics.json"))
    assert stored["gap_at_20"] == printed["gap_at_20"] and stored["videos"] == 24
    assert main(["registry", "push", run, "--name", "yt8m-fc", "--registry", registry]) == 0
    assert capsys.readouterr().out.strip() == "yt8m-fc:1"
    # Evaluate and push read the run through temporary copies that go when they are done: only the
    # training's staging directory (kept for a resume) is left in the scratch directory.
    assert [name for name in os.listdir(tmp_path / "scratch") if name.startswith("ytlabel-")] == ["ytlabel-runs"]
    assert main(["registry", "promote", "yt8m-fc", "1", "--alias", "champion", "--registry", registry]) == 0
    with running("--model", "yt8m-fc@champion", "--registry", registry) as url:
        import urllib.request

        instance = {"mean_rgb": [0.1] * 1024, "mean_audio": [0.0] * 128}
        request = urllib.request.Request(
            f"{url}/v1/models/yt8m-fc:predict",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"instances": [instance]}).encode(),
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            [answer] = json.loads(response.read())["predictions"]
    assert len(answer["labels"]) == 20 and all(0.0 <= label["score"] <= 1.0 for label in answer["labels"])
    # A version directory on S3, as an InferenceService's storageUri names it, serves too.
    from ytlabel.serving.server import build_model, resolve_model_dir

    model = build_model(resolve_model_dir(f"{registry}/yt8m-fc/1", None, cache_dir=str(tmp_path / "serve")))
    assert model.ready and model.name == "yt8m-fc"
