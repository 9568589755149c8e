"""What a registry version holds: the files of a finished training run and the manifest's fields.

The publish protocol (version claims, files first, manifest last, verified pulls) is in registry.py.
"""

import contextlib
import hashlib
import json
import math
import os
import subprocess
from collections.abc import Iterator

import ytlabel
from ytlabel import runs, storage
from ytlabel.registry.store import RegistryError


@contextlib.contextmanager
def collected_run(run_dir: str) -> Iterator[tuple[dict[str, str | bytes], dict]]:
    """The files of a finished run (local or s3://) to publish (relative path -> local path or bytes) and
    the manifest's fields, for the duration of the block: an s3:// run (or encoder) is read from a temporary
    copy that goes after it. Only regular files are published: a symbolic link in the run is refused."""
    with contextlib.ExitStack() as copies:
        yield _collect(run_dir, copies.enter_context(runs.local_run(run_dir)), copies)


def _collect(run_dir: str, local: str, copies: contextlib.ExitStack) -> tuple[dict[str, str | bytes], dict]:
    missing = [name for name in runs.PUBLISHED[:3] if not os.path.exists(os.path.join(local, name))]
    if missing:
        raise RegistryError(
            f"{run_dir}: not a finished training run (missing {', '.join(missing)}); "
            f"push the --out of a completed `ytlabel train`"
        )
    spec_record = runs.read_spec(local)
    config = runs.read_config(local)
    result = runs.read_result(local)
    model_files = _model_files(run_dir, os.path.join(local, runs.MODEL_DIR))
    if not model_files:
        raise RegistryError(f"{run_dir}: no {runs.MODEL_DIR}/ files; the run did not save a model")
    paths: dict[str, str] = dict(model_files)
    for name in runs.PUBLISHED[1:]:
        if os.path.lexists(os.path.join(local, name)):
            paths[name] = os.path.join(local, name)
    encoder = None
    spec = dict(spec_record["spec"])
    if spec.get("encoder"):
        source = runs.encoder_location(local, spec["encoder"]["path"])
        try:
            source = copies.enter_context(storage.local_copy(source))
        except storage.NotFound:
            source = ""
        if not os.path.isdir(source):
            raise RegistryError(
                f"{run_dir}: the model's encoder {spec['encoder']['path']} is gone; it must travel with the model"
            )
        for name in sorted(os.listdir(source)):
            paths[f"{runs.ENCODER_DIR}/{name}"] = os.path.join(source, name)
        encoder = {"source": spec["encoder"]["path"], **file_digest(os.path.join(source, "encoder.npz"))}
        spec["encoder"] = {**spec["encoder"], "path": runs.ENCODER_DIR}
    run_root = os.path.realpath(local)
    encoder_root = os.path.realpath(source) if encoder else run_root
    for relative, path in paths.items():
        root = encoder_root if relative.startswith(f"{runs.ENCODER_DIR}/") else run_root
        inside = os.path.realpath(path).startswith(root + os.sep)
        if not os.path.isfile(path) or os.path.islink(path) or not inside:
            raise RegistryError(
                f"{run_dir}: {relative} is not a regular file of the run (a symbolic link, a "
                f"folder, or a path leading outside it); only the run's own files are published"
            )
    files: dict[str, str | bytes] = {
        **paths,
        runs.SPEC: json.dumps({**spec_record, "spec": spec}, indent=2, sort_keys=True).encode(),
    }
    record = {
        "arch": spec_record["arch"],
        "framework": spec_record["framework"],
        "level": spec_record["level"],
        "spec": spec,
        "config": config,
        "metrics": headline(runs.read_metrics(local)),
        "encoder": encoder,
        "dataset": result.get("dataset"),
        "training": {
            key: result.get(key)
            for key in ("epochs", "train_loss", "videos_per_s", "train_s", "params", "world_size", "device")
        },
    }
    nonfinite = sorted(
        f"{part}.{key}"
        for part in ("metrics", "training")
        for key, value in (record[part] or {}).items()
        if isinstance(value, float) and not math.isfinite(value)
    )
    if nonfinite:
        raise RegistryError(
            f"{run_dir}: {', '.join(nonfinite)} not finite (NaN or infinity); a model with "
            f"non-finite figures is not published"
        )
    return files, record


def _model_files(run_dir: str, model_dir: str) -> dict[str, str]:
    """model/ files by relative path, nested folders included (an ensemble keeps its members there); a
    symbolic link to a folder is refused rather than skipped."""
    found = {}
    for folder, folders, names in os.walk(model_dir):
        for name in folders:
            if os.path.islink(os.path.join(folder, name)):
                raise RegistryError(
                    f"{run_dir}: {os.path.relpath(os.path.join(folder, name), os.path.dirname(model_dir))}"
                    f" is a symbolic link to a folder; only the run's own files are published"
                )
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, os.path.dirname(model_dir)).replace(os.sep, "/")] = path
    return dict(sorted(found.items()))


def headline(metrics: dict | None) -> dict | None:
    """The metrics a manifest and `registry list` show: the run's headline plus the evaluation's size."""
    return runs.headline(metrics, extra=("videos", "data"))


def digest_bytes(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def file_digest(path: str) -> dict:
    """{"sha256": hex digest, "bytes": size} of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"sha256": digest.hexdigest(), "bytes": size}


def code_version() -> dict:
    """The package version and, from a git checkout, the commit (None in an installed image)."""
    commit = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=os.path.dirname(ytlabel.__file__),
            capture_output=True,
            text=True,
            timeout=5,
        )
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"ytlabel": ytlabel.__version__, "git": commit}
