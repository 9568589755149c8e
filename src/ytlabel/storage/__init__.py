"""Where bytes live: a local path, `file://PATH` or `s3://bucket/key`, behind one small interface.

Every other layer (shards, run directories, the encoder, the registry) reads and writes through these
functions, so a run behaves the same on a laptop and on a cluster where everything lies on S3.
`paths.py` parses locations and keeps keys inside their root; `s3.py` holds the S3 client; this module
the operations. S3 goes through the MinIO client: it speaks to any S3 API, streams bodies, reads byte
ranges, and is one small pure-Python dependency (fsspec's s3fs brings aiobotocore and an event loop).
Connection settings are the variables KServe's storage initializer reads: AWS_ENDPOINT_URL (its scheme
decides TLS unless S3_USE_HTTPS is set), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
S3_USE_HTTPS and S3_VERIFY_SSL ("0"/"1").

Guarantees:
- Writes are atomic: a local file is written under a temporary name and renamed; an S3 object appears
  only when its upload completes (S3 never shows a half-written object).
- Keys joined onto a root stay inside it: `join` refuses `..`, absolute parts, backslashes and empty
  segments, so a key read from data (a manifest, a listing) cannot name a place outside its root.
- Errors name the URI and the cause, never a credential.
- Transient S3 failures (connection refused or reset, 5xx) are retried with backoff up to a budget
  (`YTLABEL_S3_RETRIES`, about 40 s by default), and an interrupted read resumes at the byte it reached.
"""

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from ytlabel.storage.paths import (  # noqa: F401  the storage layer's public names, re-exported
    FILE,
    PARTIAL_PREFIX,
    S3,
    Location,
    NotFound,
    StorageError,
    basename,
    check_key,
    is_remote,
    join,
    parse,
    relative,
)
from ytlabel.storage.s3 import (  # noqa: F401
    DEFAULT_S3_RETRIES,
    S3_RETRIES_ENV,
    ResumingReader,
    s3_call,
    s3_client,
    s3_reason,
)

# --- reading ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_read(uri: str, buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """A binary stream over a file or an S3 object (streamed, resumed by byte range if the connection drops).

    Raises:
        NotFound: no such file or object.
        StorageError: anything else that stops the open.
    """
    location = parse(uri)
    stream: BinaryIO
    if location.remote:
        stream = io.BufferedReader(ResumingReader(s3_client(), location), buffer_size=buffering)
    else:
        try:
            stream = open(location.path, "rb", buffering=buffering)  # noqa: SIM115 - the handle outlives this statement; closed by its owner
        except FileNotFoundError as error:
            raise NotFound(f"{uri}: no such file", error.strerror) from error
        except OSError as error:
            raise StorageError(f"cannot open {uri} ({error.strerror})", error.strerror) from error
    with stream:
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
    if not location.remote:
        return os.path.exists(location.path)
    try:
        s3_call("stat", uri, lambda: s3_client().stat_object(location.bucket, location.key))
        return True
    except NotFound:
        return False


def size(uri: str) -> int:
    location = parse(uri)
    if not location.remote:
        try:
            return os.path.getsize(location.path)
        except OSError as error:
            raise NotFound(f"{uri}: no such file") from error
    return s3_call("stat", uri, lambda: s3_client().stat_object(location.bucket, location.key)).size


def listdir(uri: str, suffix: str = "") -> list[str]:
    """Every file (object) under the directory (prefix) `uri`, recursively, as sorted URIs.

    Local listings do not follow symbolic links to directories and skip partial writes.
    """
    location = parse(uri)
    if location.remote:
        prefix = location.key.rstrip("/") + "/" if location.key else ""
        client = s3_client()
        names = s3_call(
            "list",
            uri,
            lambda: [obj.object_name for obj in client.list_objects(location.bucket, prefix=prefix, recursive=True)],
        )
        base = f"{S3}{location.bucket}/"
        return sorted(base + name for name in names if name.endswith(suffix))
    found = []
    for folder, _, names in os.walk(location.path):
        for name in names:
            if not name.startswith(PARTIAL_PREFIX) and name.endswith(suffix):
                found.append(os.path.join(folder, name))
    root = uri.rstrip("/")
    return sorted(root + "/" + os.path.relpath(path, location.path).replace(os.sep, "/") for path in found)


# --- writing ---------------------------------------------------------------------------------------------


def atomic_write(path: str, data: bytes | str) -> None:
    """Writes a local file under a temporary name in the same directory, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=folder, prefix=PARTIAL_PREFIX)
    except OSError as error:
        raise StorageError(f"cannot write {path} ({error.strerror})") from error
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def write_bytes(uri: str, data: bytes | str) -> None:
    """Writes `data` to a file or object, atomically."""
    location = parse(uri)
    data = data.encode() if isinstance(data, str) else data
    if not location.remote:
        return atomic_write(location.path, data)
    client = s3_client()
    s3_call("write", uri, lambda: client.put_object(location.bucket, location.key, io.BytesIO(data), len(data)))


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
    if not location.remote:
        return copy_local(path, location.path)
    client = s3_client()
    s3_call("write", uri, lambda: client.fput_object(location.bucket, location.key, path))


