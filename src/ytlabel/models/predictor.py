"""Load a trained run directory (either framework) as a numpy-in, logits-out predictor.

Evaluation and serving use this; each framework is imported only when a run of that framework is loaded.
"""

import dataclasses
import os
import pickle
from collections.abc import Callable

import numpy as np

from ytlabel import runs, storage
from ytlabel.data import schema
from ytlabel.data.examples import InputOptions
from ytlabel.kinds import FRAME, TORCH
from ytlabel.models.runspec import ENSEMBLE, RunSpec
from ytlabel.models.spec import probabilities as spec_probabilities

MEMBERS_DIR = "members"  # under model/: one folder per member run
COMBINE = "mean_probability"  # the only rule: the mean of the members' probabilities, returned as logits
BATCH_BUCKETS = (1, 4, 16, 64)  # Keras frame models: batch sizes compiled (a larger batch runs in chunks)


@dataclasses.dataclass(frozen=True)
class Predictor:
    arch: str
    framework: str
    level: str
    options: InputOptions  # how inputs must be prepared (frames, stride, normalisation)
    predict: Callable[[dict], np.ndarray]  # numpy batch -> (batch, classes) float32 logits
    warm_up: Callable[[], int] = lambda: 0  # compiles every input shape ahead of requests; returns how many


def load_predictor(run_dir: str) -> Predictor:
    """Reads spec.json and the model file of a run written by `ytlabel train` (local or s3://), or of a
    pulled registry version.

    Raises:
        RunError: not a run directory, or the model file is missing.
    """
    with runs.local_run(run_dir) as local:  # everything is read into memory before the copy goes
        run = RunSpec.from_record(runs.read_spec(run_dir), lambda path: runs.encoder_location(local, path))
        if run.arch == ENSEMBLE:
            return _ensemble(local, run)
        model_path = runs.model_file(local, run.framework)
        if run.framework == TORCH:
            return Predictor(run.arch, "torch", run.level, run.options, _torch(model_path, run.arch, run.spec))
        forward = _keras(model_path, compiled=run.level == FRAME)
    if run.level != FRAME:
        return Predictor(run.arch, "keras", run.level, run.options, forward, lambda: _video_warm_up(forward))
    predict, warm_up = _shape_buckets(forward, run.options.max_frames)
    return Predictor(run.arch, "keras", run.level, run.options, predict, warm_up)


def _ensemble(local: str, run: RunSpec) -> Predictor:
    """Each member's predictor; the answer is the logit of the mean of their probabilities."""
    spec = run.spec
    if spec.get("combine") != COMBINE or not isinstance(spec.get("members"), list) or len(spec["members"]) < 2:
        raise runs.RunError(f"{local}: an ensemble spec needs combine={COMBINE!r} and two or more members")
    root = os.path.realpath(os.path.join(local, runs.MODEL_DIR, MEMBERS_DIR))
    members = []
    for member in spec["members"]:
        path = os.path.join(local, *storage.check_key(member, "ensemble member").split("/"))
        if os.path.realpath(path) != os.path.join(root, os.path.basename(path)) or os.path.islink(path):
            raise runs.RunError(
                f"{local}: ensemble member {member!r} is not a folder under {runs.MODEL_DIR}/{MEMBERS_DIR}/"
            )
        members.append(load_predictor(path))
    if any(member.options != run.options for member in members):
        raise runs.RunError(f"{local}: the members read their inputs differently from the ensemble's spec")

    def predict(batch: dict) -> np.ndarray:
        probabilities = np.mean([spec_probabilities(member.predict(batch)) for member in members], axis=0)
        probabilities = np.clip(probabilities, 1e-7, 1.0 - 1e-7)
        return np.log(probabilities / (1.0 - probabilities)).astype(np.float32)

    return Predictor(
        ENSEMBLE,
        run.framework,
        run.level,
        run.options,
        predict,
        lambda: sum(member.warm_up() for member in members),
    )


