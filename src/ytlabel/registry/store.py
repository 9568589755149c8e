"""Where registry objects live: a local directory (`file://DIR`) or any S3 API (`s3://bucket/prefix`).

Both backends offer the same five operations on slash-separated keys, so the registry's publish protocol
(registry.py) is written once. S3 settings come from the variables KServe's storage initializer reads
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, S3_USE_HTTPS,
S3_VERIFY_SSL; see `ytlabel.data.sources.s3_client`). Credentials never appear in messages.
"""

import io
import os
import shutil
import tempfile
from collections.abc import Iterator

from ytlabel.data import sources
from ytlabel.errors import YtlabelError


class RegistryError(YtlabelError):
    """The registry cannot be reached, or what it holds is missing or damaged."""


class FileStore:
    """Keys are paths under `root`; writes go through a temporary file and a rename."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.uri = f"file://{self.root}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, path)

    def put_file(self, key: str, source: str) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
        os.close(handle)
        shutil.copyfile(source, partial)
        os.replace(partial, path)

    def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, target: str) -> None:
        shutil.copyfile(self._path(key), target)

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder, ending in '/'), recursively, partial writes excluded."""
        top = self._path(prefix)
        keys = []
        for folder, _, names in os.walk(top):
            for name in names:
                if not name.startswith(".partial-"):
                    keys.append(os.path.relpath(os.path.join(folder, name), self.root).replace(os.sep, "/"))
        return sorted(keys)

    def delete(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))


class S3Store:
    """Keys are objects under s3://bucket/prefix/ through the MinIO client (works with any S3 API)."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = sources.s3_client()
        try:
            exists = self.client.bucket_exists(self.bucket)
        except Exception as error:
            raise RegistryError(f"cannot reach registry {self.uri}: {sources.s3_reason(error)}") from error
        if not exists:
            raise RegistryError(f"registry {self.uri}: bucket {self.bucket!r} does not exist; create it first "
                                f"(e.g. `mc mb`, or the chart's bucket job)")

    def put(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.client.put_object(self.bucket, self.prefix + key, io.BytesIO(data),
                                                                 len(data)))

    def put_file(self, key: str, source: str) -> None:
        self._call("write", key, lambda: self.client.fput_object(self.bucket, self.prefix + key, source))

    def get(self, key: str) -> bytes | None:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self.prefix + key)
        except S3Error as error:
            if error.code == "NoSuchKey":
                return None
            raise RegistryError(f"cannot read {self.uri}/{key}: {sources.s3_reason(error)}") from error
        except Exception as error:
            raise RegistryError(f"cannot read {self.uri}/{key}: {sources.s3_reason(error)}") from error
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_file(self, key: str, target: str) -> None:
        self._call("read", key, lambda: self.client.fget_object(self.bucket, self.prefix + key, target))

    def list(self, prefix: str) -> list[str]:
        def listing() -> Iterator[str]:
            for obj in self.client.list_objects(self.bucket, prefix=self.prefix + prefix, recursive=True):
                yield obj.object_name.removeprefix(self.prefix)

        return sorted(self._call("list", prefix, lambda: list(listing())))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.client.remove_object(self.bucket, self.prefix + key))

    def _call(self, verb: str, key: str, operation):
        try:
            return operation()
        except Exception as error:
            raise RegistryError(f"cannot {verb} {self.uri}/{key}: {sources.s3_reason(error)}") from error


def open_store(uri: str) -> FileStore | S3Store:
    """`file://DIR`, a plain directory path, or `s3://bucket[/prefix]`."""
    if not uri:
        raise RegistryError("no registry given: pass --registry file://DIR or s3://bucket/prefix, "
                            "or set YTLABEL_REGISTRY")
    if uri.startswith("s3://"):
        if not uri.removeprefix("s3://").strip("/"):
            raise RegistryError(f"registry {uri!r}: name a bucket, e.g. s3://models/ytlabel")
        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise RegistryError(f"registry {uri!r}: only file:// and s3:// registries exist")
    return FileStore(uri.removeprefix("file://"))
