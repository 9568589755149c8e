"""TFRecord framing: read and write records with masked CRC32C checks, no TensorFlow.

A TFRecord file is a sequence of frames:

    uint64 length | uint32 masked_crc32c(length) | bytes data[length] | uint32 masked_crc32c(data)

all little-endian. The mask rotates the CRC and adds a constant so that CRCs of data that itself
contains CRCs stay well distributed.
"""

import dataclasses
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, Self

import google_crc32c

from ytlabel import storage
from ytlabel.errors import ConfigError, DataError

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
_MASK_DELTA = 0xA282EAD8
# A YT8M record is at most ~0.4 MB (300 frames of 1152 bytes); a length above this ceiling is hostile or
# corrupt, and must not become an allocation. YTLABEL_MAX_RECORD_BYTES raises it for other data.
MAX_RECORD_ENV = "YTLABEL_MAX_RECORD_BYTES"
DEFAULT_MAX_RECORD_BYTES = 64 << 20


def max_record_bytes() -> int:
    value = os.environ.get(MAX_RECORD_ENV, "")
    if not value:
        return DEFAULT_MAX_RECORD_BYTES
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{MAX_RECORD_ENV}={value!r}: must be a positive number of bytes")
    return int(value)


def _check_length(length: int, ceiling: int) -> None:
    if length > ceiling:
        raise DataError(
            f"record length {length} bytes exceeds the {ceiling}-byte ceiling ({MAX_RECORD_ENV}); "
            f"the rest of the file cannot be framed"
        )


