"""TensorFlow's own parse of YT8M shards: the independent reference our decoder and stream are checked
against (tf.io parsing ops, not our protobuf code). Test-only: training feeds Keras from the stream."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from ytlabel.data import schema
from ytlabel.data.examples import InputOptions
from ytlabel.data.records import VIDEO

_EPSILON = 1e-12


def tf_examples(shards: list[str], options: InputOptions) -> list[dict]:
    """Every example of `shards` in order, as numpy dicts with the stream's keys ("id" as str);
    videos shorter than options.min_frames are left out, as the stream leaves them out."""
    dataset = tf.data.TFRecordDataset(list(shards))
    parse = _video_parser(options) if options.level == VIDEO else _frame_parser(options)
    examples = []
    for example in dataset.map(parse).as_numpy_iterator():
        if example.pop("_short", False):
            continue
        example["id"] = example["id"].decode()
        examples.append(example)
    return examples


def _dequantize(codes: tf.Tensor) -> tf.Tensor:
    """float32(q) * scale + bias in float32, the starter's formula and `schema.dequantize`'s."""
    return tf.cast(codes, tf.float32) * schema.DEQUANT_SCALE + schema.DEQUANT_BIAS


def _multi_hot(labels: tf.Tensor) -> tf.Tensor:
    ones = tf.ones_like(labels, dtype=tf.float32)
    hot = tf.scatter_nd(tf.expand_dims(labels, 1), ones, [schema.NUM_CLASSES])
    return tf.minimum(hot, 1.0)  # a repeated label id still counts once


def _l2_normalize(rgb: tf.Tensor, audio: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    squared = tf.reduce_sum(tf.square(rgb), -1, keepdims=True) + tf.reduce_sum(tf.square(audio), -1, keepdims=True)
    inverse = 1.0 / tf.sqrt(tf.maximum(squared, _EPSILON))
    return rgb * inverse, audio * inverse


def _video_parser(options: InputOptions):
    def parse(serialized: tf.Tensor) -> dict:
        return _parse_video(serialized, options.l2_normalize)

    return parse


def _parse_video(serialized: tf.Tensor, l2_normalize: bool) -> dict:
    features = tf.io.parse_single_example(
        serialized,
        {
            schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
            schema.LABELS_KEY: tf.io.VarLenFeature(tf.int64),
            schema.MEAN_RGB_KEY: tf.io.FixedLenFeature([schema.RGB_DIM], tf.float32),
            schema.MEAN_AUDIO_KEY: tf.io.FixedLenFeature([schema.AUDIO_DIM], tf.float32),
        },
    )
    rgb, audio = features[schema.MEAN_RGB_KEY], features[schema.MEAN_AUDIO_KEY]
    if l2_normalize:
        rgb, audio = _l2_normalize(rgb, audio)
    return {
        "id": features[schema.ID_KEY],
        "rgb": rgb,
        "audio": audio,
        "labels": _multi_hot(features[schema.LABELS_KEY].values),
    }


def _frame_parser(options: InputOptions):
    def parse(serialized: tf.Tensor) -> dict:
        context, lists = tf.io.parse_single_sequence_example(
            serialized,
            context_features={
                schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                schema.LABELS_KEY: tf.io.VarLenFeature(tf.int64),
            },
            sequence_features={
                schema.RGB_KEY: tf.io.FixedLenSequenceFeature([], tf.string),
                schema.AUDIO_KEY: tf.io.FixedLenSequenceFeature([], tf.string),
            },
        )
        rgb_codes = tf.reshape(tf.io.decode_raw(lists[schema.RGB_KEY], tf.uint8), [-1, schema.RGB_DIM])
        audio_codes = tf.reshape(tf.io.decode_raw(lists[schema.AUDIO_KEY], tf.uint8), [-1, schema.AUDIO_DIM])
        original = tf.shape(rgb_codes)[0]
        rgb_codes = rgb_codes[:: options.stride][: options.max_frames]
        audio_codes = audio_codes[:: options.stride][: options.max_frames]
        count = tf.shape(rgb_codes)[0]
        # (count, dim) float32, then zero rows up to (max_frames, dim)
        rgb, audio = _dequantize(rgb_codes), _dequantize(audio_codes)
        if options.l2_normalize:
            rgb, audio = _l2_normalize(rgb, audio)
        padding = [[0, options.max_frames - count], [0, 0]]
        rgb = tf.ensure_shape(tf.pad(rgb, padding), [options.max_frames, schema.RGB_DIM])
        audio = tf.ensure_shape(tf.pad(audio, padding), [options.max_frames, schema.AUDIO_DIM])
        return {
            "id": context[schema.ID_KEY],
            "rgb": rgb,
            "audio": audio,
            "num_frames": tf.cast(count, tf.int64),
            "labels": _multi_hot(context[schema.LABELS_KEY].values),
            "_short": original < options.min_frames,
        }

    return parse
