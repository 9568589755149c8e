"""Where registry objects live: a local directory (`file://DIR` or a path) or any S3 API (`s3://bucket/prefix`).

One class over `ytlabel.storage` offers the five operations the publish protocol (registry.py) needs on
slash-separated keys. Every key is checked before use, so a key that came from data (a manifest's
file list, an alias, a model name) cannot reach outside the registry root.
"""

import os

from ytlabel import storage
from ytlabel.errors import YtlabelError


class RegistryError(YtlabelError):
    """The registry cannot be reached, or what it holds is missing or damaged."""


class Store:
    """Keys are files under a directory, or objects under s3://bucket/prefix/."""

    def __init__(self, uri: str):
        location = storage.parse(uri)
        self.remote = location.remote
        if location.remote:
            self.root = uri.rstrip("/")
            self.uri = self.root
            self._check_bucket(location.bucket)
        else:
            self.root = os.path.abspath(location.path)
            self.uri = f"file://{self.root}"

    def create(self) -> None:
        """Makes a local registry's directory (a push may start a registry; S3 needs its bucket already)."""
        if not self.remote:
            self._call(lambda: os.makedirs(self.root, exist_ok=True))

    def _check_bucket(self, bucket: str) -> None:
        client = storage.s3_client()
        try:
            exists = client.bucket_exists(bucket)
        except Exception as error:
            raise RegistryError(f"cannot reach registry {self.uri}: {storage.s3_reason(error)}") from error
        if not exists:
            raise RegistryError(
                f"registry {self.uri}: bucket {bucket!r} does not exist; create it first "
                f"(e.g. `mc mb`, or the chart's bucket job)"
            )

    def _where(self, key: str) -> str:
        try:
            return storage.join(self.root, key)
        except storage.StorageError as error:
            raise RegistryError(f"registry {self.uri}: unsafe key: {error}") from None

    def put(self, key: str, data: bytes) -> None:
        self._call(lambda: storage.write_bytes(self._where(key), data))

    def put_file(self, key: str, source: str) -> None:
        self._call(lambda: storage.upload(source, self._where(key)))

    def get(self, key: str) -> bytes | None:
        try:
            return storage.read_bytes(self._where(key))
        except storage.NotFound:
            return None
        except storage.StorageError as error:
            raise RegistryError(str(error)) from error

    def get_file(self, key: str, target: str) -> None:
        self._call(lambda: storage.download(self._where(key), target))

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder, ending in '/', or '' for all), recursively."""
        if not self.remote and not os.path.isdir(self.root):
            raise RegistryError(
                f"registry {self.uri} does not exist (no such directory): check the path; "
                f"`ytlabel registry push` creates a new one"
            )
        folder = self._where(prefix.rstrip("/")) if prefix.strip("/") else self.root
        found = self._call(lambda: storage.listdir(folder))
        return sorted(storage.relative(uri, self.root) for uri in found)

    def delete(self, key: str) -> None:
        self._call(lambda: storage.delete(self._where(key)))

    @staticmethod
    def _call(operation):
        try:
            return operation()
        except storage.StorageError as error:
            raise RegistryError(str(error)) from error
        except OSError as error:
            raise RegistryError(f"{error.filename or ''}: {error.strerror or error}") from error


def open_store(uri: str) -> Store:
    """`file://DIR`, a plain directory path, or `s3://bucket[/prefix]`."""
    if not uri:
        raise RegistryError(
            "no registry given: pass --registry file://DIR or s3://bucket/prefix, or set YTLABEL_REGISTRY"
        )
    if uri.startswith("s3://") and not uri.removeprefix("s3://").strip("/"):
        raise RegistryError(f"registry {uri!r}: name a bucket, e.g. s3://models/ytlabel")
    if "://" in uri and not uri.startswith(("file://", "s3://")):
        raise RegistryError(f"registry {uri!r}: only file:// and s3:// registries exist")
    return Store(uri)
