"""The run directory: local, or s3://bucket/prefix mirrored through a local staging directory.

Layout of a run (both frameworks):
    config.yaml        the resolved TrainConfig
    spec.json          architecture and spec, enough to rebuild the model
    model/             model.pt (PyTorch state_dict) or model.keras (Keras native format)
    checkpoints/       last.pt (PyTorch) or keras/ (weights with optimizer state + epoch)
    curves.csv         one row per epoch: loss, validation metrics, learning rate, throughput
    tensorboard/       event files with the same curves
    result.json        the comparison record, written last: a run without it is incomplete
"""

import dataclasses
import hashlib
import json
import os
import tempfile

import yaml

from ytlabel.data import sources
from ytlabel.errors import YtlabelError

RESULT = "result.json"


class RunDir:
    def __init__(self, uri: str):
        self.uri = uri
        self.remote = uri.startswith("s3://")
        if self.remote:
            digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
            self.local = os.path.join(tempfile.gettempdir(), "ytlabel-runs", digest)
            self._pull()
        else:
            self.local = uri
        os.makedirs(self.local, exist_ok=True)

    def path(self, *parts: str) -> str:
        path = os.path.join(self.local, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def write_json(self, name: str, value) -> None:
        _atomic_write(self.path(name), json.dumps(value, indent=2, sort_keys=True, default=_jsonable))

    def write_yaml(self, name: str, value) -> None:
        _atomic_write(self.path(name), yaml.safe_dump(value, sort_keys=True))

    def read_json(self, name: str):
        with open(self.path(name)) as handle:
            return json.load(handle)

    def exists(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.local, name))

    def sync(self) -> None:
        """Uploads the local mirror to S3 (no-op for local runs). Called by the writer only."""
        if not self.remote:
            return
        bucket, prefix = _split(self.uri)
        client = sources.s3_client()
        for root, _, files in os.walk(self.local):
            for name in files:
                if name.endswith(".partial"):
                    continue
                path = os.path.join(root, name)
                key = "/".join(filter(None, [prefix, os.path.relpath(path, self.local).replace(os.sep, "/")]))
                try:
                    client.fput_object(bucket, key, path)
                except Exception as error:
                    raise YtlabelError(f"cannot upload {path} to s3://{bucket}/{key}: {sources.s3_reason(error)}") from error

    def _pull(self) -> None:
        """Copies what the run already has on S3 (checkpoints to resume from)."""
        bucket, prefix = _split(self.uri)
        client = sources.s3_client()
        try:
            objects = list(client.list_objects(bucket, prefix=f"{prefix}/" if prefix else "", recursive=True))
            for obj in objects:
                relative = obj.object_name[len(prefix) :].lstrip("/")
                client.fget_object(bucket, obj.object_name, os.path.join(self.local, relative))
        except Exception as error:
            raise YtlabelError(f"cannot read run directory {self.uri}: {sources.s3_reason(error)}") from error


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def _atomic_write(path: str, text: str) -> None:
    with open(path + ".partial", "w") as handle:
        handle.write(text)
    os.replace(path + ".partial", path)


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def spec_record(config) -> dict:
    """spec.json: what serving and evaluation need to rebuild the model without the config."""
    return {"arch": config.arch, "framework": config.framework, "level": config.level,
            "spec": dataclasses.asdict(config.spec()), "max_frames": config.max_frames, "stride": config.stride,
            "l2_normalize": config.l2_normalize}
