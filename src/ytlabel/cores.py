"""The cores this process may use: how many data readers a trainer starts, how many threads a server process gets.

`os.cpu_count()` is the node's core count. A pod is held to its CPU limit another way: the kubelet turns
`resources.limits.cpu` into a CFS quota on the container's cgroup (cgroup v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`), and a 4-CPU pod on a 64-core node that starts 63 readers is
throttled, not fed. So the usable cores are the fewest of: the CPUs the process may be scheduled on
(affinity, which a cpuset or `taskset` narrows), and the quota of its cgroup and every cgroup above it, in
whole cores. Processes that share the pod (`LOCAL_WORLD_SIZE`, as torchrun and `launch_local` set it)
share its cores.
"""

import math
import os

CGROUP_ROOT = "/sys/fs/cgroup"
MAX_READERS = 8  # beyond this a reader adds memory (its shuffle buffer, its batches in flight), not speed


def usable_cores(root: str = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup") -> int:
    """Whole cores this process may keep busy: min(affinity, the cgroup CPU quota), at least 1."""
    cores = len(os.sched_getaffinity(0))
    quota = cpu_quota(root, proc_cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def cpu_quota(root: str = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup") -> float | None:
    """The tightest CPU quota (in cores) on this process's cgroup and its ancestors, or None when unlimited.

    Files that are missing or unreadable count as no limit: outside Linux cgroups nothing is known.
    """
    limits = []
    for hierarchy, path in _cgroup_paths(proc_cgroup):
        if hierarchy == "":  # cgroup v2: one tree, with cpu.max = "<quota> <period>" or "max <period>"
            base = root if os.path.exists(os.path.join(root, "cgroup.controllers")) else os.path.join(root, "unified")
            for folder in _ancestors(base, path):
                fields = _read(os.path.join(folder, "cpu.max")).split()
                if len(fields) == 2 and fields[0] != "max":
                    limits.append(_ratio(fields[0], fields[1]))
        elif "cpu" in hierarchy.split(","):  # cgroup v1: the cpu controller's own tree, quota -1 = none
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                if not os.path.isdir(os.path.join(root, mount)):
                    continue
                for folder in _ancestors(os.path.join(root, mount), path):
                    quota = _read(os.path.join(folder, "cpu.cfs_quota_us"))
                    period = _read(os.path.join(folder, "cpu.cfs_period_us"))
                    if quota and period and not quota.startswith("-"):
                        limits.append(_ratio(quota, period))
                break
    positive = [limit for limit in limits if limit is not None and limit > 0]
    return min(positive) if positive else None


def default_readers(cores: int | None = None, env=None) -> int:
    """Reader processes for a trainer with `cores` (default: `usable_cores`), shared with the processes of its
    pod (LOCAL_WORLD_SIZE): one core stays with the training step (and the unpacking that feeds it), the rest
    read, up to MAX_READERS. 0, reading in the training process, when there is no core to spare."""
    env = os.environ if env is None else env
    cores = usable_cores() if cores is None else cores
    try:
        sharing = max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        sharing = 1
    return max(0, min(cores // sharing - 1, MAX_READERS))


def _cgroup_paths(proc_cgroup: str) -> list[tuple[str, str]]:
    """(controllers, path) per line of /proc/self/cgroup ("" controllers: the v2 tree)."""
    lines = _read(proc_cgroup).splitlines()
    pairs = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            pairs.append((parts[1], parts[2]))
    return pairs


def _ancestors(base: str, path: str) -> list[str]:
    """`base/path` and every folder above it up to `base`, never outside `base`."""
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    return [os.path.join(base, *parts[:depth]) for depth in range(len(parts), -1, -1)]


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if period_us > 0 else None


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""
