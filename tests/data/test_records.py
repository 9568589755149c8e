import numpy as np
import pytest
import tensorflow as tf

from ytlabel.data import records, schema
from ytlabel.data.reader import read_shard
from ytlabel.data.tfrecord import TFRecordWriter
from ytlabel.errors import SchemaError

RNG = np.random.default_rng(11)
RGB = RNG.standard_normal(schema.RGB_DIM).astype(np.float32)
AUDIO = RNG.standard_normal(schema.AUDIO_DIM).astype(np.float32)
RGB_CODES = RNG.integers(0, 256, (5, schema.RGB_DIM), dtype=np.uint8)
AUDIO_CODES = RNG.integers(0, 256, (5, schema.AUDIO_DIM), dtype=np.uint8)


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
    if np.asarray(value).dtype.kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(value)))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))


def tf_video(**overrides) -> bytes:
    features = {"id": b"AbC1", "labels": [4, 77, 3861], "mean_rgb": RGB, "mean_audio": AUDIO, **overrides}
    features = {key: _feature(value) for key, value in features.items() if value is not None}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def tf_frames(rgb=RGB_CODES, audio=AUDIO_CODES, **context) -> bytes:
    context = {"id": b"Fr4m", "labels": [0, 12], **context}
    lists = {
        "rgb": tf.train.FeatureList(feature=[_feature(row.tobytes()) for row in rgb]),
        "audio": tf.train.FeatureList(feature=[_feature(row.tobytes()) for row in audio]),
    }
    return tf.train.SequenceExample(
        context=tf.train.Features(feature={k: _feature(v) for k, v in context.items()}),
        feature_lists=tf.train.FeatureLists(feature_list=lists),
    ).SerializeToString()


def test_decodes_tensorflow_written_video_example():
    record = records.decode_video(tf_video())
    assert record.id == "AbC1"
    assert record.labels.tolist() == [4, 77, 3861]
    np.testing.assert_array_equal(record.rgb, RGB)
    np.testing.assert_array_equal(record.audio, AUDIO)


def test_decodes_tensorflow_written_sequence_example():
    record = records.decode_frames(tf_frames())
    assert (record.id, record.labels.tolist(), record.num_frames) == ("Fr4m", [0, 12], 5)
    np.testing.assert_array_equal(record.rgb, RGB_CODES)
    np.testing.assert_array_equal(record.audio, AUDIO_CODES)


def test_our_video_example_parses_in_tensorflow():
    payload = records.encode_video("v1d0", [1, 2], RGB, AUDIO)
    parsed = tf.io.parse_single_example(
        payload,
        {
            "id": tf.io.FixedLenFeature([], tf.string),
            "labels": tf.io.VarLenFeature(tf.int64),
            "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
            "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
        },
    )
    assert parsed["id"].numpy() == b"v1d0"
    assert parsed["labels"].values.numpy().tolist() == [1, 2]
    np.testing.assert_array_equal(parsed["mean_rgb"].numpy(), RGB)
    np.testing.assert_array_equal(parsed["mean_audio"].numpy(), AUDIO)


def test_our_sequence_example_parses_in_tensorflow():
    payload = records.encode_frames("fr", [3861], RGB_CODES, AUDIO_CODES)
    context, lists = tf.io.parse_single_sequence_example(
        payload,
        context_features={"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)},
        sequence_features={
            "rgb": tf.io.FixedLenSequenceFeature([], tf.string),
            "audio": tf.io.FixedLenSequenceFeature([], tf.string),
        },
    )
    assert context["id"].numpy() == b"fr" and context["labels"].values.numpy().tolist() == [3861]
    np.testing.assert_array_equal(tf.io.decode_raw(lists["rgb"], tf.uint8).numpy(), RGB_CODES)
    np.testing.assert_array_equal(tf.io.decode_raw(lists["audio"], tf.uint8).numpy(), AUDIO_CODES)


def test_level_detection():
    assert records.detect_level(tf_video()) == records.VIDEO
    assert records.detect_level(tf_frames()) == records.FRAME


@pytest.mark.parametrize(
    "payload, message",
    [
        (tf_video(id=None, video_id=b"old1", labels=[4715]), "YouTube-8M 2017 \\(v1\\) data"),
        (tf_video(labels=[3862]), "label id 3862 is outside \\[0, 3861\\]"),
        (tf_video(labels=[-1]), "label id -1 is outside"),
        (tf_video(mean_rgb=RGB[:1000]), "'mean_rgb' has 1000 values, expected 1024"),
        (tf_video(mean_audio=None), "missing feature 'mean_audio'"),
        (tf_video(id=None), "missing feature 'id'"),
    ],
)
def test_video_schema_errors_say_what_is_wrong(payload, message):
    with pytest.raises(SchemaError, match=message):
        records.decode_video(payload)


@pytest.mark.parametrize(
    "payload, message",
    [
        (tf_frames(rgb=RGB_CODES[:0], audio=AUDIO_CODES[:0]), "feature list 'rgb' is empty"),
        (tf_frames(rgb=RGB_CODES[:, :1000]), "'rgb' has 5 frames over 5000 bytes; expected 1024 bytes per frame"),
        (tf_frames(audio=AUDIO_CODES[:3]), "5 rgb frames but 3 audio frames"),
        (tf_frames(labels=[9999]), "label id 9999"),
        (tf_video(), "no feature lists: this looks like video-level data"),
    ],
)
def test_frame_schema_errors_say_what_is_wrong(payload, message):
    with pytest.raises(SchemaError, match=message):
        records.decode_frames(payload)


def test_reader_locates_schema_errors_by_file_and_offset(tmp_path):
    path = str(tmp_path / "mixed.tfrecord")
    good, bad = tf_video(), tf_video(labels=[5000])
    with TFRecordWriter(path) as writer:
        writer.write(good)
        writer.write(bad)
    with pytest.raises(SchemaError) as caught:
        list(read_shard(path))
    assert caught.value.offset == 16 + len(good)
    assert str(caught.value).startswith(f"{path} at byte offset {16 + len(good)}: label id 5000")


def test_fast_path_equals_the_protobuf_path(monkeypatch):
    payload = records.encode_frames("fast", [7, 8], RGB_CODES, AUDIO_CODES)
    fast = records._decode_frames_fast(payload)
    assert fast is not None  # canonical encoding: the fast path applies
    monkeypatch.setattr(records, "_decode_frames_fast", lambda payload: None)
    slow = records.decode_frames(payload)
    assert (fast.id, fast.labels.tolist()) == (slow.id, slow.labels.tolist()) == ("fast", [7, 8])
    np.testing.assert_array_equal(fast.rgb, slow.rgb)
    np.testing.assert_array_equal(fast.audio, slow.audio)


def test_fast_path_declines_what_it_cannot_verify():
    assert records._decode_frames_fast(tf_frames(rgb=RGB_CODES[:, :1000])) is None  # other width
    assert records._decode_frames_fast(tf_video()) is None  # no feature lists
    assert records._decode_frames_fast(b"\x12\xff") is None  # truncated length
