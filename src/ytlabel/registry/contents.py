"""What a registry version holds: the files of a finished training run and the manifest's fields.

The publish protocol (version claims, files first, manifest last, verified pulls) is in registry.py.
"""

import hashlib
import json
import os
import subprocess

import yaml

import ytlabel
from ytlabel.registry.store import RegistryError

RUN_FILES = ("spec.json", "config.yaml", "result.json", "metrics.json", "curves.csv")  # the first three required


def collect_run(run_dir: str) -> tuple[dict[str, str | bytes], dict]:
    """The files of a finished run to publish (relative path -> local path or bytes) and manifest fields."""
    if run_dir.startswith("s3://"):
        from ytlabel.training.outputs import RunDir

        run_dir = RunDir(run_dir).local  # pulls the run's objects into the local mirror
    missing = [name for name in RUN_FILES[:3] if not os.path.exists(os.path.join(run_dir, name))]
    if missing:
        raise RegistryError(f"{run_dir}: not a finished training run (missing {', '.join(missing)}); "
                            f"push the --out of a completed `ytlabel train`")
    with open(os.path.join(run_dir, "spec.json")) as handle:
        spec_record = json.load(handle)
    with open(os.path.join(run_dir, "config.yaml")) as handle:
        config = yaml.safe_load(handle)
    with open(os.path.join(run_dir, "result.json")) as handle:
        result = json.load(handle)
    model_dir = os.path.join(run_dir, "model")
    model_files = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
    if not model_files:
        raise RegistryError(f"{run_dir}: no model/ files; the run did not save a model")
    files: dict[str, str | bytes] = {f"model/{name}": os.path.join(model_dir, name) for name in model_files}
    for name in RUN_FILES[1:]:
        if os.path.exists(os.path.join(run_dir, name)):
            files[name] = os.path.join(run_dir, name)
    encoder = None
    spec = dict(spec_record["spec"])
    if spec.get("encoder"):
        source = spec["encoder"]["path"]
        if not os.path.isabs(source) and os.path.isdir(os.path.join(run_dir, source)):
            source = os.path.join(run_dir, source)  # a pulled version: already relative to its directory
        if not os.path.isdir(source):
            raise RegistryError(f"{run_dir}: the model's encoder {source} is gone; it must travel with the model")
        for name in sorted(os.listdir(source)):
            files[f"encoder/{name}"] = os.path.join(source, name)
        encoder = {"source": spec["encoder"]["path"], **file_digest(os.path.join(source, "encoder.npz"))}
        spec["encoder"] = {**spec["encoder"], "path": "encoder"}
    files["spec.json"] = json.dumps({**spec_record, "spec": spec}, indent=2, sort_keys=True).encode()
    metrics = None
    if os.path.exists(os.path.join(run_dir, "metrics.json")):
        with open(os.path.join(run_dir, "metrics.json")) as handle:
            metrics = json.load(handle)
    record = {
        "arch": spec_record["arch"], "framework": spec_record["framework"], "level": spec_record["level"],
        "spec": spec, "config": config, "metrics": headline(metrics), "encoder": encoder,
        "dataset": result.get("dataset"),
        "training": {key: result.get(key) for key in ("epochs", "train_loss", "videos_per_s", "train_s", "params",
                                                      "world_size", "device")},
    }
    return files, record


def headline(metrics: dict | None) -> dict | None:
    if not metrics:
        return None
    keys = ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1", "loss", "videos", "data")
    return {key: metrics[key] for key in keys if key in metrics}


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
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(ytlabel.__file__),
                              capture_output=True, text=True, timeout=5)
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"ytlabel": ytlabel.__version__, "git": commit}
