"""The job vocabulary every backend and the pipeline share: the kinds of training job, their states, and what a
rendered job says about itself (replicas, the leader's command, the framework). A leaf: it imports no other
platform module.
"""

import dataclasses

from ytlabel.errors import YtlabelError

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
