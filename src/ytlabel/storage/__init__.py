"""Where bytes live: a local path, `file://PATH` or `s3://bucket/key`, behind one small interface.

Every other layer (shards, run directories, the encoder, the registry) reads and writes through these
functions, so a run behaves the same on a laptop and on a cluster where everything lies on S3.
`paths.py` parses locations and keeps keys inside their root; `local.py` and `s3.py` are the two
backends, with the same functions over a parsed Location; this module chooses one per location and builds
the composite operations (copy, sync, mirror) from them. S3 goes through the MinIO client: it speaks to any S3 API, streams bodies, reads byte
ranges, and is one small pure-Python dependency (fsspec's s3fs brings aiobotocore and an event loop).
Connection settings are the variables KServe's storage initializer reads: AWS_ENDPOINT_URL (its scheme
decides TLS unless S3_USE_HTTPS is set), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
S3_USE_HTTPS and S3_VERIFY_SSL ("0"/"1").

Guarantees:
- Writes are atomic: a local file is written under a temporary name beside it and renamed (`AtomicTarget`,
  which every local writer in the tree uses; listings skip those names); an S3 object appears only when
  its upload completes (S3 never shows a half-written object).
- Keys joined onto a root stay inside it: `join` refuses `..`, absolute parts, backslashes and empty
  segments, so a key read from data (a manifest, a listing) cannot name a place outside its root.
- Errors name the URI and the cause, never a credential.
- Transient S3 failures (connection refused or reset, 5xx) are retried with backoff up to a budget
  (`YTLABEL_S3_RETRIES`, about 40 s by default), and an interrupted read resumes at the byte it reached.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import BinaryIO

from ytlabel.storage import local, s3
from ytlabel.storage.local import PARTIAL_PREFIX, AtomicTarget, atomic_write, is_partial
from ytlabel.storage.paths import (
    FILE,
    S3,
    Location,
    NotFound,
    StorageError,
    basename,
    check_key,
    is_remote,
    join,
    parent,
    parse,
    relative,
)
from ytlabel.storage.s3 import DEFAULT_S3_RETRIES, S3_RETRIES_ENV, ResumingReader, s3_call, s3_client, s3_reason

__all__ = [
    "DEFAULT_S3_RETRIES",
    "FILE",
    "PARTIAL_PREFIX",
    "S3",
    "S3_RETRIES_ENV",
    "AtomicTarget",
    "Location",
    "NotFound",
    "ResumingReader",
    "StorageError",
    "atomic_write",
    "basename",
    "check_key",
    "copy",
    "delete",
    "download",
    "exists",
    "is_file",
    "is_partial",
    "is_remote",
    "join",
    "listdir",
    "local_copy",
    "local_mirror",
    "open_read",
    "parent",
    "parse",
    "read_bytes",
    "read_json",
    "relative",
    "s3_call",
    "s3_client",
    "s3_reason",
    "size",
    "sync_down",
    "sync_up",
    "upload",
    "write_bytes",
    "write_json",
]


def _backend(location: Location) -> ModuleType:
    """The module whose functions handle this location: storage.s3 or storage.local."""
    return s3 if location.remote else local


# --- reading ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_read(uri: str, buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """A binary stream over a file or an S3 object (streamed, resumed by byte range if the connection drops).

    Raises:
        NotFound: no such file or object.
        StorageError: anything else that stops the open (a directory, a refusal).
    """
    location = parse(uri)
    with _backend(location).open_read(location, buffering) as stream:
        yield stream


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as stream:
        return stream.read()


def read_json(uri: str):
    """Parses the JSON at `uri`; a file that is not JSON is a StorageError naming it."""
    data = read_bytes(uri)
    try:
        return json.loads(data)
    except ValueError as error:
        raise StorageError(f"{uri}: not valid JSON ({error})") from error


def exists(uri: str) -> bool:
    location = parse(uri)
    return _backend(location).exists(location)


def is_file(uri: str) -> bool:
    """A file, or an object by this exact key (not a directory, not a prefix)."""
    location = parse(uri)
    return _backend(location).is_file(location)


def size(uri: str) -> int:
    location = parse(uri)
    return _backend(location).size(location)


def listdir(uri: str, suffix: str = "") -> list[str]:
    """Every file (object) under the directory (prefix) `uri`, recursively, as sorted URIs spelled like `uri`
    (a plain path, file:// or s3://). Local listings do not follow symbolic links to directories; partial
    writes are never listed."""
    location = parse(uri)
    return _backend(location).listdir(location, suffix)


# --- writing ---------------------------------------------------------------------------------------------


def write_bytes(uri: str, data: bytes | str) -> None:
    """Writes `data` to a file or object, atomically."""
    location = parse(uri)
    _backend(location).write_bytes(location, data.encode() if isinstance(data, str) else data)


def write_json(uri: str, value) -> None:
    """Strict JSON (NaN and infinity refused), indented and key-sorted so diffs stay readable."""
    try:
        text = json.dumps(value, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as error:
        raise StorageError(f"refusing to write {uri}: {error} (a non-finite number)") from error
    write_bytes(uri, text)


def upload(path: str, uri: str) -> None:
    """Copies a local file to `uri` (a file or an object), atomically."""
    location = parse(uri)
    _backend(location).put_file(path, location)


def download(uri: str, path: str) -> None:
    """Copies `uri` to a local file, written under a temporary name and renamed when complete."""
    location = parse(uri)
    _backend(location).get_file(location, path)


def copy(source: str, target: str) -> None:
    """Copies one file or object to another place, any combination of local and S3."""
    if not is_remote(source):
        return upload(parse(source).path, target)
    if not is_remote(target):
        return download(source, parse(target).path)
    with tempfile.TemporaryDirectory(prefix="ytlabel-copy-") as staging:
        staged = os.path.join(staging, "object")
        download(source, staged)
        upload(staged, target)


def delete(uri: str) -> None:
    """Removes a file or object; one that is already gone is not an error."""
    location = parse(uri)
    _backend(location).delete(location)


# --- directories -----------------------------------------------------------------------------------------


def sync_up(folder: str, uri: str, skip: Callable[[str], bool] = lambda key: False) -> list[str]:
    """Uploads every regular file under local `folder` to the same keys under `uri`; returns the keys.

    Symbolic links are not followed (a link inside the folder is not published); partial writes are skipped.
    """
    keys = []
    for current, directories, names in os.walk(folder):
        directories[:] = [d for d in directories if not os.path.islink(os.path.join(current, d))]
        for name in sorted(names):
            path = os.path.join(current, name)
            key = os.path.relpath(path, folder).replace(os.sep, "/")
            if is_partial(name) or os.path.islink(path) or skip(key):
                continue
            upload(path, join(uri, key))
            keys.append(key)
    return keys


def sync_down(uri: str, folder: str, keep: Callable[[str], bool] = lambda key: True) -> list[str]:
    """Downloads every object under `uri` (whose key `keep` accepts) into local `folder` at the same relative
    keys; returns the keys.

    Keys are checked before anything is written, so a listing cannot place a file outside `folder`.
    """
    root = uri.rstrip("/")
    keys = [check_key(relative(found, root), f"object under {uri}") for found in listdir(root)]
    keys = [key for key in keys if keep(key)]
    for key in keys:
        download(join(root, key), os.path.join(folder, *key.split("/")))
    return keys


@contextlib.contextmanager
def local_copy(uri: str, keep: Callable[[str], bool] = lambda key: True) -> Iterator[str]:
    """A local directory holding what `uri` holds (the keys `keep` accepts), for the duration of the block:
    the directory itself when local, else a fresh download into a temporary directory that is removed
    after the block (never stale, never shared with another reader).

    Raises:
        NotFound: nothing (kept) under the prefix.
    """
    location = parse(uri)
    if not location.remote:
        yield location.path
        return
    folder = tempfile.mkdtemp(prefix="ytlabel-mirror-")
    try:
        if not sync_down(uri, folder, keep):
            raise NotFound(f"{uri}: nothing stored under this prefix")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def local_mirror(uri: str, into: str, keep: Callable[[str], bool] = lambda key: True) -> str:
    """Like `local_copy`, for a caller whose copy must outlive one block (a served model): the path itself
    when local, else a download into `into` (created), a directory the caller owns and removes.

    Raises:
        NotFound: nothing (kept) under the prefix.
    """
    location = parse(uri)
    if not location.remote:
        return location.path
    os.makedirs(into, exist_ok=True)
    if not sync_down(uri, into, keep):
        raise NotFound(f"{uri}: nothing stored under this prefix")
    return into
