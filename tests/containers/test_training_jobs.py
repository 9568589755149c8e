"""Distributed training from the manifests `ytlabel platform render` writes, in the built trainer images.

Each pod of the rendered PyTorchJob (Master + 1 Worker) or TFJob (Chief + Worker) runs as a container on one
network with the operator's env contract and `<job>-<role>-<i>` host names (operators.py). fc trains on real
YT8M shards read from S3 (SeaweedFS in a container on the same network) and writes its run to S3; both ranks
end with the same weights. A worker killed mid-training is restarted in place (restartPolicy OnFailure) and
the run resumes from its S3 checkpoint."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml
from operators import JobRun, trainer_v2_pods, v1_pods

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SHARDS = [os.path.join(ROOT, "samples", "yt8m-video", f"validate000{i}.tfrecord") for i in (2, 3, 4, 5)]
SETTINGS = [
    "epochs=3",
    "batch_size=32",
    "model.rgb_hidden=32",
    "model.audio_hidden=8",
    "model.head_hidden=32",
    "validation_fraction=0",
]


def render(framework: str, job: str, *overrides: str) -> dict:
    """The job exactly as `ytlabel platform render` prints it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ytlabel",
            "platform",
            "render",
            "--arch",
            "fc",
            "--framework",
            framework,
            "--workers",
            "2",
            "--data",
            "s3://ytlabel/data/train",
            "--out",
            f"s3://ytlabel/runs/{job}",
            *SETTINGS,
            *overrides,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = yaml.safe_load(done.stdout)
    manifest["metadata"]["name"] = job
    return manifest


def _digests(log: str) -> list[str]:
    return re.findall(r"rank \d+ final weights sha256 (\w+)", log)


def _upload_shards(s3) -> None:
    for shard in SHARDS:
        s3.upload(shard, f"s3://ytlabel/data/train/{os.path.basename(shard)}")


def _train_to_one_model(engine, network, s3, plans, job: str) -> JobRun:
    """Runs the pods to the end: every pod exits 0, both ranks log the same final weights, the run is on S3."""
    run = JobRun(engine, network, plans, {"ytlabel-s3": s3.secret})
    run.start()
    codes = run.wait(timeout_s=600)
    assert set(codes.values()) == {0}, {name: run.logs(name)[-3000:] for name in codes}
    digests = [_digests(run.logs(plan.name)) for plan in run.plans]
    assert all(len(found) == 1 for found in digests) and digests[0] == digests[1], digests
    result = json.loads(s3.read(f"s3://ytlabel/runs/{job}/result.json"))
    assert result["world_size"] == 2 and result["epochs"] == 3
    return run


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_two_pods_train_one_model_from_s3(engine, network, s3_in_network, framework):
    _upload_shards(s3_in_network)
    job = f"fc-{framework}"
    run = _train_to_one_model(engine, network, s3_in_network, v1_pods(render(framework, job)), job)
    # the pod's memory-backed /dev/shm (emptyDir medium Memory, sizeLimit 2Gi) became the container's shm
    host = json.loads(engine.run("inspect", run.plans[0].name).stdout)[0]["HostConfig"]
    assert host["ShmSize"] == 2 * 2**30 and host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    keys = s3_in_network.keys(f"s3://ytlabel/runs/{job}/")
    assert f"runs/{job}/spec.json" in keys and any("/checkpoints/" in key for key in keys), keys


def test_killed_worker_restarts_and_resumes_from_the_s3_checkpoint(engine, network, s3_in_network):
    _upload_shards(s3_in_network)
    job = "fc-torch-restart"
    run = JobRun(engine, network, v1_pods(render("torch", job, "epochs=4")), {"ytlabel-s3": s3_in_network.secret})
    run.start()
    checkpoint = f"runs/{job}/checkpoints/last.pt"
    deadline = time.monotonic() + 300
    while checkpoint not in s3_in_network.keys(f"s3://ytlabel/runs/{job}/checkpoints/"):
        assert time.monotonic() < deadline, run.logs(f"{job}-master-0")[-3000:]
        time.sleep(0.5)
    worker = f"{job}-worker-0"
    engine.run("kill", worker)  # SIGKILL, as an evicted or OOM-killed container
    assert f"runs/{job}/result.json" not in s3_in_network.keys(f"s3://ytlabel/runs/{job}/"), "finished before the kill"
    codes = run.wait(timeout_s=600)
    assert set(codes.values()) == {0}, {name: run.logs(name)[-3000:] for name in codes}
    assert run.restarts[worker] >= 1
    assert "resuming from epoch" in run.logs(worker)
    digests = [_digests(run.logs(plan.name))[-1] for plan in run.plans]
    assert digests[0] == digests[1]
    result = json.loads(s3_in_network.read(f"s3://ytlabel/runs/{job}/result.json"))
    assert result["world_size"] == 2 and result["epochs"] == 4
    curves = s3_in_network.read(f"s3://ytlabel/runs/{job}/curves.csv").decode().splitlines()[1:]
    assert [row.split(",")[0] for row in curves] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_trainer_v2_trainjob_nodes_train_one_model(engine, network, s3_in_network, framework):
    _upload_shards(s3_in_network)
    job = f"fc-{framework}-v2"
    _train_to_one_model(engine, network, s3_in_network, trainer_v2_pods(render(framework, job, "--trainer", "v2")), job)
