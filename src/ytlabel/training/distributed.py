"""The distributed environment contracts, and a local launcher that reproduces them.

PyTorch (PyTorchJob from the Kubeflow training operator, or torchrun):
    MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK [, LOCAL_RANK]
    With elastic/torchrun-style variables only (PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR,
    PET_MASTER_PORT, one process per node), RANK = PET_NODE_RANK and WORLD_SIZE = PET_NNODES.
Keras (TFJob):
    TF_CONFIG = {"cluster": {"chief": [...], "worker": [...]}, "task": {"type": ..., "index": ...}}
    The chief writes outputs: the "chief" task, or worker 0 when the cluster has no chief.
Keras (Kubeflow Trainer v2, our ytlabel-keras runtime; Trainer v2 writes no TF_CONFIG):
    YTLABEL_JOBSET_NAME, YTLABEL_NODE_INDEX (the pod's JobSet and Indexed-Job completion index, from
    the downward API) and YTLABEL_NUM_NODES (from the TrainJob). TF_CONFIG is built from them: workers
    <jobset>-node-0-<i>.<jobset>:2222, the JobSet's stable host names (YTLABEL_WORKER_ADDRESSES, a
    comma-separated list, replaces them where pods share one host, e.g. the local launcher).

`launch_local(argv, workers, framework, trainer)` starts N copies of this very command on 127.0.0.1 with
those variables set (trainer "v1": the training operator's; "v2": Kubeflow Trainer's): the code path a
cluster takes, on one machine.
"""

import dataclasses
import json
import os
import subprocess
import sys
import threading

from ytlabel.cores import usable_cores
from ytlabel.errors import YtlabelError
from ytlabel.kinds import TORCH
from ytlabel.processes import free_port, stop_processes

