"""Finished tiny runs to publish: fc in PyTorch (evaluated) and fc on an expansion encoder."""

import json
import os

import pytest

from ytlabel.config import load_config
from ytlabel.evaluation.evaluate import evaluate_run
from ytlabel.features.autoencoder import ExpandConfig, expand
from ytlabel.training.run import train

TINY_FC = ["model.rgb_hidden=16", "model.audio_hidden=8", "model.head_hidden=16", "epochs=1", "batch_size=8",
           "validation_fraction=0"]


def _finished_run(synth_dir: str, out: str, *extra: str) -> str:
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
    encoder = str(tmp_path_factory.mktemp("encoder"))
    expand(os.path.join(synth_dir, "video"), encoder,
           ExpandConfig(rgb_dim=24, audio_dim=6, epochs=1, batch_size=8, l2_normalize=True), log=lambda *_: None)
    return _finished_run(synth_dir, str(tmp_path_factory.mktemp("runs") / "fc-encoder"), f"encoder={encoder}",
                         "l2_normalize=true")
