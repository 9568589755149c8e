"""Shared fixtures: a small synthetic dataset, the shipped real sample, a real S3 server."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/seaweed.py

from ytlabel.data import synth  # noqa: E402

SAMPLE_DIR = os.path.join(os.path.dirname(__file__), "..", "src", "ytlabel", "data", "assets", "sample")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> str:
    """24 videos of 10..20 frames in 3 shards per level, seed 3."""
    out = str(tmp_path_factory.mktemp("synth"))
    synth.generate(synth.SynthConfig(videos=24, shards=3, seed=3, frames=20, frame_jitter=0.5), out)
    return out


@pytest.fixture(scope="session")
def sample_shards() -> list[str]:
    return [os.path.join(SAMPLE_DIR, f"validate000{i}.tfrecord") for i in (0, 1)]


@pytest.fixture(scope="session")
def s3_endpoint():
    import seaweed

    with seaweed.seaweedfs_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """Points ytlabel's S3 settings at the test server; returns a MinIO client for setup."""
    import seaweed
    from minio import Minio

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.SECRET_KEY)
    return Minio(s3_endpoint.removeprefix("http://"), access_key=seaweed.ACCESS_KEY,
                 secret_key=seaweed.SECRET_KEY, secure=False)
