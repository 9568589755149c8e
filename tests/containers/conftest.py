"""Fixtures of the container tests (`make test-images`): the engine, a pod network, S3 in a container.

Every test here runs the images `make images` built, exactly as `ytlabel.platform.images` names them; a
missing image fails the test (build them first), it is never skipped. Containers and networks carry the
label tools.engine.LABEL and are removed at the end, and a Docker daemon started here is stopped again.
"""

import contextlib
import json
import os
import sys
import time
import uuid

import pytest

from tools.engine import LABEL, Engine, remove_test_objects, running_engine
from ytlabel.platform import images

sys.path.insert(0, os.path.dirname(__file__))  # tests/containers/pods.py
from pods import Pod

from tests.helpers import seaweed

HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(items):
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def engine() -> Engine:
    with running_engine() as started:
        missing = [reference for reference in images.references() if started.image_id(reference) is None]
        assert not missing, f"images not built: {missing} (run `make images`)"
        try:
            yield started
        finally:
            remove_test_objects(started)


@pytest.fixture
def network(engine) -> str:
    """A pod network of its own per test: containers on it resolve each other by name (a cluster's DNS)."""
    name = f"ytlabel-test-{uuid.uuid4().hex[:8]}"
    engine.run("network", "create", "--label", f"{LABEL}=1", name)
    yield name
    for container in engine.run("ps", "-aq", "--filter", f"network={name}").stdout.split():
        engine.run("rm", "-f", "-v", container, check=False)
    engine.run("network", "rm", name, check=False)


@pytest.fixture
def s3_in_network(engine, network, tmp_path):
    """SeaweedFS's S3 gateway as a container `s3` on the pod network (`http://s3:8333` for the pods),
    published on a loopback port for the test. Yields an S3 helper."""
    with seaweed_container(engine, network, tmp_path) as store:
        yield store


class S3Store:
    """One S3 server seen from both sides: `pod_env` for the pods, `client` (MinIO) for the test."""

    def __init__(self, host_endpoint: str):
        from minio import Minio

        self.host_endpoint = host_endpoint
        self.client = Minio(
            host_endpoint.removeprefix("http://"),
            access_key=seaweed.ACCESS_KEY,
            secret_key=seaweed.SECRET_KEY,
            secure=False,
        )
        self.secret = {
            "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
            "AWS_ENDPOINT_URL": "http://s3:8333",
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }

    def host_env(self) -> dict:
        """The test process's own S3 variables (ytlabel.storage on the host reads this server)."""
        return {**self.secret, "AWS_ENDPOINT_URL": self.host_endpoint}

    def upload(self, local: str, uri: str) -> None:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)
        self.client.fput_object(bucket, key, local)

    def keys(self, uri: str) -> list[str]:
        bucket, prefix = uri.removeprefix("s3://").split("/", 1)
        return sorted(item.object_name for item in self.client.list_objects(bucket, prefix=prefix, recursive=True))

    def read(self, uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


@contextlib.contextmanager
def seaweed_container(engine: Engine, network: str, tmp_path):
    """`weed server -s3` (the host venv's static binary, mounted read-only) in the base image."""
    config = tmp_path / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "ytlabel-test",
                        "credentials": [{"accessKey": seaweed.ACCESS_KEY, "secretKey": seaweed.SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    os.chmod(config, 0o644)
    weed = seaweed.SeaweedServer.binary()
    name = f"s3-{network}"
    engine.run(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--network-alias",
        "s3",
        "--label",
        f"{LABEL}=1",
        "--user",
        "10001:10001",
        "--read-only",
        "--tmpfs",
        "/data:rw,mode=1777",
        "--tmpfs",
        "/tmp:rw,mode=1777",
        "--cap-drop",
        "ALL",
        "--volume",
        f"{weed}:/usr/local/bin/weed:ro",
        "--volume",
        f"{config}:/etc/s3.json:ro",
        "--publish",
        "127.0.0.1::8333",
        images.BASE,
        "weed",
        "server",
        "-dir=/data",
        "-ip=s3",
        "-ip.bind=0.0.0.0",
        "-s3",
        "-s3.config=/etc/s3.json",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=50",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    )
    pod = Pod(engine, name)
    store = S3Store(f"http://127.0.0.1:{pod.host_port(8333)}")
    deadline = time.monotonic() + 90
    while True:
        try:
            store.client.make_bucket("ytlabel")
            break
        except Exception as error:  # starting: connection refused, 503 until the filer is up
            if not pod.state()["Running"] or time.monotonic() > deadline:
                raise AssertionError(f"SeaweedFS in a container did not start: {error}\n{pod.logs()}") from error
            time.sleep(0.5)
    try:
        yield store
    finally:
        engine.run("rm", "-f", "-v", name, check=False)
