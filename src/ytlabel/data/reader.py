"""Read shards into decoded records, with every error located by file and byte offset."""

from collections.abc import Callable, Iterator, Sequence

from ytlabel.data import records, sources
from ytlabel.data.records import FRAME, VIDEO, FrameRecord, VideoRecord
from ytlabel.data.tfrecord import CorruptionReport, read_records, skip_or_raise
from ytlabel.errors import ConfigError, DataError, NonFiniteError, SchemaError

_DECODERS: dict[str, Callable[[bytes], VideoRecord | FrameRecord]] = {
    VIDEO: records.decode_video,
    FRAME: records.decode_frames,
}


def read_shard(
    uri: str,
    level: str | None = None,
    *,
    skip_corrupt: bool = False,
    report: CorruptionReport | None = None,
    keep: tuple[int, int] = (1, 0),
) -> Iterator[VideoRecord | FrameRecord]:
    """Yields the decoded records of one shard.

    Args:
        uri: local path or s3:// URI of a TFRecord shard.
        level: VIDEO or FRAME; None detects it from the first record.
        skip_corrupt: count framing/CRC corruption and records with non-finite features in `report` instead
            of raising. Other schema errors (wrong release, sizes, label ids) always raise: they mean the
            wrong data, not bad records.
        report: collects skipped records; created by the caller so counts survive the generator.
        keep: (stride, offset) record subset, see `ytlabel.data.tfrecord.read_records`.

    Raises:
        DataError / SchemaError: naming `uri` and the byte offset of the bad record.
    """
    if level is not None and level not in _DECODERS:
        raise ConfigError(f"level must be {VIDEO!r} or {FRAME!r}, got {level!r}")
    if skip_corrupt and report is None:
        report = CorruptionReport()
    with sources.open_shard(uri) as stream:
        for offset, payload in read_records(stream, source=uri, skip_corrupt=skip_corrupt, report=report, keep=keep):
            try:
                if level is None:
                    level = records.detect_level(payload)
                record = _DECODERS[level](payload)
            except NonFiniteError as error:
                skip_or_raise(NonFiniteError(error.reason, source=uri, offset=offset), skip_corrupt, report)
                continue
            except SchemaError as error:
                raise SchemaError(error.reason, source=uri, offset=offset) from None
            yield record


def detect_level(uri: str) -> str:
    """VIDEO or FRAME, judged from the first record of a shard."""
    with sources.open_shard(uri) as stream:
        for offset, payload in read_records(stream, source=uri):
            try:
                return records.detect_level(payload)
            except SchemaError as error:
                raise SchemaError(error.reason, source=uri, offset=offset) from None
    raise DataError("shard holds no records", source=uri)


def detect_dataset_level(shards: Sequence[str]) -> str:
    """The level shared by all `shards`, checked on the first and last shard."""
    if not shards:
        raise DataError("no shards to read")
    first, last = detect_level(shards[0]), detect_level(shards[-1])
    if first != last:
        raise DataError(f"mixed levels: {shards[0]} is {first}-level but {shards[-1]} is {last}-level")
    return first