def masked_crc32c(data: bytes) -> int:
    """CRC32C of `data`, masked as the TFRecord format requires."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclasses.dataclass
class CorruptionReport:
    """What a lenient read skipped. Every skipped record is counted here, never dropped silently.

    Attributes:
        skipped: number of records (or unreadable file tails) skipped.
        problems: one "file at byte offset N: reason" line per skip.
    """

    skipped: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def add(self, error: DataError) -> None:
        self.skipped += 1
        self.problems.append(str(error))


def skip_or_raise(error: DataError, skip_corrupt: bool, report: CorruptionReport | None) -> None:
    """Counts `error` in `report` when reading leniently (--skip-corrupt); raises it otherwise."""
    if not skip_corrupt:
        raise error from None
    if report is not None:
        report.add(error)


class _RecoverableError(DataError):
    """A bad record whose framing is intact, so reading can continue after it."""


def read_records(
    stream: BinaryIO,
    *,
    source: str,
    skip_corrupt: bool = False,
    report: CorruptionReport | None = None,
    keep: tuple[int, int] = (1, 0),
) -> Iterator[tuple[int, bytes]]:
    """Yields (byte offset, payload) for each record of a TFRecord stream.

    Args:
        stream: a binary stream positioned at the start of the file (local file or S3 body).
        source: the file name or URI, used in error messages.
        skip_corrupt: when True, count corrupt records in `report` and carry on; when False, raise.
            A record whose length header is corrupt ends the file: nothing after it can be framed.
        report: collects what was skipped; required when `skip_corrupt` is True.
        keep: (stride, offset): only records whose index i satisfies i % stride == offset are
            checked and yielded; the others are stepped over unread. Used to share one shard
            between several loader workers without any record going to two of them.

    Raises:
        DataError: naming the source and byte offset of a truncated or corrupt record.
    """
    if skip_corrupt and report is None:
        raise ConfigError("skip_corrupt=True needs a CorruptionReport to count what is skipped")
    stride, first = keep
    ceiling = max_record_bytes()
    offset = 0
    index = 0
    while True:
        header = stream.read(_HEADER.size)
        if not header:
            return
        try:
            if len(header) < _HEADER.size:
                raise DataError(f"truncated record header ({len(header)} of {_HEADER.size} bytes)")
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[: _LENGTH.size]) != length_crc:
                raise DataError("corrupt record length (CRC mismatch); the rest of the file cannot be framed")
            _check_length(length, ceiling)
            wanted = index % stride == first
            if wanted or not _skip(stream, length + _FOOTER.size):
                # Payload and CRC in two reads: slicing one read would copy the payload again.
                payload = _read_up_to(stream, length)
                footer = stream.read(_FOOTER.size)
                if len(payload) + len(footer) < length + _FOOTER.size:
                    got = len(payload) + len(footer)
                    raise DataError(f"truncated record: expected {length} data bytes and a CRC, got {got} bytes")
                if wanted:
                    if masked_crc32c(payload) != _FOOTER.unpack(footer)[0]:
                        raise _RecoverableError(f"corrupt record data (CRC mismatch over {length} bytes)")
                    yield offset, payload
        except _RecoverableError as error:
            skip_or_raise(DataError(error.reason, source=source, offset=offset), skip_corrupt, report)
        except DataError as error:
            skip_or_raise(DataError(error.reason, source=source, offset=offset), skip_corrupt, report)
            return  # the framing is lost: nothing after this record can be read
        offset += _HEADER.size + length + _FOOTER.size
        index += 1


def _skip(stream: BinaryIO, count: int) -> bool:
    """Moves past `count` bytes without reading them where the stream allows; False otherwise."""
    if not (hasattr(stream, "seekable") and stream.seekable()):
        return False
    stream.seek(count, os.SEEK_CUR)
    return True


class TFRecordWriter:
    """Writes records to `path` atomically: readers see the file only once it is complete.

    Data goes to a temporary name beside `path` (storage.AtomicTarget) and is renamed on a clean close; on
    an exception the partial file is removed, so a failed run never leaves a half-written shard behind.

    Example:
        with TFRecordWriter("out/shard-00000.tfrecord") as writer:
            writer.write(example_bytes)
    """

    def __init__(self, path: str | os.PathLike, *, atomic: bool = True):
        """`atomic=False` writes in place and flushes each record (live logs such as event files)."""
        self.path = os.fspath(path)
        self._target = storage.AtomicTarget(self.path) if atomic else None
        self._file = open(self._target.partial if self._target else self.path, "wb")  # noqa: SIM115 - closed by close()/abort()
        self.count = 0

    def write(self, payload: bytes) -> None:
        length = _LENGTH.pack(len(payload))
        self._file.write(length)
        self._file.write(_FOOTER.pack(masked_crc32c(length)))
        self._file.write(payload)
        self._file.write(_FOOTER.pack(masked_crc32c(payload)))
        self.count += 1
        if self._target is None:
            self._file.flush()

    def close(self) -> None:
        self._file.close()
        if self._target:
            self._target.commit()

    def abort(self) -> None:
        self._file.close()
        if self._target:
            self._target.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def count_records(stream: BinaryIO, *, source: str) -> int:
    """Number of records, from the length headers alone: payloads are stepped over, not checked.

    Raises:
        DataError: a corrupt length header or a truncated file (named with the byte offset).
    """
    count = offset = 0
    ceiling = max_record_bytes()
    while True:
        header = stream.read(_HEADER.size)
        if not header:
            return count
        if len(header) < _HEADER.size:
            raise DataError("truncated record header", source=source, offset=offset)
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[: _LENGTH.size]) != length_crc:
            raise DataError("corrupt record length (CRC mismatch)", source=source, offset=offset)
        try:
            _check_length(length, ceiling)
        except DataError as error:
            raise DataError(error.reason, source=source, offset=offset) from None
        if not _skip(stream, length + _FOOTER.size):
            skipped = _discard(stream, length + _FOOTER.size)
            if skipped < length + _FOOTER.size:
                raise DataError("truncated record", source=source, offset=offset)
        count += 1
        offset += _HEADER.size + length + _FOOTER.size


def _discard(stream: BinaryIO, count: int) -> int:
    """Reads past `count` bytes of a stream that cannot seek, 1 MiB at a time; returns how many there were."""
    done = 0
    while done < count:
        block = stream.read(min(1 << 20, count - done))
        if not block:
            break
        done += len(block)
    return done


def _read_up_to(stream: BinaryIO, count: int) -> bytes:
    """`count` bytes (fewer at the end of the stream), read 1 MiB at a time above that size: a length field
    that lies about a short file then costs what the file holds, not what it claims."""
    if count <= 1 << 20:
        return stream.read(count)
    blocks, left = [], count
    while left:
        block = stream.read(min(1 << 20, left))
        if not block:
            break
        blocks.append(block)
        left -= len(block)
    return b"".join(blocks)
