"""Where shards come from: local files, directories, globs and s3://bucket/prefix.

S3 goes through the MinIO client: it speaks to any S3 API (MinIO in clusters, SeaweedFS locally,
AWS itself), streams object bodies without buffering whole shards, and is one small pure-Python
dependency, where fsspec's s3fs drags in aiobotocore and an async event loop we do not need.
Connection settings come from the variables KServe's storage initializer also reads:

    AWS_ENDPOINT_URL       e.g. http://minio.kubeflow:9000 (scheme decides TLS unless S3_USE_HTTPS is set)
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    AWS_DEFAULT_REGION     optional
    S3_USE_HTTPS           "0"/"1", optional
    S3_VERIFY_SSL          "0"/"1", optional
"""

import contextlib
import glob
import hashlib
import os
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ytlabel.errors import ConfigError, DataError

SHARD_SUFFIX = ".tfrecord"
_GLOB_CHARS = "*?["


def resolve_shards(sources: str | Sequence[str]) -> list[str]:
    """Expands files, directories, globs and s3:// prefixes into a sorted list of shard URIs.

    Directories and prefixes contribute their `*.tfrecord` files (directories recursively);
    explicitly named files are taken whatever their suffix. A string may list several sources
    separated by commas (how a training job's `--data` names an exact set of shards).

    Raises:
        DataError: a source that does not exist or holds no shards.
    """
    if isinstance(sources, str):
        sources = [source for source in sources.split(",") if source]
    shards: list[str] = []
    for source in sources:
        found = _s3_list(source) if source.startswith("s3://") else _local_list(source)
        if not found:
            raise DataError(f"no {SHARD_SUFFIX} shards found", source=source)
        shards.extend(found)
    return sorted(dict.fromkeys(shards))


def _local_list(source: str) -> list[str]:
    if any(char in source for char in _GLOB_CHARS):
        return sorted(path for path in glob.glob(source, recursive=True) if os.path.isfile(path))
    if os.path.isdir(source):
        pattern = os.path.join(source, "**", "*" + SHARD_SUFFIX)
        return sorted(glob.glob(pattern, recursive=True))
    if os.path.isfile(source):
        return [source]
    raise DataError("no such file or directory", source=source)


def every_nth(shards: Sequence[str], n: int, offset: int = 0) -> list[str]:
    """Keeps 1/n of the shards (those at positions offset, offset+n, ...), as the official downloader.

    Raises:
        ValueError: n < 1 or offset outside [0, n).
    """
    if n < 1:
        raise ConfigError(f"shard fraction denominator must be >= 1, got {n}")
    if not 0 <= offset < n:
        raise ConfigError(f"shard offset must be in [0, {n}), got {offset}")
    return list(shards[offset::n])


def split_shards(shards: Sequence[str], validation_fraction: float) -> tuple[list[str], list[str]]:
    """Splits shards into (train, validation), deterministically by shard file name.

    Shards are ranked by a hash of their base name and the first round(fraction * n) go to
    validation (at least one when the fraction is positive and there are two or more shards).
    Ranking instead of thresholding each hash gives exact sizes, and never an empty validation
    set from four shards; the result depends only on the names, so every worker and machine
    agrees. Both lists keep the input order.

    Raises:
        ValueError: validation_fraction outside [0, 1).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    count = round(validation_fraction * len(shards))
    if validation_fraction > 0 and len(shards) >= 2:
        count = max(count, 1)
    ranked = sorted(shards, key=lambda shard: (hashlib.sha256(os.path.basename(shard).encode()).digest(), shard))
    chosen = set(ranked[:count])
    return [s for s in shards if s not in chosen], [s for s in shards if s in chosen]


@contextlib.contextmanager
def open_shard(uri: str) -> Iterator[BinaryIO]:
    """Opens a shard for sequential binary reading, locally or streamed from S3."""
    if not uri.startswith("s3://"):
        try:
            stream = open(uri, "rb", buffering=1 << 20)
        except OSError as error:
            raise DataError(f"cannot open shard ({error.strerror})", source=uri) from error
        with stream:
            yield stream
        return
    bucket, key = _split_s3(uri)
    client = s3_client()
    try:
        response = client.get_object(bucket, key)
    except Exception as error:
        raise DataError(f"cannot read from S3 ({s3_reason(error)})", source=uri) from error
    try:
        yield response
    finally:
        response.close()
        response.release_conn()


def s3_client():
    """A MinIO client configured from the AWS_* / S3_* environment (see the module docstring)."""
    from minio import Minio  # only S3 users need the client

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "https://s3.amazonaws.com")
    parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    secure = parsed.scheme == "https"
    if "S3_USE_HTTPS" in os.environ:
        secure = os.environ["S3_USE_HTTPS"] not in ("0", "false", "False")
    http_client = None
    if os.environ.get("S3_VERIFY_SSL") in ("0", "false", "False"):
        import urllib3

        http_client = urllib3.PoolManager(cert_reqs="CERT_NONE")
    return Minio(
        parsed.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_DEFAULT_REGION") or None,
        secure=secure,
        http_client=http_client,
    )


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise DataError("S3 URI needs a bucket: s3://bucket/prefix", source=uri)
    return bucket, key


def _s3_list(uri: str) -> list[str]:
    bucket, prefix = _split_s3(uri)
    client = s3_client()
    try:
        objects = list(client.list_objects(bucket, prefix=prefix, recursive=True))
    except Exception as error:
        raise DataError(f"cannot list S3 objects ({s3_reason(error)})", source=uri) from error
    names = [obj.object_name for obj in objects]
    exact = [name for name in names if name == prefix]
    chosen = exact or [name for name in names if name.endswith(SHARD_SUFFIX)]
    return [f"s3://{bucket}/{name}" for name in sorted(chosen)]


def s3_reason(error: Exception) -> str:
    """A short cause that never includes credentials (MinIO errors carry code and message only)."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code:
        return f"{code}: {message}" if message else code
    return type(error).__name__ + (f": {error}" if str(error) else "")


def stage_local(uris: Sequence[str], cache_dir: str) -> list[str]:
    """Copies s3:// shards into `cache_dir` (local paths pass through); returns local paths.

    A shard already staged with the same size is reused. Each copy is written to a temporary name
    and renamed when complete, so an interrupted copy is never mistaken for a shard.
    """
    os.makedirs(cache_dir, exist_ok=True)
    local = []
    for uri in uris:
        if not uri.startswith("s3://"):
            local.append(uri)
            continue
        bucket, key = _split_s3(uri)
        target = os.path.join(cache_dir, bucket, key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        client = s3_client()
        try:
            size = client.stat_object(bucket, key).size
            if not (os.path.exists(target) and os.path.getsize(target) == size):
                client.fget_object(bucket, key, target)
        except Exception as error:
            raise DataError(f"cannot copy from S3 ({s3_reason(error)})", source=uri) from error
        local.append(target)
    return local
