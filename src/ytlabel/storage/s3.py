"""The S3 side of the storage layer: one client factory with an explicit retry budget, causes without
credentials, and an object body that resumes at the byte it reached when the connection breaks."""

import contextlib
import io
import os
import urllib.parse
from typing import BinaryIO

from ytlabel.storage.local import AtomicTarget
from ytlabel.storage.paths import Location, NotFound, StorageError

READ_RETRIES = 3  # reopen attempts of a broken S3 stream, each resuming at the byte reached
S3_RETRIES_ENV = "YTLABEL_S3_RETRIES"
DEFAULT_S3_RETRIES = 8


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
        timeout=urllib3.Timeout(connect=10, read=120),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=budget,
            connect=budget,
            read=budget,
            status=budget,
            backoff_factor=0.5,
            backoff_max=8,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


def s3_reason(error: Exception) -> str:
    """A short cause that never includes credentials (MinIO errors carry code and message only)."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code:
        return f"{code}: {message}" if message else code
    return type(error).__name__ + (f": {error}" if str(error) else "")


def _missing(error: Exception) -> bool:
    return getattr(error, "code", None) in ("NoSuchKey", "NoSuchBucket", "NoSuchObject")


def s3_call(verb: str, uri: str, operation):
    try:
        return operation()
    except StorageError:
        raise
    except Exception as error:
        kind = NotFound if _missing(error) else StorageError
        raise kind(f"cannot {verb} {uri}: {s3_reason(error)}", s3_reason(error)) from error


class ResumingReader(io.RawIOBase):
    """An S3 object body that, when the connection breaks, reopens at the byte it reached (a ranged GET)."""

    def __init__(self, client, location: Location):
        self._client, self._location = client, location
        self._position = 0
        self._response = self._open()

    def _open(self):
        return s3_call(
            "read",
            self._location.uri,
            lambda: self._client.get_object(self._location.bucket, self._location.key, offset=self._position),
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        for attempt in range(READ_RETRIES + 1):
            try:
                data = self._response.read(len(buffer))
                break
            except Exception as error:  # urllib3 protocol / timeout errors: resume where we were
                if attempt == READ_RETRIES:
                    raise StorageError(
                        f"cannot read {self._location.uri} at byte {self._position}: {s3_reason(error)}"
                    ) from error
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


# --- the backend: the operations storage/__init__.py dispatches for s3:// locations ------------------------
# S3 never shows a half-written object: an object appears when its upload completes, so writes need no
# temporary name here; a download is written locally through an AtomicTarget.


def open_read(location: Location, buffering: int) -> BinaryIO:
    return io.BufferedReader(ResumingReader(s3_client(), location), buffer_size=buffering)


def exists(location: Location) -> bool:
    try:
        _stat(location)
        return True
    except NotFound:
        return False


def is_file(location: Location) -> bool:
    """An object by this exact key (a prefix holding objects is not one)."""
    return bool(location.key) and not location.key.endswith("/") and exists(location)


def size(location: Location) -> int:
    return _stat(location).size


def _stat(location: Location):
    client = s3_client()
    return s3_call("stat", location.uri, lambda: client.stat_object(location.bucket, location.key))


def listdir(location: Location, suffix: str) -> list[str]:
    """Every object under the prefix, as s3:// URIs."""
    prefix = location.key.rstrip("/") + "/" if location.key else ""
    client = s3_client()
    names = s3_call(
        "list",
        location.uri,
        lambda: [obj.object_name for obj in client.list_objects(location.bucket, prefix=prefix, recursive=True)],
    )
    return sorted(f"s3://{location.bucket}/{name}" for name in names if name.endswith(suffix))


def write_bytes(location: Location, data: bytes) -> None:
    client = s3_client()
    s3_call(
        "write", location.uri, lambda: client.put_object(location.bucket, location.key, io.BytesIO(data), len(data))
    )


def put_file(path: str, location: Location) -> None:
    client = s3_client()
    s3_call("write", location.uri, lambda: client.fput_object(location.bucket, location.key, path))


def get_file(location: Location, path: str) -> None:
    client = s3_client()
    with AtomicTarget(path) as partial:
        s3_call("read", location.uri, lambda: client.fget_object(location.bucket, location.key, partial))


def delete(location: Location) -> None:
    client = s3_client()
    s3_call("delete", location.uri, lambda: client.remove_object(location.bucket, location.key))
