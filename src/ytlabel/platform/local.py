"""The local backend: a rendered training job's container command, run as processes on this machine.

`LocalBackend.run` takes a rendered job (PyTorchJob/TFJob from `manifests.training_job`, or a Trainer v2
TrainJob from `trainer_v2.train_job`) and runs its leader's `ytlabel` command with the env contract the pods
would get: the v1 operator's (MASTER_ADDR/RANK/WORLD_SIZE or TF_CONFIG) or Trainer v2's (PET_* for torch;
the ytlabel-keras JobSet variables for Keras), through `training.distributed.launch_local`. The exporter
binds 127.0.0.1 on a free port instead of the pods' 0.0.0.0:9100. It returns the `JobOutcome` the
Kubernetes backend (platform/cluster.py) returns, so the pipeline's train step does not care where the job ran.
"""

import subprocess
import sys
import time

from ytlabel.errors import YtlabelError
from ytlabel.platform.jobs import KINDS, JobFailed, JobOutcome, framework, leader_command, replicas
from ytlabel.training import distributed


class LocalBackend:
    """Runs a job's container command on 127.0.0.1 with the env contract its pods would get."""

    def run(self, job: dict) -> JobOutcome:
        command = leader_command(job)
        if command[0] != "ytlabel":
            raise YtlabelError(
                f"{job['metadata']['name']}: the local backend runs `ytlabel` commands, got {command[0]!r}"
            )
        argv = [sys.executable, "-m", "ytlabel", *[_loopback(arg, replicas(job)) for arg in command[1:]]]
        started = time.monotonic()
        count, contract = replicas(job), KINDS[job["kind"]].trainer
        code = (
            distributed.launch_local(argv, count, framework(job), contract, job["metadata"]["name"])
            if count > 1
            else _single(argv)
        )
        if code:
            raise JobFailed(f"{job['metadata']['name']}: a training process exited with {code}")
        return JobOutcome(job["metadata"]["name"], "Succeeded", round(time.monotonic() - started, 1))


def _loopback(arg: str, processes: int) -> str:
    """Pods expose their exporter on 0.0.0.0:9100; local processes bind loopback, one free port each."""
    if arg.startswith("metrics_host="):
        return "metrics_host=127.0.0.1"
    if arg.startswith("metrics_port="):
        return f"metrics_port={distributed.free_port(span=processes)}"
    return arg


def _single(argv: list[str]) -> int:
    return subprocess.run(argv).returncode