def download(uri: str, path: str) -> None:
    """Copies `uri` to a local file, written under a temporary name and renamed when complete."""
    location = parse(uri)
    if not location.remote:
        return copy_local(location.path, path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=PARTIAL_PREFIX)
    os.close(handle)
    try:
        client = s3_client()
        s3_call("read", uri, lambda: client.fget_object(location.bucket, location.key, partial))
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def copy_local(source: str, target: str) -> None:
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=folder, prefix=PARTIAL_PREFIX)
        os.close(handle)
    except OSError as error:
        raise StorageError(f"cannot write {target} ({error.strerror})") from error
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except FileNotFoundError as error:
        os.remove(partial)
        raise NotFound(f"{source}: no such file") from error
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def copy(source: str, target: str) -> None:
    """Copies one file or object to another place, any combination of local and S3."""
    if not is_remote(source):
        return upload(parse(source).path, target)
    if not is_remote(target):
        return download(source, parse(target).path)
    with tempfile.TemporaryDirectory(prefix="ytlabel-copy-") as staging:
        local = os.path.join(staging, "object")
        download(source, local)
        upload(local, target)


def delete(uri: str) -> None:
    """Removes a file or object; one that is already gone is not an error."""
    location = parse(uri)
    if not location.remote:
        with contextlib.suppress(FileNotFoundError):
            os.remove(location.path)
        return
    client = s3_client()
    s3_call("delete", uri, lambda: client.remove_object(location.bucket, location.key))


def sync_up(folder: str, uri: str, skip=lambda relative: False) -> list[str]:
    """Uploads every regular file under local `folder` to the same keys under `uri`; returns the keys.

    Symbolic links are not followed: a link inside the folder is not published.
    """
    keys = []
    for current, directories, names in os.walk(folder):
        directories[:] = [d for d in directories if not os.path.islink(os.path.join(current, d))]
        for name in sorted(names):
            path = os.path.join(current, name)
            key = os.path.relpath(path, folder).replace(os.sep, "/")
            if name.startswith(PARTIAL_PREFIX) or os.path.islink(path) or skip(key):
                continue
            upload(path, join(uri, key))
            keys.append(key)
    return keys


def sync_down(uri: str, folder: str) -> list[str]:
    """Downloads every object under `uri` into local `folder` at the same relative keys; returns the keys.

    Keys are checked before anything is written, so a listing cannot place a file outside `folder`.
    """
    keys = [check_key(relative(found, uri), f"object under {uri}") for found in listdir(uri)]
    for key in keys:
        download(join(uri, key), os.path.join(folder, *key.split("/")))
    return keys


def local_mirror(uri: str, keep=lambda key: True, into: str | None = None) -> str:
    """A local directory holding what `uri` holds (the keys `keep` accepts): the path itself when local,
    else `into` (created) or a new temporary directory, with a fresh copy of the prefix (never stale,
    never shared with another reader).

    Raises:
        NotFound: nothing (kept) under the prefix.
    """
    location = parse(uri)
    if not location.remote:
        return location.path
    root = uri.rstrip("/")
    keys = [check_key(relative(found, root), f"object under {uri}") for found in listdir(root)]
    keys = [key for key in keys if keep(key)]
    if not keys:
        raise NotFound(f"{uri}: nothing stored under this prefix")
    folder = into or tempfile.mkdtemp(prefix="ytlabel-mirror-")
    os.makedirs(folder, exist_ok=True)
    for key in keys:
        download(join(root, key), os.path.join(folder, *key.split("/")))
    return folder
