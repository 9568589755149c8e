"""The cores a process may use, from the pod's CPU limit (its cgroup quota) and not the node's core count, and
the reader count a trainer starts with."""

import os

import pytest

from ytlabel import cores
from ytlabel.config import load_config
from ytlabel.runs import RunDir
from ytlabel.training.run import choose_readers


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


@pytest.fixture
def cgroup_v2(tmp_path):
    root = tmp_path / "cgroup"
    _write(str(root / "cgroup.controllers"), "cpu memory\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/kubepods/pod1/container\n")
    return str(root), str(proc)


def test_a_cgroup_v2_quota_is_the_limit_in_cores(cgroup_v2):
    root, proc = cgroup_v2
    _write(f"{root}/kubepods/pod1/container/cpu.max", "250000 100000\n")  # limits.cpu: 2500m
    assert cores.cpu_quota(root, proc) == 2.5


def test_the_tightest_quota_on_the_way_up_wins(cgroup_v2):
    root, proc = cgroup_v2
    _write(f"{root}/kubepods/pod1/container/cpu.max", "max 100000\n")
    _write(f"{root}/kubepods/pod1/cpu.max", "150000 100000\n")
    _write(f"{root}/kubepods/cpu.max", "400000 100000\n")
    assert cores.cpu_quota(root, proc) == 1.5


def test_no_quota_anywhere_is_no_limit(cgroup_v2):
    root, proc = cgroup_v2
    _write(f"{root}/kubepods/pod1/container/cpu.max", "max 100000\n")
    assert cores.cpu_quota(root, proc) is None
    assert cores.cpu_quota(str(os.path.dirname(root)) + "/missing", proc) is None


def test_a_cgroup_v1_quota_is_read_from_the_cpu_controller(tmp_path):
    root = tmp_path / "cgroup"
    _write(str(root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us"), "300000\n")
    _write(str(root / "cpu,cpuacct/docker/abc/cpu.cfs_period_us"), "100000\n")
    _write(str(root / "cpu,cpuacct/cpu.cfs_quota_us"), "-1\n")
    _write(str(root / "cpu,cpuacct/cpu.cfs_period_us"), "100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert cores.cpu_quota(str(root), str(proc)) == 3.0


def test_a_path_read_from_proc_never_leaves_the_cgroup_root(cgroup_v2, tmp_path):
    root, proc = cgroup_v2
    _write(str(tmp_path / "cpu.max"), "100000 100000\n")  # outside the root: must not be read
    open(proc, "w").write("0::/../../\n")
    assert cores.cpu_quota(root, proc) is None


def test_usable_cores_take_the_quota_in_whole_cores_at_least_one(cgroup_v2):
    root, proc = cgroup_v2
    affinity = len(os.sched_getaffinity(0))
    _write(f"{root}/kubepods/pod1/container/cpu.max", "50000 100000\n")  # 500m
    assert cores.usable_cores(root, proc) == 1
    _write(f"{root}/kubepods/pod1/container/cpu.max", "6400000 100000\n")  # 64 CPUs: affinity is the limit
    assert cores.usable_cores(root, proc) == affinity


@pytest.mark.parametrize(
    ("usable", "env", "readers"),
    [
        (1, {}, 0),
        (2, {}, 1),
        (4, {}, 3),
        (16, {}, 8),
        (64, {}, 8),
        (8, {"LOCAL_WORLD_SIZE": "2"}, 3),
        (2, {"LOCAL_WORLD_SIZE": "2"}, 0),
        (8, {"LOCAL_WORLD_SIZE": "x"}, 7),
    ],
)
def test_one_core_stays_with_the_step_and_pod_processes_share_the_rest(usable, env, readers):
    assert cores.default_readers(usable, env) == readers


def test_auto_is_settled_from_the_cores_or_kept_from_the_run_in_progress(tmp_path, monkeypatch):
    config = load_config("fc", "torch", "data", str(tmp_path / "run"), None, ["loader_workers=auto"])
    assert config.loader_workers is None
    monkeypatch.setattr(cores, "usable_cores", lambda: 4)
    assert choose_readers(config, RunDir(config.out)).loader_workers == 3
    os.makedirs(config.out, exist_ok=True)
    _write(os.path.join(config.out, "config.yaml"), "loader_workers: 5\n")
    assert choose_readers(config, RunDir(config.out)).loader_workers == 5
    pinned = load_config("fc", "torch", "data", config.out, None, ["loader_workers=2"])
    assert choose_readers(pinned, RunDir(config.out)).loader_workers == 2
