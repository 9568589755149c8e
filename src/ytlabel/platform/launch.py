"""Running rendered training jobs: on a cluster (`kubernetes`) or on this machine (`local`).

Both backends take a rendered job (PyTorchJob/TFJob from `manifests.training_job`, or a Trainer v2
TrainJob from `trainer_v2.train_job`) and return a `JobOutcome`, so the pipeline's train step does
not care where or on which trainer the job ran.

    local       the pods' container command, run as local processes by `launch_local` with the same
                env contract the pods get: the v1 operator's (MASTER_ADDR/RANK/WORLD_SIZE or TF_CONFIG)
                or Trainer v2's (PET_* for torch; the ytlabel-keras JobSet variables for Keras). The
                exporter binds 127.0.0.1 on a free port instead of the pods' 0.0.0.0:9100
    kubernetes  platform/cluster.py: through the Kubernetes API
"""

import dataclasses
import sys
import time

from ytlabel.errors import YtlabelError
from ytlabel.training import distributed

TERMINAL = ("Succeeded", "Failed")


@dataclasses.dataclass(frozen=True)
class JobKind:
    """Where a kind of training job lives in the API, and which trainer's env contract its pods get."""

    group: str
    version: str
    plural: str
    trainer: str  # "v1" (training operator) or "v2" (Kubeflow Trainer)
    replica_specs: str = ""  # v1: the spec field holding the replicas by role
    leader: str = ""  # v1: the role whose replica 0 writes the run (its pod: <job>-<role lowercased>-0)


KINDS = {
    "PyTorchJob": JobKind("kubeflow.org", "v1", "pytorchjobs", "v1", "pytorchReplicaSpecs", "Master"),
    "TFJob": JobKind("kubeflow.org", "v1", "tfjobs", "v1", "tfReplicaSpecs", "Chief"),
    "TrainJob": JobKind("trainer.kubeflow.org", "v1alpha1", "trainjobs", "v2"),
}


class JobFailed(YtlabelError):
    """The training job ended in Failed, or did not finish before its deadline."""


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    name: str
    state: str  # Succeeded (a failed job raises JobFailed)
    seconds: float
    log_tail: str = ""


def job_state(status: dict | None, kind: str = "PyTorchJob") -> str:
    """The job's state from `status.conditions`: the latest condition whose status is "True".

    v1 (kubeflow.org/v1 JobStatus): Created, Running, Restarting, Succeeded, Failed. A TrainJob says
    Created, Suspended, Complete or Failed (no Running: its pods tell that); Complete reads as Succeeded.
    """
    current = "Pending"
    for condition in (status or {}).get("conditions") or []:
        if condition.get("status") == "True":
            current = condition.get("type", current)
    return "Succeeded" if kind == "TrainJob" and current == "Complete" else current


def replicas(job: dict) -> int:
    if job["kind"] == "TrainJob":
        return int(job["spec"]["trainer"].get("numNodes", 1))
    return sum(spec["replicas"] for spec in job["spec"][KINDS[job["kind"]].replica_specs].values())


def leader_command(job: dict) -> list[str]:
    if job["kind"] == "TrainJob":
        return list(job["spec"]["trainer"]["command"])
    kind = KINDS[job["kind"]]
    return list(job["spec"][kind.replica_specs][kind.leader]["template"]["spec"]["containers"][0]["command"])


def framework(job: dict) -> str:
    """torch or keras: the `--framework` of the job's `ytlabel train` command."""
    command = leader_command(job)
    return (
        command[command.index("--framework") + 1]
        if "--framework" in command
        else ("torch" if job["kind"] == "PyTorchJob" else "keras")
    )


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
    import subprocess

    return subprocess.run(argv).returncode


def resolve_trainer(trainer: str, backend: str) -> str:
    """ "v1" or "v2": as given, or for "auto" what the cluster serves (API discovery; Trainer v2 first).
    The local backend reproduces either contract; "auto" picks v1 there."""
    if trainer in ("v1", "v2"):
        return trainer
    if trainer != "auto":
        raise YtlabelError(f"trainer {trainer!r}: choose auto, v1 (PyTorchJob/TFJob) or v2 (TrainJob)")
    if backend == "kubernetes":
        from ytlabel.platform.cluster import trainer_api

        return trainer_api()
    return "v1"


def backend(name: str):
    if name == "local":
        return LocalBackend()
    if name == "kubernetes":
        from ytlabel.platform.cluster import KubernetesBackend

        return KubernetesBackend()
    raise YtlabelError(f"backend {name!r}: choose one of ['kubernetes', 'local']")
