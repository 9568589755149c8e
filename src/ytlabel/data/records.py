"""Decode YT8M v2 records straight into numpy, encode them back, and tell the user what they have.

Two record kinds exist:
  * video level: tf.train.Example with `id`, `labels`, `mean_rgb` [1024] and `mean_audio` [128];
  * frame level: tf.train.SequenceExample with context `id`, `labels` and feature lists `rgb` and
    `audio`, one uint8-quantized bytes value per frame.

Decoders raise SchemaError with the problem only; the reader that knows the file and byte offset
adds them (see `ytlabel.data.reader`).
"""

import dataclasses

import numpy as np
from google.protobuf.message import DecodeError

from ytlabel.data import schema, wire
from ytlabel.errors import NonFiniteError, SchemaError
from ytlabel.kinds import FRAME, VIDEO  # re-exported: the data layer names the two levels


@dataclasses.dataclass(frozen=True, slots=True)
class VideoRecord:
    """One video-level example.

    Attributes:
        id: the video id.
        labels: int32 label ids, shape (labels,).
        rgb: float32 mean visual feature, shape (1024,).
        audio: float32 mean audio feature, shape (128,).
    """

    id: str
    labels: np.ndarray
    rgb: np.ndarray
    audio: np.ndarray


@dataclasses.dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame-level example, kept quantized until a loader needs floats (4x less memory).

    Attributes:
        id: the video id.
        labels: int32 label ids, shape (labels,).
        rgb: uint8 codes, shape (frames, 1024); may be a read-only view into the record's bytes.
        audio: uint8 codes, shape (frames, 128); likewise.
    """

    id: str
    labels: np.ndarray
    rgb: np.ndarray
    audio: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.rgb.shape[0]


def detect_level(payload: bytes) -> str:
    """Returns VIDEO or FRAME for one serialized record.

    An Example parses as a SequenceExample whose feature_lists are empty (field 1 is shared), so the
    presence of feature lists decides.
    """
    message = wire.SequenceExample()
    try:
        message.ParseFromString(payload)
    except Exception as error:  # the protobuf runtime raises its own DecodeError type per backend
        raise SchemaError(f"not a tf.train.Example or SequenceExample ({error})") from error
    return FRAME if len(message.feature_lists.feature_list) else VIDEO


def decode_video(payload: bytes) -> VideoRecord:
    """Decodes a serialized video-level tf.train.Example."""
    fast = _decode_video_fast(payload)
    if fast is not None:
        return fast
    message = wire.Example()
    _parse(message, payload)
    features = message.features.feature
    if not len(features):
        raise SchemaError("record has no features: is this a frame-level SequenceExample read as video level?")
    _check_release(features)
    return VideoRecord(
        id=_video_id(features),
        labels=_labels(features),
        rgb=_floats(features, schema.MEAN_RGB_KEY, schema.RGB_DIM),
        audio=_floats(features, schema.MEAN_AUDIO_KEY, schema.AUDIO_DIM),
    )


def _decode_video_fast(payload: bytes) -> VideoRecord | None:
    """Packed float lists viewed in place (see `wire.packed_floats`); None when it does not apply."""
    try:
        ((features_start, features_end),) = wire.length_delimited_fields(payload)[1]
        ranges = wire.map_entries(payload, features_start, features_end)
        rgb = wire.packed_floats(payload, *ranges[schema.MEAN_RGB_KEY], schema.RGB_DIM)
        audio = wire.packed_floats(payload, *ranges[schema.MEAN_AUDIO_KEY], schema.AUDIO_DIM)
        small = {
            key: wire.Feature.FromString(payload[slice(*ranges[key])]) for key in (schema.ID_KEY, schema.LABELS_KEY)
        }
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, DecodeError):
        return None
    if rgb is None or audio is None or schema.V1_ID_KEY in ranges:
        return None
    return VideoRecord(
        id=_video_id(small),
        labels=_labels(small),
        rgb=_finite(rgb, schema.MEAN_RGB_KEY),
        audio=_finite(audio, schema.MEAN_AUDIO_KEY),
    )


def decode_frames(payload: bytes) -> FrameRecord:
    """Decodes a serialized frame-level tf.train.SequenceExample."""
    fast = _decode_frames_fast(payload)
    if fast is not None:
        return fast
    message = wire.SequenceExample()
    _parse(message, payload)
    context = message.context.feature
    _check_release(context)
    lists = message.feature_lists.feature_list
    if not len(lists):
        raise SchemaError("record has no feature lists: this looks like video-level data read as frame level")
    rgb = _frames(lists, schema.RGB_KEY, schema.RGB_DIM)
    audio = _frames(lists, schema.AUDIO_KEY, schema.AUDIO_DIM)
    return _frame_record(_video_id(context), _labels(context), rgb, audio)


def _decode_frames_fast(payload: bytes) -> FrameRecord | None:
    """The canonical-encoding fast path (see `wire.fixed_width_frames`); None when it does not apply."""
    try:
        top = wire.length_delimited_fields(payload)
        ((context_start, context_end),) = top.get(1, [(0, 0)])
        ((lists_start, lists_end),) = top[2]
        ranges = wire.map_entries(payload, lists_start, lists_end)
        rgb = wire.fixed_width_frames(payload, *ranges[schema.RGB_KEY], schema.RGB_DIM)
        audio = wire.fixed_width_frames(payload, *ranges[schema.AUDIO_KEY], schema.AUDIO_DIM)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None
    if rgb is None or audio is None:
        return None
    context = wire.Features()
    _parse(context, payload[context_start:context_end])
    _check_release(context.feature)
    return _frame_record(_video_id(context.feature), _labels(context.feature), rgb, audio)


def _frame_record(video_id: str, labels: np.ndarray, rgb: np.ndarray, audio: np.ndarray) -> FrameRecord:
    if rgb.shape[0] != audio.shape[0]:
        raise SchemaError(f"feature lists disagree: {rgb.shape[0]} rgb frames but {audio.shape[0]} audio frames")
    return FrameRecord(id=video_id, labels=labels, rgb=rgb, audio=audio)


def encode_video(video_id: str, labels, rgb: np.ndarray, audio: np.ndarray) -> bytes:
    """Serializes a video-level tf.train.Example in the v2 schema."""
    message = wire.Example()
    features = message.features.feature
    features[schema.ID_KEY].bytes_list.value.append(video_id.encode())
    features[schema.LABELS_KEY].int64_list.value.extend(int(label) for label in labels)
    features[schema.MEAN_RGB_KEY].float_list.value.extend(np.asarray(rgb, np.float32).tolist())
    features[schema.MEAN_AUDIO_KEY].float_list.value.extend(np.asarray(audio, np.float32).tolist())
    return message.SerializeToString(deterministic=True)


def encode_frames(video_id: str, labels, rgb: np.ndarray, audio: np.ndarray) -> bytes:
    """Serializes a frame-level tf.train.SequenceExample from uint8 codes (frames, dim)."""
    message = wire.SequenceExample()
    context = message.context.feature
    context[schema.ID_KEY].bytes_list.value.append(video_id.encode())
    context[schema.LABELS_KEY].int64_list.value.extend(int(label) for label in labels)
    lists = message.feature_lists.feature_list
    for key, codes in ((schema.RGB_KEY, rgb), (schema.AUDIO_KEY, audio)):
        frames = lists[key].feature
        for row in np.asarray(codes, np.uint8):
            frames.add().bytes_list.value.append(row.tobytes())
    return message.SerializeToString(deterministic=True)


def _parse(message, payload: bytes) -> None:
    try:
        message.ParseFromString(payload)
    except Exception as error:  # the protobuf runtime raises its own DecodeError type per backend
        raise SchemaError(f"record is not a valid protobuf message ({error})") from error


def _check_release(features) -> None:
    if schema.ID_KEY not in features and schema.V1_ID_KEY in features:
        raise SchemaError(
            f"this is YouTube-8M 2017 (v1) data: it has '{schema.V1_ID_KEY}' and {schema.V1_NUM_CLASSES} classes. "
            f"ytlabel reads the v2 (May 2018) release, with '{schema.ID_KEY}' and {schema.NUM_CLASSES} classes; "
            "download the v2 files instead"
        )


def _video_id(features) -> str:
    if schema.ID_KEY not in features:
        raise SchemaError(f"missing feature '{schema.ID_KEY}' (have: {sorted(features)})")
    values = features[schema.ID_KEY].bytes_list.value
    if len(values) != 1:
        raise SchemaError(f"feature '{schema.ID_KEY}' must hold one bytes value, got {len(values)}")
    return values[0].decode("utf-8", errors="replace")


def _labels(features) -> np.ndarray:
    if schema.LABELS_KEY not in features:
        raise SchemaError(f"missing feature '{schema.LABELS_KEY}'")
    labels = np.array(features[schema.LABELS_KEY].int64_list.value, dtype=np.int64)
    bad = labels[(labels < 0) | (labels >= schema.NUM_CLASSES)]
    if bad.size:
        raise SchemaError(
            f"label id {int(bad[0])} is outside [0, {schema.NUM_CLASSES - 1}] "
            f"(the v2 vocabulary has {schema.NUM_CLASSES} classes)"
        )
    return labels.astype(np.int32)


def _floats(features, key: str, size: int) -> np.ndarray:
    if key not in features:
        raise SchemaError(f"missing feature '{key}' (have: {sorted(features)})")
    values = np.array(features[key].float_list.value, dtype=np.float32)
    if values.shape != (size,):
        raise SchemaError(f"feature '{key}' has {values.size} values, expected {size}")
    return _finite(values, key)


def _finite(values: np.ndarray, key: str) -> np.ndarray:
    """`values`, unless one is NaN or infinite: those must stop where they enter, not reach a model."""
    if not np.isfinite(values).all():
        index = int(np.flatnonzero(~np.isfinite(values))[0])
        raise NonFiniteError(f"feature '{key}' holds a non-finite value ({values[index]}) at index {index}")
    return values


def _frames(lists, key: str, size: int) -> np.ndarray:
    """(frames, size) uint8 codes of one feature list; one `size`-byte string per frame."""
    if key not in lists:
        raise SchemaError(f"missing feature list '{key}' (have: {sorted(lists)})")
    frames = lists[key].feature
    if not len(frames):
        raise SchemaError(f"feature list '{key}' is empty: a video needs at least one frame")
    try:
        joined = b"".join([frame.bytes_list.value[0] for frame in frames])
    except IndexError:
        raise SchemaError(f"feature list '{key}' has a frame without a bytes value") from None
    if len(joined) != len(frames) * size:
        raise SchemaError(
            f"feature list '{key}' has {len(frames)} frames over {len(joined)} bytes; expected {size} bytes per frame"
        )
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(frames), size)