def _torch(path: str, arch: str, spec):
    import torch

    from ytlabel.models import torch as torch_models

    model = torch_models.build(arch, spec)
    try:  # weights_only: tensors and plain containers; a pickle that would run code is refused
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError) as error:
        raise runs.RunError(f"{path}: not a model this spec can load ({_first_line(error)})") from None
    model.eval()

    def predict(batch: dict) -> np.ndarray:
        with torch.no_grad():
            return model({key: torch.from_numpy(value) for key, value in batch.items()}).numpy()

    return predict


def _keras(path: str, compiled: bool):
    import keras

    import ytlabel.models.keras.layers  # noqa: F401  registers the custom layers for loading

    try:  # safe_mode: a Lambda layer's code in the file is refused, not run
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise runs.RunError(f"{path}: not a Keras model this project can load safely ({_first_line(error)})") from None
    import tensorflow as tf

    # A traced graph, not eager calls: eager Keras runs a masked LSTM step by step in Python (1.3 s for one
    # 150-frame video against 0.06 s traced). Frame models are compiled with XLA besides (half the traced
    # graph's time for a 150-frame bilstm); XLA compiles once per input shape, so they are called on a few
    # fixed shapes only (`_shape_buckets`). reduce_retracing generalises the video models' batch size.
    @tf.function(jit_compile=compiled, reduce_retracing=not compiled)
    def forward(batch):
        return model(batch, training=False)

    return lambda batch: forward(batch).numpy()


def _video_warm_up(forward: Callable[[dict], np.ndarray]) -> int:
    """Traces a Keras video model for two batch sizes: reduce_retracing then keeps one graph for any batch, so
    no request pays a trace later (docs/serving.md)."""
    for videos in (1, 2):
        forward(
            {
                "rgb": np.zeros((videos, schema.RGB_DIM), np.float32),
                "audio": np.zeros((videos, schema.AUDIO_DIM), np.float32),
            }
        )
    return 2


def frame_buckets(max_frames: int) -> tuple[int, ...]:
    """Frame counts a Keras frame model is compiled for: a quarter, half and all of `max_frames`."""
    return tuple(sorted({max(1, max_frames // 4), max(1, max_frames // 2), max_frames}))


def _shape_buckets(forward: Callable[[dict], np.ndarray], max_frames: int):
    """`forward` called only on BATCH_BUCKETS x frame_buckets shapes: a batch is zero-padded up to the next
    bucket (padding rows get num_frames 1) and the answer cut back. Frames past num_frames, and rows that
    are not returned, do not change a row's logits (tests/models/test_parity.py, tests/serving)."""
    frame_sizes = frame_buckets(max_frames)

    def predict(batch: dict) -> np.ndarray:
        videos, frames = batch["rgb"].shape[:2]
        if videos > BATCH_BUCKETS[-1]:
            step = BATCH_BUCKETS[-1]
            return np.concatenate(
                [
                    predict({key: value[start : start + step] for key, value in batch.items()})
                    for start in range(0, videos, step)
                ]
            )
        rows = next(size for size in BATCH_BUCKETS if size >= videos)
        length = next((size for size in frame_sizes if size >= frames), frames)
        padded = {
            key: np.pad(batch[key], ((0, rows - videos), (0, length - frames), (0, 0))) for key in ("rgb", "audio")
        }
        padded["num_frames"] = np.concatenate([batch["num_frames"], np.ones(rows - videos, np.int64)])
        return forward(padded)[:videos]

    def warm_up() -> int:
        for rows in BATCH_BUCKETS:
            for length in frame_sizes:
                forward(
                    {
                        "rgb": np.zeros((rows, length, schema.RGB_DIM), np.float32),
                        "audio": np.zeros((rows, length, schema.AUDIO_DIM), np.float32),
                        "num_frames": np.ones(rows, np.int64),
                    }
                )
        return len(BATCH_BUCKETS) * len(frame_sizes)

    return predict, warm_up


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]
