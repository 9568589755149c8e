"""The run directory: what `ytlabel train` writes and every later stage reads, local or on s3://.

Layout of a run (both frameworks):
    config.yaml        the resolved TrainConfig: every setting
    spec.json          architecture and spec, enough to rebuild the model (the "run record")
    data.json          the shards it reads: training shards with record counts and a digest, validation shards
    model/             model.pt (PyTorch state_dict) or model.keras (Keras native format)
    checkpoints/       last.pt (PyTorch) or keras/ (weights with optimizer state + epoch)
    curves.csv         one row per epoch: loss, validation metrics, learning rate, throughput
    tensorboard/       event files with the same curves
    result.json        the comparison record, written last: a run without it is incomplete
    metrics.json       written by `ytlabel evaluate` (the YT8M metrics on a held-out dataset)

Training writes through `RunDir`; the predictor, evaluate, report, the registry, the CLI and the
pipeline read through the functions below, so every verb that takes a run accepts a local path or s3://.
"""

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator

import yaml

from ytlabel import storage
from ytlabel.errors import YtlabelError
from ytlabel.kinds import KERAS, TORCH

CONFIG = "config.yaml"
SPEC = "spec.json"
DATA = "data.json"
RESULT = "result.json"
METRICS = "metrics.json"
CURVES = "curves.csv"
MODEL_DIR = "model"
MODEL_FILES = {TORCH: "model/model.pt", KERAS: "model/model.keras"}
TORCH_CHECKPOINT = "checkpoints/last.pt"  # tensors only: loads with torch.load(weights_only=True)
TORCH_CHECKPOINT_STATE = "checkpoints/state.json"  # epoch, step, counters and curves of that checkpoint
KERAS_CHECKPOINT = "checkpoints/keras/last.weights.h5"  # arrays only: loading it executes nothing from the file
KERAS_CHECKPOINT_STATE = "checkpoints/keras/state.json"
TENSORBOARD = "tensorboard/train"
ENCODER_DIR = "encoder"  # where a registry version carries its encoder, relative to the version
VERSION_MANIFEST = "manifest.json"  # a registry version's files and digests (written by the registry, last)
PUBLISHED = (SPEC, CONFIG, RESULT, METRICS, CURVES, DATA)  # copied into a registry version; the first three required
HEADLINE = ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1", "genre_gap", "loss")  # shown everywhere


class RunError(YtlabelError):
    """A directory that is not (or not yet) the finished run a verb needs."""


class RunDir:
    """A run being written: local, or s3://bucket/prefix mirrored through a local staging directory.

    The writer rank writes into `local` and calls `sync` at each checkpoint; an S3 run pulls what the
    prefix already holds when opened, so a restarted pod resumes from its last checkpoint.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self.remote = storage.is_remote(uri)
        if self.remote:
            self.local = self.staging(uri)
            storage.sync_down(uri.rstrip("/"), self.local)
        else:
            self.local = uri
        try:  # fail now, not after an epoch: the directory must exist and take files
            os.makedirs(self.local, exist_ok=True)
            storage.AtomicTarget(os.path.join(self.local, "write-probe")).discard()
        except OSError as error:
            raise RunError(f"cannot write the run directory {self.local} ({error.strerror})") from error

    @staticmethod
    def staging(uri: str) -> str:
        """The local directory an s3:// run is written through."""
        return os.path.join(tempfile.gettempdir(), "ytlabel-runs", hashlib.sha256(uri.encode()).hexdigest()[:16])

    def path(self, *parts: str) -> str:
        path = os.path.join(self.local, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def write_json(self, name: str, value) -> None:
        storage.atomic_write(self.path(name), _dumps(value, f"{self.uri}/{name}"))

    def write_yaml(self, name: str, value) -> None:
        storage.atomic_write(self.path(name), yaml.safe_dump(value, sort_keys=True))

    def read_json(self, name: str):
        return storage.read_json(os.path.join(self.local, name))

    def exists(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.local, name))

    def remove(self, name: str) -> None:
        """Removes one file of the run, here and on S3."""
        storage.delete(os.path.join(self.local, name))
        if self.remote:
            storage.delete(storage.join(self.uri.rstrip("/"), name))

    def sync(self) -> None:
        """Uploads the local mirror to S3 (no-op for local runs). Called by the writer only."""
        if self.remote:
            storage.sync_up(self.local, self.uri.rstrip("/"))  # partial writes are never uploaded


def _dumps(value, where: str) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=jsonable, allow_nan=False)
    except ValueError as error:
        raise RunError(f"refusing to write {where}: {error} (a non-finite number)") from error


