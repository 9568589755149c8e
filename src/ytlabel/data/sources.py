"""Where shards come from: local files, directories, globs and s3://bucket/prefix.

Reading and listing go through `ytlabel.storage` (one S3 client, errors that name the URI); this module
adds what is particular to shards: which files count as shards, subsampling and the train/validation split.
"""

import contextlib
import glob
import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ytlabel import storage
from ytlabel.errors import ConfigError, DataError

SHARD_SUFFIX = ".tfrecord"
SYNTH_TRUTH = "synth.json"  # marks the root `ytlabel data synth` writes (data/synth.py's TRUTH)
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
        found = _list(source)
        if not found:
            raise DataError(f"no {SHARD_SUFFIX} shards found", source=source)
        shards.extend(found)
    return sorted(dict.fromkeys(shards))


def _list(source: str) -> list[str]:
    """The file or object `source` names, else every shard under it as a directory or prefix, listed through
    storage (a plain path, file:// or s3://; directories recursively, symbolic links to directories not
    followed). A local source with glob characters is a pattern."""
    location = storage.parse(source)
    if not location.remote and any(char in location.path for char in _GLOB_CHARS):
        scheme = source[: len(source) - len(location.path)]  # "" or "file://": results are spelled like the source
        return sorted(scheme + path for path in glob.glob(location.path, recursive=True) if os.path.isfile(path))
    try:
        if storage.is_file(source):
            return [source]
        if storage.exists(storage.join(source, SYNTH_TRUTH)):
            raise DataError(
                f"this is the root of `ytlabel data synth` output; pass {storage.join(source, 'video')} "
                f"(video-level models) or {storage.join(source, 'frame')} (frame-level models)",
                source=source,
            )
        found = storage.listdir(source, suffix=SHARD_SUFFIX)
    except storage.StorageError as error:
        what = "S3 objects" if location.remote else "files"
        raise DataError(f"cannot list {what} ({error.reason})", source=source) from error
    if not found and not location.remote and not os.path.isdir(location.path):
        raise DataError("no such file or directory", source=source)
    return found


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
    """Opens a shard for sequential binary reading, locally or streamed from S3 (resumed if the link drops)."""
    location = storage.parse(uri)
    if not location.remote and os.path.exists(location.path) and not os.path.isfile(location.path):
        raise DataError("not a regular file", source=uri)
    try:
        with storage.open_read(uri) as stream:
            yield stream
    except storage.StorageError as error:
        raise DataError(f"cannot open shard ({error.reason})", source=uri) from error
