"""Where bytes live: a local path, `file://PATH` or `s3://bucket/key`, behind one small interface.

Every other layer (shards, run directories, the encoder, the registry) reads and writes through these
functions, so a run behaves the same on a laptop and on a cluster where everything lies on S3.

S3 goes through the MinIO client: it speaks to any S3 API (MinIO in clusters, SeaweedFS locally, AWS
itself), streams object bodies, supports ranged reads, and is one small pure-Python dependency, where
fsspec's s3fs drags in aiobotocore and an async event loop we do not need. Connection settings come
from the variables KServe's storage initializer also reads:

    AWS_ENDPOINT_URL       e.g. http://minio.kubeflow:9000 (the scheme decides TLS unless S3_USE_HTTPS is set)
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    AWS_DEFAULT_REGION     optional
    S3_USE_HTTPS           "0"/"1", optional
    S3_VERIFY_SSL          "0"/"1", optional

Guarantees:
- Writes are atomic: a local file is written under a temporary name and renamed; an S3 object appears
  only when its upload completes (S3 never shows a half-written object).
- Keys joined onto a root stay inside it: `join` refuses `..`, absolute parts, backslashes and empty
  segments, so a key read from data (a manifest, a listing) cannot name a place outside its root.
- Errors name the URI and the cause, never a credential.
- Transient S3 failures (connection refused or reset, 5xx) are retried with backoff up to a budget
  (`YTLABEL_S3_RETRIES`, about 40 s by default), so a restarted S3 server is waited for, not fatal.
"""

import contextlib
import dataclasses
import io
import json
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from ytlabel.errors import YtlabelError

S3 = "s3://"
FILE = "file://"
PARTIAL_PREFIX = ".partial-"  # local temporary names; listings never return them
READ_RETRIES = 3  # reopen attempts of a broken S3 stream, each resuming at the byte reached
S3_RETRIES_ENV = "YTLABEL_S3_RETRIES"
DEFAULT_S3_RETRIES = 8


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
        bucket, _, key = uri[len(S3):].partition("/")
        if not bucket:
            raise StorageError(f"{uri}: an S3 URI needs a bucket, e.g. s3://bucket/prefix")
        return Location(uri=uri, bucket=bucket, key=key)
    if uri.startswith(FILE):
        return Location(uri=uri, path=uri[len(FILE):])
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


# --- S3 client -------------------------------------------------------------------------------------------


def s3_client():
    """A MinIO client configured from the AWS_* / S3_* environment (see the module docstring)."""
    from minio import Minio  # only S3 users need the client

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "https://s3.amazonaws.com")
    parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    secure = parsed.scheme == "https"
    if "S3_USE_HTTPS" in os.environ:
        secure = os.environ["S3_USE_HTTPS"] not in ("0", "false", "False")
    return Minio(
        parsed.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_DEFAULT_REGION") or None,
        secure=secure,
        http_client=_http_client(verify=os.environ.get("S3_VERIFY_SSL") not in ("0", "false", "False")),
    )


def _http_client(verify: bool):
    """Connections with an explicit retry budget: a restarted or briefly unreachable S3 endpoint is waited
    for with backoff (1, 2, 4, 8, 8, ... s), up to YTLABEL_S3_RETRIES attempts (default 8, about 40 s);
    past that the operation fails with one line naming the URI."""
    import certifi
    import urllib3

    retries = os.environ.get(S3_RETRIES_ENV, str(DEFAULT_S3_RETRIES))
    if not retries.isdigit():
        raise StorageError(f"{S3_RETRIES_ENV}={retries!r}: must be a whole number of attempts")
    budget = int(retries)
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=120), maxsize=10,
        cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=budget, connect=budget, read=budget, status=budget, backoff_factor=0.5,
                              backoff_max=8, status_forcelist=[500, 502, 503, 504]))


