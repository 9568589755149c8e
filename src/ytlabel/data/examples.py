"""Framework-neutral preparation of decoded records into model inputs (numpy only).

Training (both frameworks, through data/stream.py), evaluation and serving prepare inputs by these rules;
tests hold them to TensorFlow's own parse of the same shards:
  * frames: take every `stride`-th frame, then the first `max_frames`, dequantize, zero-pad to
    `max_frames`; `num_frames` says how many rows are real;
  * `min_frames`: videos with fewer *original* frames are dropped and counted (the research kept
    only videos of >= 100 s);
  * `l2_normalize`: like the starter code, each frame's (or video's) concatenated 1152-d
    [rgb, audio] vector is scaled to unit length; padding rows stay zero;
  * labels become a (3862,) float32 multi-hot vector, or with `target="genres"` a (25,) one over the
    Vertical1 genres (a genre is present when any of the video's classes belongs to it).

`prepare` states the rules for one record; `prepare_batch` applies them to a batch at once, writing each
video straight into preallocated batch arrays (the training and evaluation path: one copy instead of two,
and one multi-hot matrix per batch instead of one vector per video). Tests hold the two equal.

Between processes a batch travels packed (`pack_batch`): frames as the uint8 codes the shards hold (4x
smaller than floats) and labels as ids (a few per video instead of a 3,862-wide row). `unpack_batch` makes
exactly `prepare_batch`'s arrays of it, bit for bit, in the process that consumes the batch.
"""

import dataclasses
from typing import Any

import numpy as np

from ytlabel.data import schema
from ytlabel.data.records import FRAME, VIDEO, FrameRecord, VideoRecord
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import ConfigError

EPSILON = 1e-12
CLASSES, GENRES = "classes", "genres"  # what a model is trained to output: the 3,862 classes or the genres


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """How records become model inputs, the same for training, evaluation and serving.

    Attributes:
        level: "video" (mean features) or "frame" (per-frame sequences).
        max_frames: frames kept per video after striding; batches are padded to this length.
        stride: keep every `stride`-th frame (1 = all); 2 halves sequence cost for LSTMs.
        min_frames: drop videos with fewer original frames (0 keeps all); frame level only.
        l2_normalize: unit-length [rgb, audio] per frame or video, as the starter code does.
        target: "classes" (3,862 labels) or "genres" (the vocabulary's Vertical1 genres).
    """

    level: str = FRAME
    max_frames: int = schema.MAX_FRAMES
    stride: int = 1
    min_frames: int = 0
    l2_normalize: bool = False
    target: str = CLASSES

    def __post_init__(self):
        if self.target not in (CLASSES, GENRES):
            raise ConfigError(f"target={self.target!r}: must be {CLASSES!r} or {GENRES!r}")
        if self.level not in (VIDEO, FRAME):
            raise ConfigError(f"level={self.level!r}: must be {VIDEO!r} or {FRAME!r}")
        if not 1 <= self.max_frames <= schema.MAX_FRAMES:
            raise ConfigError(f"max_frames={self.max_frames}: must be in [1, {schema.MAX_FRAMES}]")
        if self.stride < 1:
            raise ConfigError(f"stride={self.stride}: must be >= 1")
        if self.min_frames < 0:
            raise ConfigError(f"min_frames={self.min_frames}: must be >= 0")
        if self.min_frames and self.level == VIDEO:
            raise ConfigError(f"min_frames={self.min_frames}: video-level records carry no frame count; use 0")


def multi_hot(labels: np.ndarray) -> np.ndarray:
    """(3862,) float32 with ones at the label ids."""
    target = np.zeros(schema.NUM_CLASSES, dtype=np.float32)
    target[labels] = 1.0
    return target


def targets(labels: np.ndarray, target: str = CLASSES) -> np.ndarray:
    """The multi-hot training target of a video's label ids: over the classes, or over the genres."""
    if target == CLASSES:
        return multi_hot(labels)
    vocabulary = load_vocabulary()
    out = np.zeros(len(vocabulary.genres), dtype=np.float32)
    out[vocabulary.genre_ids[labels]] = 1.0
    return out


def prepare(record: VideoRecord | FrameRecord, options: InputOptions) -> dict[str, Any] | None:
    """Model inputs for one record, or None when `min_frames` drops it.

    Returns:
        video level: {"rgb": (1024,), "audio": (128,), "labels": (3862,)} float32;
        frame level: {"rgb": (max_frames, 1024), "audio": (max_frames, 128), "labels": (3862,)}
        float32 and "num_frames": int64 scalar (>= 1).
    """
    if options.level == VIDEO:
        # Records may be read-only views into their serialized bytes; the model gets its own arrays.
        rgb, audio = record.rgb.copy(), record.audio.copy()
        if options.l2_normalize:
            rgb, audio = l2_normalize_pair(rgb, audio)
        return {"rgb": rgb, "audio": audio, "labels": targets(record.labels, options.target)}
    assert isinstance(record, FrameRecord)
    if record.num_frames < options.min_frames:
        return None
    rgb_codes = record.rgb[:: options.stride][: options.max_frames]
    audio_codes = record.audio[:: options.stride][: options.max_frames]
    count = rgb_codes.shape[0]
    rgb = np.zeros((options.max_frames, schema.RGB_DIM), dtype=np.float32)
    audio = np.zeros((options.max_frames, schema.AUDIO_DIM), dtype=np.float32)
    rgb[:count], audio[:count] = schema.dequantize(rgb_codes), schema.dequantize(audio_codes)
    if options.l2_normalize:
        rgb[:count], audio[:count] = l2_normalize_pair(rgb[:count], audio[:count])
    return {"rgb": rgb, "audio": audio, "num_frames": np.int64(count), "labels": targets(record.labels, options.target)}