LAUNCHED = "YTLABEL_LAUNCHED"  # set in children of launch_local so they never launch again
# The Trainer v2 Keras contract (platform/trainer_v2.py renders the runtime that provides it).
JOBSET_ENV, NODE_INDEX_ENV, NUM_NODES_ENV = "YTLABEL_JOBSET_NAME", "YTLABEL_NODE_INDEX", "YTLABEL_NUM_NODES"
ADDRESSES_ENV = "YTLABEL_WORKER_ADDRESSES"
# Every variable of every contract above: a launched process gets only its own contract's, as a pod would (a
# MASTER_ADDR left in the launching shell would otherwise steer a PET_* rank to the wrong rendezvous).
CONTRACT_VARIABLES = (
    *("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "TF_CONFIG"),
    *("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"),
    *(JOBSET_ENV, NODE_INDEX_ENV, NUM_NODES_ENV, ADDRESSES_ENV),
)
NODE = "node"  # Trainer v2's replicated job (and container) of training nodes
TF_PORT = 2222


@dataclasses.dataclass(frozen=True)
class Place:
    """This process's role. `writer` is rank 0 (PyTorch) or the chief (Keras)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    writer: bool = True

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def torch_place(env=None) -> Place:
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env or "RANK" in env:
        try:
            rank, world = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
        except ValueError as error:
            raise YtlabelError(f"RANK/WORLD_SIZE must be integers: {error}") from None
        if world > 1 and not ("MASTER_ADDR" in env and "MASTER_PORT" in env):
            raise YtlabelError("WORLD_SIZE > 1 needs MASTER_ADDR and MASTER_PORT (the PyTorchJob contract)")
    elif "PET_NNODES" in env:
        rank, world = int(env.get("PET_NODE_RANK", 0)), int(str(env["PET_NNODES"]).split(":")[-1])
        if world > 1:
            os.environ.setdefault("MASTER_ADDR", env.get("PET_MASTER_ADDR", "127.0.0.1"))
            os.environ.setdefault("MASTER_PORT", env.get("PET_MASTER_PORT", "29500"))
    else:
        rank, world = 0, 1
    if not 0 <= rank < world:
        raise YtlabelError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return Place(rank=rank, world_size=world, local_rank=int(env.get("LOCAL_RANK", 0)), writer=rank == 0)


def keras_worker_addresses(jobset: str, nodes: int) -> list[str]:
    """The Keras cluster as JobSet names its pods: <jobset>-<replicated job>-<job index>-<pod index>.<subdomain>
    (the subdomain defaults to the JobSet's name)."""
    return [f"{jobset}-{NODE}-0-{index}.{jobset}:{TF_PORT}" for index in range(nodes)]


def trainer_v2_tf_config(env) -> str | None:
    """TF_CONFIG for a pod of the ytlabel-keras runtime (Trainer v2), or None outside one."""
    if NUM_NODES_ENV not in env:
        return None
    try:
        nodes, index = int(env[NUM_NODES_ENV]), int(env.get(NODE_INDEX_ENV, ""))
    except ValueError:
        raise YtlabelError(
            f"{NUM_NODES_ENV}={env.get(NUM_NODES_ENV)!r} and {NODE_INDEX_ENV}="
            f"{env.get(NODE_INDEX_ENV)!r} must be integers (the ytlabel-keras runtime sets them)"
        ) from None
    if env.get(ADDRESSES_ENV):
        addresses = env[ADDRESSES_ENV].split(",")
    elif env.get(JOBSET_ENV):
        addresses = keras_worker_addresses(env[JOBSET_ENV], nodes)
    else:
        raise YtlabelError(
            f"{NUM_NODES_ENV} is set but neither {JOBSET_ENV} nor {ADDRESSES_ENV}: run on the "
            f"ytlabel-keras ClusterTrainingRuntime, which sets them"
        )
    if len(addresses) != nodes or not 0 <= index < nodes:
        raise YtlabelError(
            f"node {index} of {nodes} with {len(addresses)} worker addresses: the Trainer v2 contract does not add up"
        )
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def keras_place(env=None) -> Place:
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG")
    if not raw:
        raw = trainer_v2_tf_config(env)
        if raw is None:
            return Place()
        if env is os.environ:  # MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG itself
            os.environ["TF_CONFIG"] = raw
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise YtlabelError(f"TF_CONFIG is not valid JSON with cluster and task: {error}") from None
    order = [(role, i) for role in ("chief", "worker") for i in range(len(cluster.get(role, [])))]
    if (kind, index) not in order:
        raise YtlabelError(f"TF_CONFIG task {kind}:{index} is not in its cluster {sorted(cluster)}")
    rank = order.index((kind, index))
    # TFJob pods hold one process each (LOCAL_RANK unset: 0); launch_local sets it for processes sharing a host.
    return Place(rank=rank, world_size=len(order), local_rank=int(env.get("LOCAL_RANK", 0)), writer=rank == 0)


def worker_environments(
    workers: int, framework: str, trainer: str = "v1", job: str = "ytlabel"
) -> list[dict[str, str]]:
    """The variables a PyTorchJob / TFJob (trainer v1) or a TrainJob on our runtimes (v2, JobSet `job`) would
    give each of `workers` processes, on 127.0.0.1.

    The cores this process may use (`cores.usable_cores`: affinity and the cgroup's CPU quota) are also shared
    out, as torchrun does: OMP_NUM_THREADS (unless already set), since N
    processes each running a full-width thread pool oversubscribe the cores (measured 14x slower for 2 LSTM
    ranks on 2 cores), and LOCAL_WORLD_SIZE, from which each process sizes its readers (ytlabel/cores.py).
    """
    threads = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": str(max(1, usable_cores() // workers))}
    contract = _contract(workers, framework) if trainer == "v1" else _trainer_v2_contract(workers, framework, job)
    return [{**threads, "LOCAL_WORLD_SIZE": str(workers), **env} for env in contract]


def _trainer_v2_contract(workers: int, framework: str, job: str) -> list[dict[str, str]]:
    """Trainer v2's torch plugin variables, or what the ytlabel-keras runtime gives each pod. Local processes
    share one host, so Keras workers get loopback addresses instead of the JobSet's host names."""
    if framework == TORCH:
        port = str(free_port())
        return [
            {
                "PET_NNODES": str(workers),
                "PET_NPROC_PER_NODE": "1",
                "PET_NODE_RANK": str(rank),
                "PET_MASTER_ADDR": "127.0.0.1",
                "PET_MASTER_PORT": port,
                "LOCAL_RANK": str(rank),
            }
            for rank in range(workers)
        ]
    base = free_port(span=workers)
    addresses = ",".join(f"127.0.0.1:{base + index}" for index in range(workers))
    return [
        {
            JOBSET_ENV: job,
            NODE_INDEX_ENV: str(rank),
            NUM_NODES_ENV: str(workers),
            ADDRESSES_ENV: addresses,
            "LOCAL_RANK": str(rank),
        }
        for rank in range(workers)
    ]


def _contract(workers: int, framework: str) -> list[dict[str, str]]:
    if framework == TORCH:
        port = str(free_port())
        return [
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
                "WORLD_SIZE": str(workers),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
            }
            for rank in range(workers)
        ]
    base = free_port(span=workers)
    addresses = [f"127.0.0.1:{base + index}" for index in range(workers)]
    return [
        {
            "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": rank}}),
            "LOCAL_RANK": str(rank),
        }
        for rank in range(workers)
    ]


def launch_local(argv: list[str], workers: int, framework: str, trainer: str = "v1", job: str = "ytlabel") -> int:
    """Runs `argv` as `workers` processes with the framework's env contract (trainer v1 or v2); fails if any fails.

    Output lines are prefixed with the rank. When one process fails, the others are stopped, so a
    crashed rank never leaves the rest waiting in a collective forever.
    """
    processes = []
    for rank, extra in enumerate(worker_environments(workers, framework, trainer, job)):
        inherited = {name: value for name, value in os.environ.items() if name not in CONTRACT_VARIABLES}
        env = {**inherited, **extra, LAUNCHED: "1"}
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=_relay, args=(process, rank), daemon=True).start()
        processes.append(process)
    failed = 0
    try:
        remaining = list(processes)
        while remaining:
            for process in list(remaining):
                try:
                    code = process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                remaining.remove(process)
                if code != 0 and not failed:
                    failed = code
                    stop_processes(remaining, group=True)
    except KeyboardInterrupt:
        stop_processes(processes, group=True)
        raise
    return failed


def _relay(process: subprocess.Popen, rank: int) -> None:
    for line in process.stdout or ():  # started with stdout=PIPE
        sys.stdout.write(f"[rank {rank}] {line}")
        sys.stdout.flush()