def jsonable(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- writing what later stages add --------------------------------------------------------------------


def write_metrics(run: str, metrics: dict) -> str:
    """metrics.json into a run directory (or any directory), local or s3://; returns where it went."""
    target = _file(run, METRICS)
    storage.write_bytes(target, _dumps(metrics, target))
    return target


# --- reading a finished run ---------------------------------------------------------------------------


def _file(run: str, name: str) -> str:
    return storage.join(run, name)


def read_spec(run: str) -> dict:
    """spec.json of a run or registry version.

    Raises:
        RunError: the directory holds no spec.json (not a training run).
    """
    try:
        return storage.read_json(_file(run, SPEC))
    except storage.NotFound:
        raise RunError(f"{run}: not a training run (no {SPEC}); pass the --out of `ytlabel train`") from None


def read_result(run: str) -> dict:
    try:
        return storage.read_json(_file(run, RESULT))
    except storage.NotFound:
        raise RunError(f"{run}: no {RESULT} (not a finished `ytlabel train` run)") from None


def read_config(run: str) -> dict:
    """config.yaml of the run ({} when absent)."""
    try:
        return yaml.safe_load(storage.read_bytes(_file(run, CONFIG))) or {}
    except storage.NotFound:
        return {}


def read_metrics(run: str) -> dict | None:
    """metrics.json written by `ytlabel evaluate`, or None when the run was not evaluated."""
    try:
        return storage.read_json(_file(run, METRICS))
    except storage.NotFound:
        return None


def read_curves(run: str) -> list[dict]:
    try:
        return list(csv.DictReader(io.StringIO(storage.read_bytes(_file(run, CURVES)).decode())))
    except storage.NotFound:
        return []


@contextlib.contextmanager
def local_run(run: str) -> Iterator[str]:
    """A local directory with the run's files for the duration of the block: the run itself, or a fresh copy
    of what a reader needs from an s3:// run (the published files, model/ and a version's encoder/; not
    checkpoints or TensorBoard), removed after the block.

    Raises:
        RunError: an s3:// prefix with nothing under it.
    """

    def needed(key: str) -> bool:
        return key in PUBLISHED or key.startswith((f"{MODEL_DIR}/", f"{ENCODER_DIR}/")) or key == VERSION_MANIFEST

    with contextlib.ExitStack() as stack:
        try:  # only the download's NotFound is this error, not one raised inside the caller's block
            local = stack.enter_context(storage.local_copy(run, keep=needed))
        except storage.NotFound:
            raise RunError(
                f"{run}: not a training run (nothing stored there); pass the --out of `ytlabel train`"
            ) from None
        yield local


def model_file(local_dir: str, framework: str) -> str:
    """The saved model of a local run for `framework`.

    Raises:
        RunError: the run has not saved its model (unfinished or interrupted).
    """
    path = os.path.join(local_dir, *MODEL_FILES[framework].split("/"))
    if not os.path.exists(path):
        raise RunError(f"{local_dir}: no {MODEL_FILES[framework]} (did the run finish?)")
    return path


def encoder_location(local_dir: str, encoder_path: str) -> str:
    """Where a run's encoder lies: a registry version carries it beside the model (a relative path that
    exists inside the version); a training run names it as given to `ytlabel train` (a path or s3://)."""
    if not storage.is_remote(encoder_path) and not os.path.isabs(encoder_path):
        inside = os.path.join(local_dir, encoder_path)
        if os.path.isdir(inside):
            return inside
    return encoder_path


# --- what a run is, in words ----------------------------------------------------------------------------


def run_name(arch: str, framework: str, expansion: bool) -> str:
    """The directory and job name of one grid cell, e.g. fc-stream-lstm-keras-expanded."""
    return f"{arch.replace('_', '-')}-{framework}{'-expanded' if expansion else ''}"


def run_label(arch: str, framework: str, expansion: bool) -> str:
    """How a run is named to people, e.g. fc/torch + expansion."""
    return f"{arch}/{framework}" + (" + expansion" if expansion else "")


def headline(metrics: dict | None, extra: tuple[str, ...] = ()) -> dict | None:
    """The headline metrics of a metrics.json (plus `extra` keys), in a fixed order; None without metrics."""
    if not metrics:
        return None
    return {key: metrics[key] for key in (*HEADLINE, *extra) if metrics.get(key) is not None}


def format_headline(metrics: dict) -> str:
    return ", ".join(f"{key} {metrics[key]:.4f}" for key in HEADLINE if metrics.get(key) is not None)