def kept(record: VideoRecord | FrameRecord, options: InputOptions) -> bool:
    """False when `min_frames` drops the record (video-level records are always kept)."""
    return isinstance(record, VideoRecord) or record.num_frames >= options.min_frames


def prepare_batch(records: list[VideoRecord | FrameRecord], options: InputOptions) -> dict[str, np.ndarray]:
    """`prepare` of every record, stacked: the same arrays with a leading batch axis, built a batch at once.

    The records must all be kept (see `kept`). Frame batches are padded to `max_frames` like `prepare`.
    It is `unpack_batch(pack_batch(...))`: one path whether or not the batch crosses a process boundary.
    """
    return unpack_batch(pack_batch(records, options), options)


def pack_batch(records: list[VideoRecord | FrameRecord], options: InputOptions) -> dict[str, np.ndarray]:
    """A batch as it crosses a process boundary: what the shards hold, strided, truncated and padded.

    Returns:
        "label_ids" (all videos' label ids, int64) and "label_counts" (per video, int64); video level:
        "rgb" (videos, 1024), "audio" (videos, 128) float32 as stored; frame level: "rgb_codes"
        (videos, max_frames, 1024) and "audio_codes" (videos, max_frames, 128) uint8, zero-padded, and
        "num_frames" (videos,) int64. The records must all be kept (see `kept`).
    """
    labels = [record.labels for record in records]
    packed = {
        "label_ids": np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64),
        "label_counts": np.array([len(ids) for ids in labels], dtype=np.int64),
    }
    if options.level == VIDEO:
        return {
            "rgb": np.stack([record.rgb for record in records]).astype(np.float32, copy=False),
            "audio": np.stack([record.audio for record in records]).astype(np.float32, copy=False),
            **packed,
        }
    size = len(records)
    rgb = np.zeros((size, options.max_frames, schema.RGB_DIM), dtype=np.uint8)
    audio = np.zeros((size, options.max_frames, schema.AUDIO_DIM), dtype=np.uint8)
    counts = np.zeros(size, dtype=np.int64)
    for row, record in enumerate(records):
        rgb_codes = record.rgb[:: options.stride][: options.max_frames]
        count = counts[row] = rgb_codes.shape[0]
        rgb[row, :count] = rgb_codes
        audio[row, :count] = record.audio[:: options.stride][: options.max_frames]
    return {"rgb_codes": rgb, "audio_codes": audio, "num_frames": counts, **packed}


def unpack_batch(packed: dict[str, np.ndarray], options: InputOptions) -> dict[str, np.ndarray]:
    """`prepare_batch`'s arrays from a `pack_batch` batch, bit for bit: every element goes through the same
    float32 operations, the whole batch at once."""
    counts = packed["label_counts"]
    rows = np.repeat(np.arange(len(counts)), counts)
    batch = {"labels": _targets_at(rows, packed["label_ids"], len(counts), options.target)}
    if options.level == VIDEO:
        rgb, audio = packed["rgb"], packed["audio"]
        if options.l2_normalize:
            rgb, audio = l2_normalize_pair(rgb, audio)
        return {"rgb": rgb, "audio": audio, **batch}
    frames = packed["num_frames"]
    padding = np.arange(options.max_frames)[None, :] >= frames[:, None]  # (videos, max_frames)
    out = {}
    for key in ("rgb", "audio"):
        codes = packed[f"{key}_codes"]
        values = np.multiply(codes, schema.DEQUANT_SCALE, dtype=np.float32)  # float32(q) * scale + bias
        values += schema.DEQUANT_BIAS
        values[padding] = 0.0
        out[key] = values
    if options.l2_normalize:
        inverse = _inverse_norm(out["rgb"], out["audio"])
        out["rgb"] *= inverse
        out["audio"] *= inverse
    return {**out, "num_frames": frames, **batch}


def batch_targets(labels: list[np.ndarray], target: str = CLASSES) -> np.ndarray:
    """`targets` of each video's label ids, as one (videos, classes or genres) float32 matrix."""
    ids = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(labels)), [len(video) for video in labels])
    return _targets_at(rows, ids, len(labels), target)


def _targets_at(rows: np.ndarray, ids: np.ndarray, videos: int, target: str) -> np.ndarray:
    """The multi-hot matrix with a one at (row, id) for each pair (ids mapped to genres for that target)."""
    if target == CLASSES:
        out = np.zeros((videos, schema.NUM_CLASSES), dtype=np.float32)
    else:
        vocabulary = load_vocabulary()
        out = np.zeros((videos, len(vocabulary.genres)), dtype=np.float32)
        ids = vocabulary.genre_ids[ids]
    out[rows, ids] = 1.0
    return out


def l2_normalize_pair(rgb: np.ndarray, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scales [rgb, audio] along the last axis to unit norm (jointly, as one 1152-d vector)."""
    inverse = _inverse_norm(rgb, audio)
    return (rgb * inverse).astype(np.float32), (audio * inverse).astype(np.float32)


def _inverse_norm(rgb: np.ndarray, audio: np.ndarray) -> np.ndarray:
    squared = np.sum(np.square(rgb), axis=-1, keepdims=True) + np.sum(np.square(audio), axis=-1, keepdims=True)
    return 1.0 / np.sqrt(np.maximum(squared, EPSILON))
