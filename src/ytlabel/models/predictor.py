"""Load a trained run directory (either framework) as a numpy-in, logits-out predictor.

Evaluation and serving use this; each framework is imported only when a run of that framework is loaded.
"""

import dataclasses
import json
import os
from collections.abc import Callable

import numpy as np

from ytlabel.data.batching import LoaderOptions
from ytlabel.errors import YtlabelError
from ytlabel.models.spec import EncoderRef, make_spec


@dataclasses.dataclass(frozen=True)
class Predictor:
    arch: str
    framework: str
    level: str
    options: LoaderOptions  # how inputs must be prepared (frames, stride, normalisation)
    predict: Callable[[dict], np.ndarray]  # numpy batch -> (batch, classes) float32 logits


def load_predictor(run_dir: str) -> Predictor:
    """Reads spec.json and the model file of a run written by `ytlabel train`.

    Raises:
        YtlabelError: not a run directory, or the model file is missing.
    """
    spec_path = os.path.join(run_dir, "spec.json")
    if not os.path.exists(spec_path):
        raise YtlabelError(f"{run_dir}: not a training run (no spec.json); pass the --out of `ytlabel train`")
    with open(spec_path) as handle:
        record = json.load(handle)
    fields = dict(record["spec"])
    encoder = fields.pop("encoder", None)
    if encoder and not os.path.isabs(encoder["path"]) and os.path.isdir(os.path.join(run_dir, encoder["path"])):
        # A registry version carries its encoder beside the model ("encoder"), wherever it was pulled to.
        encoder = {**encoder, "path": os.path.join(run_dir, encoder["path"])}
    spec = make_spec(record["arch"], encoder=EncoderRef(**encoder) if encoder else None, **fields)
    options = LoaderOptions(level=record["level"], max_frames=record["max_frames"], stride=record["stride"],
                            l2_normalize=record["l2_normalize"])
    predict = _torch(run_dir, record["arch"], spec) if record["framework"] == "torch" else _keras(run_dir)
    return Predictor(record["arch"], record["framework"], record["level"], options, predict)


def _torch(run_dir: str, arch: str, spec):
    import torch

    from ytlabel.models import torch as torch_models

    path = os.path.join(run_dir, "model", "model.pt")
    if not os.path.exists(path):
        raise YtlabelError(f"{run_dir}: no model/model.pt (did the run finish?)")
    model = torch_models.build(arch, spec)
    model.load_state_dict(torch.load(path, map_location="cpu"))
    model.eval()

    def predict(batch: dict) -> np.ndarray:
        with torch.no_grad():
            return model({key: torch.from_numpy(value) for key, value in batch.items()}).numpy()

    return predict


def _keras(run_dir: str):
    import keras

    import ytlabel.models.keras.layers  # noqa: F401  registers the custom layers for loading

    path = os.path.join(run_dir, "model", "model.keras")
    if not os.path.exists(path):
        raise YtlabelError(f"{run_dir}: no model/model.keras (did the run finish?)")
    model = keras.models.load_model(path, compile=False)
    import tensorflow as tf

    # A traced graph, not eager calls: eager Keras runs a masked LSTM step by step in Python (1.3 s for one
    # 150-frame video against 0.06 s traced). reduce_retracing generalises batch and frame sizes after the
    # second distinct shape instead of tracing each one.
    @tf.function(reduce_retracing=True)
    def forward(batch):
        return model(batch, training=False)

    return lambda batch: forward(batch).numpy()
