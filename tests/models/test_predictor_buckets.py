"""Keras frame models run XLA-compiled on a few fixed shapes: padding a batch up to its bucket leaves
every video's logits as the plain model gives them, and large batches run in chunks."""

import os

import numpy as np
import pytest

from ytlabel.config import load_config
from ytlabel.models import predictor as predictors
from ytlabel.models.predictor import BATCH_BUCKETS, frame_buckets, load_predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bilstm_keras_run(synth_dir, tmp_path_factory) -> str:
    from ytlabel.training.run import train

    out = str(tmp_path_factory.mktemp("runs") / "bilstm-keras")
    train(
        load_config(
            "bilstm",
            "keras",
            os.path.join(synth_dir, "frame"),
            out,
            None,
            ["model.hidden=6", "max_frames=12", "epochs=1", "batch_size=8", "validation_fraction=0"],
        )
    )
    return out


def _batch(videos: int, frames: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, frames + 1, size=videos)
    rgb = rng.normal(size=(videos, frames, 1024)).astype(np.float32)
    audio = rng.normal(size=(videos, frames, 128)).astype(np.float32)
    for row, count in enumerate(counts):
        rgb[row, count:], audio[row, count:] = 0.0, 0.0
    return {"rgb": rgb, "audio": audio, "num_frames": counts.astype(np.int64)}


def test_bucket_shapes():
    assert frame_buckets(150) == (37, 75, 150) and frame_buckets(12) == (3, 6, 12) and frame_buckets(1) == (1,)
    assert BATCH_BUCKETS == (1, 4, 16, 64)


def test_bucketed_xla_logits_equal_the_plain_models(bilstm_keras_run):
    import keras

    import ytlabel.models.keras.layers  # noqa: F401

    predictor = load_predictor(bilstm_keras_run)
    assert predictor.warm_up() == len(BATCH_BUCKETS) * len(frame_buckets(12)) == 12
    plain = keras.models.load_model(
        predictors.runs.model_file(bilstm_keras_run, "keras"), compile=False, safe_mode=True
    )
    for videos, frames, seed in ((1, 12, 0), (3, 5, 1), (5, 12, 2), (70, 7, 3)):  # 70: two chunks of 64 and 6
        batch = _batch(videos, frames, seed)
        expected = plain(batch, training=False).numpy()
        got = predictor.predict(batch)
        assert got.shape == expected.shape == (videos, 3862)
        np.testing.assert_allclose(got, expected, atol=2e-5, err_msg=f"{videos} videos x {frames} frames")
