"""Local processes and ports: what the launcher, the serving helper and the tests share.

A port handed to another process is chosen below the kernel's ephemeral range, and processes are
stopped with SIGTERM, a grace period, then SIGKILL.
"""

import os
import random
import signal
import socket
import subprocess
import threading
import time

from ytlabel.errors import YtlabelError

RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"  # the ports the kernel hands out for bind(0)


def free_port(span: int = 1) -> int:
    """A port P on 127.0.0.1 with P .. P+span-1 free now, chosen below the kernel's ephemeral range.

    The port is handed to another process, which binds it later. A port the kernel picked for
    bind(0) sits in the ephemeral range, and the kernel may give it to any new socket in between
    (gloo's pair listeners, the TCPStore's clients): that is how an exporter once lost its port.
    Ports below the range are only ever taken by an explicit bind.
    """
    low, high = _unassigned_ports()
    if high - low <= span:
        raise YtlabelError(f"no room for {span} port(s) outside the kernel's ephemeral range ({RANGE_FILE})")
    chooser = random.Random()  # not the global generator: training seeds it
    for _ in range(200):
        base = chooser.randrange(low, high - span)
        if all(_bindable(base + offset) for offset in range(span)):
            return base
    raise YtlabelError(f"no {span} consecutive free ports on 127.0.0.1 between {low} and {high}")


def _unassigned_ports(path: str = RANGE_FILE) -> tuple[int, int]:
    """[low, high): up to 12,000 ports outside the kernel's ephemeral range, below it (Linux's default
    range is 32768-60999) or above it when it starts too low to leave room."""
    try:
        with open(path) as handle:
            ephemeral_low, ephemeral_high = (int(value) for value in handle.read().split()[:2])
    except (OSError, ValueError):
        ephemeral_low, ephemeral_high = 32768, 60999
    if ephemeral_low - 1024 >= 1000:
        return max(1024, ephemeral_low - 12000), ephemeral_low
    return ephemeral_high + 1, min(65536, ephemeral_high + 12001)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_processes(processes, grace_s: float = 20.0, group: bool = False) -> None:
    """SIGTERM to every running process, then SIGKILL to those still alive `grace_s` later.

    `group`: signal each process's whole process group (started with start_new_session=True), so
    that what it started goes too. None entries are skipped.
    """
    processes = [process for process in processes if process is not None]

    def send(process, sig):
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)

    for process in processes:
        if process.poll() is None:
            send(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s  # one grace for all: n slow processes take grace_s, not n times it
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            send(process, signal.SIGKILL)
            process.wait()


def exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Ends this reader process when `parent`, the trainer that started it, is gone (killed, so it could not
    stop its readers): a thread checks every `poll_s` whether the process has been handed to another parent.
    Without it an orphaned reader waits forever for a slot or a request. Used by data readers
    (data/parallel.py, the DataLoader's workers) and `ytlabel serve --workers`' servers.
    The pid comes from the trainer: a reader that starts after the trainer died sees a parent of 1 already."""

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="ytlabel-exit-with-parent", daemon=True).start()
