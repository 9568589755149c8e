import io
import os

import pytest
import tensorflow as tf

from ytlabel.data.tfrecord import CorruptionReport, TFRecordWriter, masked_crc32c, read_records
from ytlabel.errors import DataError

PAYLOADS = [b"alpha", b"", b"x" * 1000, b"omega"]


def _write(path, payloads=PAYLOADS):
    with TFRecordWriter(path) as writer:
        for payload in payloads:
            writer.write(payload)
    return str(path)


def _read(path, **kwargs):
    with open(path, "rb") as stream:
        return list(read_records(stream, source=str(path), **kwargs))


def test_masked_crc_of_known_input():
    # CRC32C("123456789") is 0xE3069283 (RFC 3720); masked: rotate right 15, add 0xA282EAD8.
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_round_trip_with_offsets(tmp_path):
    path = _write(tmp_path / "a.tfrecord")
    records = _read(path)
    assert [payload for _, payload in records] == PAYLOADS
    assert [offset for offset, _ in records] == [0, 21, 37, 1053]  # 16 framing bytes per record


def test_bytes_equal_tensorflows_writer(tmp_path):
    ours = _write(tmp_path / "ours.tfrecord")
    theirs = str(tmp_path / "theirs.tfrecord")
    with tf.io.TFRecordWriter(theirs) as writer:
        for payload in PAYLOADS:
            writer.write(payload)
    assert open(ours, "rb").read() == open(theirs, "rb").read()
    assert [p for _, p in _read(theirs)] == PAYLOADS
    assert [r.numpy() for r in tf.data.TFRecordDataset(ours)] == PAYLOADS


def _flip(path, position):
    data = bytearray(open(path, "rb").read())
    data[position] ^= 0xFF
    open(path, "wb").write(bytes(data))


def test_flipped_data_byte_names_file_and_offset(tmp_path):
    path = _write(tmp_path / "bad.tfrecord")
    _flip(path, 37 + 12 + 500)  # inside the third record's data
    with pytest.raises(DataError) as caught:
        _read(path)
    assert caught.value.source == path and caught.value.offset == 37
    assert str(caught.value) == f"{path} at byte offset 37: corrupt record data (CRC mismatch over 1000 bytes)"


def test_skip_corrupt_counts_the_bad_record_and_keeps_the_rest(tmp_path):
    path = _write(tmp_path / "bad.tfrecord")
    _flip(path, 37 + 12 + 500)
    report = CorruptionReport()
    records = _read(path, skip_corrupt=True, report=report)
    assert [p for _, p in records] == [b"alpha", b"", b"omega"]
    assert report.skipped == 1 and "byte offset 37" in report.problems[0]


def test_corrupt_length_stops_the_file(tmp_path):
    path = _write(tmp_path / "bad.tfrecord")
    _flip(path, 21 + 2)  # second record's length field
    with pytest.raises(DataError, match="byte offset 21: corrupt record length"):
        _read(path)
    report = CorruptionReport()
    assert [p for _, p in _read(path, skip_corrupt=True, report=report)] == [b"alpha"]
    assert report.skipped == 1


@pytest.mark.parametrize("cut, message", [(3, "truncated record:"), (1053 + 5, "truncated record header")])
def test_truncation_is_reported_at_the_last_record(tmp_path, cut, message):
    path = _write(tmp_path / "cut.tfrecord")
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size - cut if cut < 100 else cut)
    with pytest.raises(DataError, match=f"byte offset 1053: {message}"):
        _read(path)


def test_keep_strides_over_records_in_seekable_and_plain_streams(tmp_path):
    path = _write(tmp_path / "a.tfrecord")
    data = open(path, "rb").read()

    class Unseekable(io.RawIOBase):
        def __init__(self):
            self._inner = io.BytesIO(data)

        def read(self, n=-1):
            return self._inner.read(n)

    for stream in (open(path, "rb"), Unseekable()):
        kept = list(read_records(stream, source=path, keep=(2, 1)))
        assert kept == [(21, b""), (1053, b"omega")]


def test_writer_leaves_nothing_when_aborted(tmp_path):
    target = tmp_path / "never.tfrecord"
    with pytest.raises(RuntimeError), TFRecordWriter(target) as writer:
        writer.write(b"half")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_skip_corrupt_requires_a_report():
    with pytest.raises(ValueError, match="CorruptionReport"):
        list(read_records(io.BytesIO(b""), source="x", skip_corrupt=True))
