"""Shared fixtures: a small synthetic dataset, the shipped real sample, a real S3 server, finished runs."""

import json
import os

import pytest

from tests.helpers.model_helpers import TINY_FC
from ytlabel.data import synth

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
    from tests.helpers import seaweed

    with seaweed.seaweedfs_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """Points ytlabel's S3 settings at the test server; returns a MinIO client for setup."""
    from minio import Minio

    from tests.helpers import seaweed

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.SECRET_KEY)
    return Minio(
        s3_endpoint.removeprefix("http://"), access_key=seaweed.ACCESS_KEY, secret_key=seaweed.SECRET_KEY, secure=False
    )


# --- finished tiny runs (registry and serving tests) ---------------------------------------------


def _finished_run(synth_dir: str, out: str, *extra: str) -> str:
    """A 1-epoch tiny fc run in PyTorch on the synthetic video level, evaluated (metrics.json)."""
    from ytlabel.config import load_config
    from ytlabel.evaluation.evaluate import evaluate_run
    from ytlabel.training.run import train

    data = os.path.join(synth_dir, "video")
    train(load_config("fc", "torch", data, out, None, [*TINY_FC, *extra]))
    with open(os.path.join(out, "metrics.json"), "w") as handle:
        json.dump(evaluate_run(out, [data], batch_size=8), handle)
    return out


@pytest.fixture(scope="session")
def fc_run(synth_dir, tmp_path_factory) -> str:
    return _finished_run(synth_dir, str(tmp_path_factory.mktemp("runs") / "fc-torch"))


@pytest.fixture(scope="session")
def fc_encoder_run(synth_dir, tmp_path_factory) -> str:
    from ytlabel.features.autoencoder import ExpandConfig, expand

    encoder = str(tmp_path_factory.mktemp("encoder"))
    expand(
        os.path.join(synth_dir, "video"),
        encoder,
        ExpandConfig(rgb_dim=24, audio_dim=6, epochs=1, batch_size=8, l2_normalize=True),
        log=lambda *_: None,
    )
    return _finished_run(
        synth_dir, str(tmp_path_factory.mktemp("runs") / "fc-encoder"), f"encoder={encoder}", "l2_normalize=true"
    )
