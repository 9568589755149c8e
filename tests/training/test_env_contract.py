import json
import signal
import socket
import subprocess
import sys

import pytest

from ytlabel import processes
from ytlabel.errors import YtlabelError
from ytlabel.processes import free_port, stop_processes
from ytlabel.training.distributed import Place, keras_place, launch_local, torch_place, worker_environments


def test_torch_contract_from_pytorchjob_variables():
    env = {"MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "3", "RANK": "2"}
    assert torch_place(env) == Place(rank=2, world_size=3, local_rank=0, writer=False)
    assert torch_place({}) == Place()
    with pytest.raises(YtlabelError, match="needs MASTER_ADDR and MASTER_PORT"):
        torch_place({"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(YtlabelError, match="RANK=4 is outside WORLD_SIZE=2"):
        torch_place({"WORLD_SIZE": "2", "RANK": "4", "MASTER_ADDR": "a", "MASTER_PORT": "1"})


def test_torch_contract_from_elastic_variables(monkeypatch):
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(name, "recorded")  # so that what torch_place sets is taken away after the test
        monkeypatch.delenv(name)
    env = {"PET_NNODES": "1:2", "PET_NODE_RANK": "1", "PET_MASTER_ADDR": "m", "PET_MASTER_PORT": "29400"}
    assert torch_place(env) == Place(rank=1, world_size=2, local_rank=0, writer=False)
    import os

    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("m", "29400")


def test_keras_contract_from_tfjob_variables():
    cluster = {"chief": ["c:1"], "worker": ["w0:1", "w1:1"]}
    chief = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})}
    worker = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})}
    assert keras_place(chief) == Place(rank=0, world_size=3, writer=True)
    assert keras_place(worker) == Place(rank=2, world_size=3, writer=False)
    no_chief = {
        "TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}})
    }
    assert keras_place(no_chief).writer
    with pytest.raises(YtlabelError, match="TF_CONFIG task worker:5 is not in its cluster"):
        keras_place({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 5}})})
    with pytest.raises(YtlabelError, match="TF_CONFIG is not valid JSON"):
        keras_place({"TF_CONFIG": "{cluster"})


def test_local_launcher_produces_the_same_variables():
    torch_envs = worker_environments(3, "torch")
    assert [torch_place(env).rank for env in torch_envs] == [0, 1, 2]
    assert len({env["MASTER_PORT"] for env in torch_envs}) == 1
    keras_envs = worker_environments(2, "keras")
    # Processes sharing a host get distinct local ranks (exporter ports); TFJob pods leave it unset (0).
    assert [keras_place(env) for env in keras_envs] == [Place(0, 2, 0, True), Place(1, 2, 1, False)]
    addresses = json.loads(keras_envs[0]["TF_CONFIG"])["cluster"]["worker"]
    assert all(address.startswith("127.0.0.1:") for address in addresses)
    ports = [int(address.rsplit(":", 1)[1]) for address in addresses]
    assert ports[1] == ports[0] + 1


def test_free_ports_lie_below_the_kernels_ephemeral_range(monkeypatch):
    # A port from bind(0) can be handed to any later socket before its user binds it; these cannot.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        ephemeral_low = int(handle.read().split()[0])
    base = free_port(span=3)
    assert max(1024, ephemeral_low - 12000) <= base and base + 2 < ephemeral_low
    with socket.socket() as held:  # a taken port is never offered
        held.bind(("127.0.0.1", base))
        held.listen()
        monkeypatch.setattr(processes, "_unassigned_ports", lambda: (base, base + 3))
        assert {free_port() for _ in range(20)} == {base + 1}
        monkeypatch.setattr(processes, "_unassigned_ports", lambda: (base, base + 2))
        with pytest.raises(YtlabelError, match=f"no 1 consecutive free ports on 127.0.0.1 between {base} and"):
            free_port()


def test_stop_processes_terminates_then_kills_what_ignores_sigterm():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)\n"
                "time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline() == "ready\n"  # its handler is in place
    stop_processes([polite, None, stubborn], grace_s=0.5)
    assert (polite.returncode, stubborn.returncode) == (-signal.SIGTERM, -signal.SIGKILL)


def test_stop_processes_gives_all_of_them_one_grace(monkeypatch):
    """Two processes that ignore SIGTERM are killed `grace_s` after the signal, not one grace after another: a
    supervisor stopping n workers must stay within the grace its own parent gives it."""
    clock = [100.0]
    monkeypatch.setattr(processes.time, "monotonic", lambda: clock[0])

    class Stubborn:
        def __init__(self):
            self.signals, self.timeouts = [], []

        def poll(self):
            return None

        def send_signal(self, sig):
            self.signals.append(sig)

        def wait(self, timeout=None):
            self.timeouts.append(timeout)
            if timeout is not None:
                clock[0] += timeout  # waits out the whole timeout
                raise subprocess.TimeoutExpired("stubborn", timeout)

    first, second = Stubborn(), Stubborn()
    stop_processes([first, second], grace_s=5.0)
    assert (first.timeouts, second.timeouts) == ([5.0, None], [0.0, None])
    assert first.signals == second.signals == [signal.SIGTERM, signal.SIGKILL]


@pytest.mark.parametrize(
    "kernel_range, expected",
    [
        ("32768\t60999\n", (20768, 32768)),  # Linux's default: below it
        ("2000 50000\n", (50001, 62001)),  # starts too low: above it
        ("1024 65535\n", (65536, 65536)),  # no room at all
    ],
)
def test_the_unassigned_range_follows_the_kernels(tmp_path, monkeypatch, kernel_range, expected):
    path = tmp_path / "ip_local_port_range"
    path.write_text(kernel_range)
    assert processes._unassigned_ports(str(path)) == expected
    assert processes._unassigned_ports(str(tmp_path / "missing")) == (20768, 32768)  # not Linux: its default
    if expected[1] - expected[0] < 2:
        monkeypatch.setattr(processes, "_unassigned_ports", lambda: expected)
        with pytest.raises(YtlabelError, match="no room for 1 port\\(s\\) outside the kernel's ephemeral range"):
            free_port()


def test_launched_processes_get_only_their_own_contract(monkeypatch):
    """A rendezvous variable left in the launching shell never reaches a rank (a pod gets only its operator's)."""
    monkeypatch.setenv("MASTER_ADDR", "stale-host")
    monkeypatch.setenv("TF_CONFIG", "{}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    probe = "import os, sys; sys.exit(0 if (os.environ.get('MASTER_ADDR'), os.environ.get('TF_CONFIG')) == {} else 3)"
    v1 = [sys.executable, "-c", probe.replace("{}", "('127.0.0.1', None)")]
    v2 = [sys.executable, "-c", probe.replace("{}", "(None, None)")]
    assert launch_local(v1, 2, "torch", "v1") == 0
    assert launch_local(v2, 2, "torch", "v2") == 0
