"""Locations: URIs parsed, keys checked to stay inside their root, and the errors of the storage layer."""

import dataclasses
import os

from ytlabel.errors import YtlabelError

S3 = "s3://"
FILE = "file://"
PARTIAL_PREFIX = ".partial-"  # local temporary names; listings never return them


class StorageError(YtlabelError):
    """A location cannot be read or written: missing, unreachable, or refused.

    `reason` is the cause alone (e.g. "NoSuchBucket: ..."), for callers that name the location themselves.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class NotFound(StorageError):
    """The named object or file does not exist."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A parsed URI: `bucket` and `key` for S3; `path` (absolute or relative, as given) for local files."""

    uri: str
    bucket: str = ""
    key: str = ""
    path: str = ""

    @property
    def remote(self) -> bool:
        return bool(self.bucket)


def parse(uri: str) -> Location:
    """`s3://bucket/key`, `file://PATH` or a plain path -> Location.

    Raises:
        StorageError: an empty URI, an S3 URI without a bucket, or another scheme.
    """
    if not uri:
        raise StorageError("empty location: pass a path, file://PATH or s3://bucket/prefix")
    if uri.startswith(S3):
        bucket, _, key = uri[len(S3) :].partition("/")
        if not bucket:
            raise StorageError(f"{uri}: an S3 URI needs a bucket, e.g. s3://bucket/prefix")
        return Location(uri=uri, bucket=bucket, key=key)
    if uri.startswith(FILE):
        return Location(uri=uri, path=uri[len(FILE) :])
    if "://" in uri:
        raise StorageError(f"{uri}: only local paths, file:// and s3:// are supported")
    return Location(uri=uri, path=uri)


def is_remote(uri: str) -> bool:
    return uri.startswith(S3)


def check_key(key: str, what: str = "key") -> str:
    """A relative, slash-separated key that cannot leave the root it is joined to.

    Raises:
        StorageError: absolute, with a backslash, or with an empty, '.' or '..' segment.
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"{what} {key!r}: must be a relative, slash-separated name")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"{what} {key!r}: empty, '.' and '..' segments are not allowed")
    return key


def join(root: str, *keys: str) -> str:
    """`root` + '/' + each key, every key checked by `check_key` (so the result stays under root)."""
    parts = [check_key(key) for key in keys if key != ""]
    if not parts:
        return root
    return root.rstrip("/") + "/" + "/".join(parts)


def basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def parent(uri: str) -> str:
    """The directory (prefix) holding `uri`, spelled like it; a relative local path is made absolute."""
    location = parse(uri)
    if location.remote:
        return uri.rstrip("/").rsplit("/", 1)[0]
    scheme = uri[: len(uri) - len(location.path)]
    return scheme + os.path.dirname(os.path.abspath(location.path))


def relative(uri: str, root: str) -> str:
    """The key of `uri` below `root` (both as returned by `listdir`)."""
    return uri[len(root.rstrip("/")) + 1 :]
