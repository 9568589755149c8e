"""Mutations of real and synthetic YT8M records, and the property every parse must keep: it yields valid
records or raises DataError, nothing else. Shared by tests/data/test_fuzz.py (hypothesis, a few thousand
cases in `make test`) and benchmarks/fuzz.py (the long run)."""

import io
import os
import struct

import numpy as np
from hypothesis import strategies as st

from ytlabel.data import records, schema
from ytlabel.data.reader import read_shard
from ytlabel.data.tfrecord import CorruptionReport, TFRecordWriter, masked_crc32c, read_records
from ytlabel.errors import DataError

SAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "src", "ytlabel", "data", "assets", "sample", "validate0000.tfrecord"
)


def seed_payloads() -> list[bytes]:
    """Three real video-level records and two synthetic frame-level ones (a short and a 20-frame video)."""
    with open(SAMPLE, "rb") as stream:
        real = [payload for _, payload in read_records(stream, source=SAMPLE)][:3]
    rng = np.random.default_rng(0)
    frames = [
        records.encode_frames(
            f"f{n}",
            [3, 50, 3861],
            rng.integers(0, 256, (n, schema.RGB_DIM), np.uint8),
            rng.integers(0, 256, (n, schema.AUDIO_DIM), np.uint8),
        )
        for n in (1, 20)
    ]
    return real + frames


def frame(payloads: list[bytes]) -> bytes:
    """TFRecord framing with valid CRCs: a mutated payload then reaches the protobuf decoders."""
    out = io.BytesIO()
    for payload in payloads:
        length = struct.pack("<Q", len(payload))
        out.write(
            length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))
        )
    return out.getvalue()


def mutate(data: bytes, operations: list[tuple[str, int, int]]) -> bytes:
    """Applies (kind, position, value) edits: bit flips, truncation, inserted or overwritten bytes, a huge
    varint (ten 0xFF bytes), a changed wire type, a length field rewritten to `value`."""
    buffer = bytearray(data)
    for kind, position, value in operations:
        if not buffer:
            break
        at = position % len(buffer)
        if kind == "flip":
            buffer[at] ^= 1 << (value % 8)
        elif kind == "truncate":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = bytes([value % 256]) * (1 + value % 7)
        elif kind == "overwrite":
            buffer[at] = value % 256
        elif kind == "varint":
            buffer[at:at] = b"\xff" * 10
        elif kind == "wiretype":
            buffer[at] = (buffer[at] & 0xF8) | (value % 8)
        elif kind == "length":
            buffer[at : at + 8] = struct.pack("<Q", value % (1 << 64))
    return bytes(buffer)


KINDS = ("flip", "truncate", "insert", "overwrite", "varint", "wiretype", "length")
operations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 1 << 20), st.integers(0, (1 << 64) - 1)), min_size=1, max_size=4
)


def check(path: str, skip_corrupt: bool) -> int:
    """Reads the shard at `path`; returns the records read. Raises only DataError (the property)."""
    report = CorruptionReport() if skip_corrupt else None
    count = 0
    for record in read_shard(path, skip_corrupt=skip_corrupt, report=report):
        assert record.rgb.shape[-1] == schema.RGB_DIM and record.audio.shape[-1] == schema.AUDIO_DIM
        assert record.rgb.shape[:-1] == record.audio.shape[:-1]  # one audio row per rgb frame
        assert record.rgb.dtype in (np.float32, np.uint8) and np.isfinite(np.asarray(record.rgb, np.float32)).all()
        assert record.labels.size == 0 or (0 <= record.labels.min() and record.labels.max() < schema.NUM_CLASSES)
        count += 1
    return count


def run_case(path: str, seeds: list[bytes], choice: int, ops, reframe: bool, skip_corrupt: bool) -> str:
    """One case: mutate a seed payload (then frame it validly) or a framed file; returns the outcome."""
    seed = seeds[choice % len(seeds)]
    same_level = [
        other for other in seeds if other != seed and records.detect_level(other) == records.detect_level(seed)
    ]
    data = frame([mutate(seed, ops)]) if reframe else mutate(frame([seed, same_level[choice % len(same_level)]]), ops)
    with open(path, "wb") as out:
        out.write(data)
    try:
        check(path, skip_corrupt)
        return "read"
    except DataError:
        return "data-error"


def write_seed_shards(folder: str) -> list[str]:
    """The seeds as two shards, one per level (a shard holds one level)."""
    paths = []
    for level in (records.VIDEO, records.FRAME):
        paths.append(os.path.join(folder, f"{level}.tfrecord"))
        with TFRecordWriter(paths[-1]) as out:
            for payload in seed_payloads():
                if records.detect_level(payload) == level:
                    out.write(payload)
    return paths