def s3_reason(error: Exception) -> str:
    """A short cause that never includes credentials (MinIO errors carry code and message only)."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code:
        return f"{code}: {message}" if message else code
    return type(error).__name__ + (f": {error}" if str(error) else "")


def _missing(error: Exception) -> bool:
    return getattr(error, "code", None) in ("NoSuchKey", "NoSuchBucket", "NoSuchObject")


def _s3_call(verb: str, uri: str, operation):
    try:
        return operation()
    except StorageError:
        raise
    except Exception as error:
        kind = NotFound if _missing(error) else StorageError
        raise kind(f"cannot {verb} {uri}: {s3_reason(error)}", s3_reason(error)) from error


# --- reading ---------------------------------------------------------------------------------------------


class _ResumingReader(io.RawIOBase):
    """An S3 object body that, when the connection breaks, reopens at the byte it reached (a ranged GET)."""

    def __init__(self, client, location: Location):
        self._client, self._location = client, location
        self._position = 0
        self._response = self._open()

    def _open(self):
        return _s3_call("read", self._location.uri, lambda: self._client.get_object(
            self._location.bucket, self._location.key, offset=self._position))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        for attempt in range(READ_RETRIES + 1):
            try:
                data = self._response.read(len(buffer))
                break
            except Exception as error:  # urllib3 protocol / timeout errors: resume where we were
                if attempt == READ_RETRIES:
                    raise StorageError(f"cannot read {self._location.uri} at byte {self._position}: "
                                       f"{s3_reason(error)}") from error
                self._release()
                self._response = self._open()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
            self._response.release_conn()

    def close(self) -> None:
        if not self.closed:
            self._release()
        super().close()


@contextlib.contextmanager
def open_read(uri: str, buffering: int = 1 << 20) -> Iterator[BinaryIO]:
    """A binary stream over a file or an S3 object (streamed, resumed by byte range if the connection drops).

    Raises:
        NotFound: no such file or object.
        StorageError: anything else that stops the open.
    """
    location = parse(uri)
    if location.remote:
        stream = io.BufferedReader(_ResumingReader(s3_client(), location), buffer_size=buffering)
    else:
        try:
            stream = open(location.path, "rb", buffering=buffering)
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
        _s3_call("stat", uri, lambda: s3_client().stat_object(location.bucket, location.key))
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
    return _s3_call("stat", uri, lambda: s3_client().stat_object(location.bucket, location.key)).size


def listdir(uri: str, suffix: str = "") -> list[str]:
    """Every file (object) under the directory (prefix) `uri`, recursively, as sorted URIs.

    Local listings do not follow symbolic links to directories and skip partial writes.
    """
    location = parse(uri)
    if location.remote:
        prefix = location.key.rstrip("/") + "/" if location.key else ""
        client = s3_client()
        names = _s3_call("list", uri, lambda: [obj.object_name for obj in client.list_objects(
            location.bucket, prefix=prefix, recursive=True)])
        base = f"{S3}{location.bucket}/"
        return sorted(base + name for name in names if name.endswith(suffix))
    found = []
    for folder, _, names in os.walk(location.path):
        for name in names:
            if not name.startswith(PARTIAL_PREFIX) and name.endswith(suffix):
                found.append(os.path.join(folder, name))
    root = uri.rstrip("/")
    return sorted(root + "/" + os.path.relpath(path, location.path).replace(os.sep, "/") for path in found)


def relative(uri: str, root: str) -> str:
    """The key of `uri` below `root` (both as returned by `listdir`)."""
    return uri[len(root.rstrip("/")) + 1:]


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
    _s3_call("write", uri, lambda: client.put_object(location.bucket, location.key, io.BytesIO(data), len(data)))


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
    _s3_call("write", uri, lambda: client.fput_object(location.bucket, location.key, path))


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
        _s3_call("read", uri, lambda: client.fget_object(location.bucket, location.key, partial))
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
    _s3_call("delete", uri, lambda: client.remove_object(location.bucket, location.key))


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
