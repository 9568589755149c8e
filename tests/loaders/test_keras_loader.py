"""The tf.data pipeline yields exactly what the PyTorch loader yields, from TensorFlow's own parser."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from ytlabel.data.batching import LoaderOptions
from ytlabel.loaders.keras_loader import DropCounter, make_dataset
from ytlabel.loaders.torch_loader import YT8MIterable


def _shards(synth_dir, level):
    return sorted(glob.glob(os.path.join(synth_dir, level, "*.tfrecord")))


@pytest.mark.parametrize("options", [
    LoaderOptions(level="frame", max_frames=8, stride=2),
    LoaderOptions(level="frame", max_frames=30, min_frames=15),
    LoaderOptions(level="video"),
])
def test_same_examples_as_the_torch_loader(synth_dir, options):
    shards = _shards(synth_dir, options.level)
    ours = list(YT8MIterable(shards, options, rank=0, world_size=1))
    theirs = list(make_dataset(shards, options).as_numpy_iterator())
    assert [e["id"] for e in ours] == [e["id"].decode() for e in theirs]
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        for key in set(a) - {"id"}:
            np.testing.assert_array_equal(a[key].numpy(), b[key], err_msg=key)


def test_l2_normalisation_agrees_to_float_rounding(synth_dir):
    options = LoaderOptions(level="frame", max_frames=20, l2_normalize=True)
    shards = _shards(synth_dir, "frame")[:1]
    ours = list(YT8MIterable(shards, options, rank=0, world_size=1))
    theirs = list(make_dataset(shards, options).as_numpy_iterator())
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a["rgb"].numpy(), b["rgb"], atol=2e-7)
        np.testing.assert_allclose(a["audio"].numpy(), b["audio"], atol=2e-7)


def test_drop_counter_reports_min_frames_drops(synth_dir):
    shards = _shards(synth_dir, "frame")
    torch_side = YT8MIterable(shards, LoaderOptions(max_frames=20, min_frames=16), rank=0, world_size=1)
    kept = len(list(torch_side))
    counter = DropCounter()
    dataset = make_dataset(shards, LoaderOptions(max_frames=20, min_frames=16), batch_size=4, counter=counter)
    batches = list(dataset)
    assert sum(int(b["labels"].shape[0]) for b in batches) == kept
    assert counter.value == torch_side.dropped_short > 0


def test_batches_shard_by_file_for_multiworker(synth_dir):
    dataset = make_dataset(_shards(synth_dir, "frame"), LoaderOptions(max_frames=5), batch_size=4, drop_remainder=True)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.FILE
    shapes = [tuple(b["rgb"].shape) for b in dataset]
    assert shapes == [(4, 5, 1024)] * 6
