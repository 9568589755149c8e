"""tf.data pipeline over YT8M shards for Keras, with file-based auto-sharding for MultiWorker runs.

Produces the same examples as the PyTorch loader (same keys, shapes and values; see
`ytlabel.data.batching` for the rules), parsed by TensorFlow's own ops so that the whole input
pipeline runs in tf.data's C++ threads.
"""

import os
import tempfile
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of logs

import tensorflow as tf  # noqa: E402

from ytlabel.data import schema, sources
from ytlabel.data.batching import LoaderOptions
from ytlabel.data.records import VIDEO

_EPSILON = 1e-12


class DropCounter:
    """Counts videos that `min_frames` dropped; read `.value` after (or during) iteration."""

    def __init__(self):
        self._count = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def value(self) -> int:
        return int(self._count.numpy())

    def keep(self, example: dict) -> tf.Tensor:
        short = example["_short"]
        self._count.assign_add(tf.cast(short, tf.int64))
        return tf.logical_not(short)


def make_dataset(
    shards: Sequence[str],
    options: LoaderOptions,
    batch_size: int | None = None,
    *,
    drop_remainder: bool = False,
    counter: DropCounter | None = None,
    cache_dir: str | None = None,
) -> tf.data.Dataset:
    """A tf.data.Dataset of dict examples (batched when `batch_size` is given).

    Args:
        shards: local paths or s3:// URIs; S3 shards are first copied to `cache_dir` (TensorFlow
            has no S3 filesystem without tensorflow-io).
        options: the options shared with the PyTorch loader.
        batch_size: batch examples; None yields single examples.
        drop_remainder: drop a last, smaller batch (MultiWorker needs equal batches per step).
        counter: receives the number of videos dropped by `min_frames`.
        cache_dir: where S3 shards are staged; a temporary directory by default.

    Returns:
        Dataset of {"id": string, "rgb", "audio", "labels": float32, ["num_frames": int64]}, with
        FILE auto-sharding so MultiWorkerMirroredStrategy gives each worker whole files.
    """
    if any(uri.startswith("s3://") for uri in shards):
        shards = sources.stage_local(shards, cache_dir or tempfile.mkdtemp(prefix="ytlabel-shards-"))
    dataset = tf.data.TFRecordDataset(list(shards), buffer_size=1 << 20)
    parse = _video_parser(options) if options.level == VIDEO else _frame_parser(options)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if options.level != VIDEO:
        dataset = dataset.filter((counter or DropCounter()).keep).map(_without_flag)
    if batch_size:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    distribute = tf.data.Options()
    distribute.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    return dataset.with_options(distribute).prefetch(tf.data.AUTOTUNE)


def _dequantize(codes: tf.Tensor) -> tf.Tensor:
    """float32(q) * scale + bias in float32, the starter's formula and `schema.dequantize`'s."""
    return tf.cast(codes, tf.float32) * schema.DEQUANT_SCALE + schema.DEQUANT_BIAS


def _without_flag(example: dict) -> dict:
    return {key: value for key, value in example.items() if key != "_short"}


def _multi_hot(labels: tf.Tensor) -> tf.Tensor:
    ones = tf.ones_like(labels, dtype=tf.float32)
    hot = tf.scatter_nd(tf.expand_dims(labels, 1), ones, [schema.NUM_CLASSES])
    return tf.minimum(hot, 1.0)  # a repeated label id still counts once


def _l2_normalize(rgb: tf.Tensor, audio: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    squared = tf.reduce_sum(tf.square(rgb), -1, keepdims=True) + tf.reduce_sum(tf.square(audio), -1, keepdims=True)
    inverse = 1.0 / tf.sqrt(tf.maximum(squared, _EPSILON))
    return rgb * inverse, audio * inverse


def _video_parser(options: LoaderOptions):
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
    return {"id": features[schema.ID_KEY], "rgb": rgb, "audio": audio,
            "labels": _multi_hot(features[schema.LABELS_KEY].values)}


def _frame_parser(options: LoaderOptions):
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
