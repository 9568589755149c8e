"""What the operators add to our rendered jobs, so their pods can run as containers on one network.

The Kubeflow training operator (v1) creates one pod per replica, named `<job>-<role>-<index>` and reachable
by that name through a headless Service, and injects the env contract:
    PyTorchJob: MASTER_ADDR=<job>-master-0, MASTER_PORT=23456, WORLD_SIZE, RANK (Master 0, Workers 1..)
    TFJob:      TF_CONFIG {"cluster": {"chief": [...], "worker": [...]}, "task": {"type", "index"}}, port 2222
Kubeflow Trainer v2 creates a JobSet: pods `<job>-node-0-<i>` in the subdomain `<job>`, and from our
runtimes' mlPolicy the PET_* variables (torch) or, through the downward API, the JobSet name and completion
index (ytlabel-keras). The kubelet restarts a failed container in place when restartPolicy is OnFailure.
These are taken from the operators' documentation and source, not observed on a cluster.
"""

import dataclasses
import json
import time

from pods import Pod, run_pod

from tools.engine import Engine
from ytlabel.platform.jobs import KINDS
from ytlabel.platform.trainer_v2 import cluster_training_runtime
from ytlabel.training.distributed import NODE

TORCH_MASTER_PORT = 23456  # the training operator's default for PyTorchJob
TF_PORT = 2222  # the training operator's default for TFJob
PET_MASTER_PORT = 29400  # Kubeflow Trainer v2's torch plugin
RESTART_DELAY_S = 10  # the kubelet's first back-off before restarting a failed container


@dataclasses.dataclass
class PodPlan:
    name: str
    spec: dict  # the PodSpec from the job's template
    env: dict  # the operator's additions
    restart_policy: str
    fields: dict = dataclasses.field(default_factory=dict)  # downward-API values
    aliases: tuple[str, ...] = ()  # host names besides the pod's name


def v1_pods(job: dict) -> list[PodPlan]:
    """The pods the training operator creates for a PyTorchJob or TFJob, with its env contract."""
    kind = KINDS[job["kind"]]
    name = job["metadata"]["name"]
    replicas = job["spec"][kind.replica_specs]
    roles = [(role, index) for role, spec in replicas.items() for index in range(spec["replicas"])]
    pods = []
    for rank, (role, index) in enumerate(roles):
        pod = f"{name}-{role.lower()}-{index}"
        if job["kind"] == "PyTorchJob":
            env = {
                "MASTER_ADDR": f"{name}-master-0",
                "MASTER_PORT": str(TORCH_MASTER_PORT),
                "WORLD_SIZE": str(len(roles)),
                "RANK": str(rank),
                "PYTHONUNBUFFERED": "1",
            }
            if "nprocPerNode" in job["spec"]:
                env["PET_NPROC_PER_NODE"] = job["spec"]["nprocPerNode"]
        else:
            cluster: dict[str, list[str]] = {}
            for other_role, other_index in roles:
                cluster.setdefault(other_role.lower(), []).append(
                    f"{name}-{other_role.lower()}-{other_index}:{TF_PORT}"
                )
            env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": role.lower(), "index": index}})}
        spec = replicas[role]
        pods.append(PodPlan(pod, spec["template"]["spec"], env, spec.get("restartPolicy", "Never")))
    return pods


def trainer_v2_pods(job: dict, runtime: dict | None = None) -> list[PodPlan]:
    """The pods Kubeflow Trainer v2 makes of a TrainJob on our ClusterTrainingRuntime: the runtime's `node`
    pod template, the TrainJob's runtime patch merged over it, the trainer's image, command, env and
    resources in the `node` container, the torch plugin's PET_* (or, for Keras, the JobSet name and
    completion index through the runtime's downward-API env), pods `<job>-node-0-<i>.<job>`."""
    name, trainer = job["metadata"]["name"], job["spec"]["trainer"]
    framework = "torch" if job["spec"]["runtimeRef"]["name"].endswith("torch") else "keras"
    runtime = runtime or cluster_training_runtime(framework, trainer["image"])
    [replicated] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    template = replicated["template"]["spec"]["template"]
    [runtime_patch] = job["spec"]["runtimePatches"]
    [patch] = runtime_patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    patch_spec = patch["template"]["spec"]["template"]["spec"]
    spec = {**template["spec"], **{key: value for key, value in patch_spec.items() if key != "containers"}}
    [node] = [c for c in template["spec"]["containers"] if c["name"] == NODE]
    [node_patch] = [c for c in patch_spec["containers"] if c["name"] == NODE]
    container = {
        **node,
        **node_patch,
        "image": trainer["image"],
        "command": trainer["command"],
        "env": [*node.get("env", []), *trainer.get("env", [])],
        "resources": trainer["resourcesPerNode"],
    }
    spec["containers"] = [container]
    nodes, pods = int(trainer["numNodes"]), []
    for index in range(nodes):
        pod = f"{name}-{NODE}-0-{index}"
        env = (
            {
                "PET_NNODES": str(nodes),
                "PET_NPROC_PER_NODE": str(trainer.get("numProcPerNode", 1)),
                "PET_NODE_RANK": str(index),
                "PET_MASTER_ADDR": f"{name}-{NODE}-0-0.{name}",
                "PET_MASTER_PORT": str(PET_MASTER_PORT),
            }
            if framework == "torch"
            else {}
        )
        fields = {
            "metadata.labels['jobset.sigs.k8s.io/jobset-name']": name,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']": str(index),
        }
        pods.append(PodPlan(pod, spec, env, spec.get("restartPolicy", "OnFailure"), fields, (f"{pod}.{name}",)))
    return pods


@dataclasses.dataclass
class JobRun:
    """A job's pods as containers, restarted in place as the kubelet would."""

    engine: Engine
    network: str
    plans: list[PodPlan]
    secrets: dict
    backoff_limit: int = 3
    restarts: dict = dataclasses.field(default_factory=dict)
    pods: dict = dataclasses.field(default_factory=dict)

    def start(self) -> None:
        for plan in self.plans:
            self.pods[plan.name] = run_pod(
                self.engine,
                plan.spec,
                name=plan.name,
                network=self.network,
                env=plan.env,
                secrets=self.secrets,
                fields=plan.fields,
                aliases=plan.aliases,
            )
            self.restarts[plan.name] = 0

    def wait(self, timeout_s: float) -> dict[str, int]:
        """Every pod's final exit code; failed containers restart (OnFailure) up to backoff_limit times."""
        deadline, failed_at = time.monotonic() + timeout_s, {}
        while True:
            codes = {}
            for plan in self.plans:
                state = self.pods[plan.name].state()
                if state["Running"]:
                    continue
                code = int(state["ExitCode"])
                if code and plan.restart_policy == "OnFailure" and self.restarts[plan.name] < self.backoff_limit:
                    failed_at.setdefault(plan.name, time.monotonic())
                    if time.monotonic() - failed_at[plan.name] >= RESTART_DELAY_S:
                        self.engine.run("start", plan.name)
                        self.restarts[plan.name] += 1
                        del failed_at[plan.name]
                    continue
                codes[plan.name] = code
            if len(codes) == len(self.plans):
                return codes
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {name}\n{pod.logs(25)}" for name, pod in self.pods.items())
                raise AssertionError(f"job still running after {timeout_s:.0f}s:\n{tails}")
            time.sleep(1)

    def logs(self, name: str) -> str:
        return Pod(self.engine, name).logs(100000)
