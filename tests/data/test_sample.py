"""The two real YT8M v2 validate shards shipped with the package decode to known values."""

import numpy as np

from ytlabel.data import reader, schema


def test_real_sample_decodes_to_known_counts_and_values(sample_shards):
    first, second = (list(reader.read_shard(path)) for path in sample_shards)
    assert (len(first), len(second)) == (284, 305)
    head = first[0]
    assert head.id == "02aa" and head.labels.tolist() == [3, 4, 9, 34]
    np.testing.assert_allclose(head.rgb[:4], [-0.7816254, 0.10496283, 1.5639433, -0.00274959], rtol=0, atol=1e-7)
    assert sum(len(r.labels) for r in first + second) == 1849  # counted independently with tf.train.Example
    assert len({r.id for r in first + second}) == 589


def test_real_values_lie_within_the_dequantized_grid(sample_shards):
    grid = schema.dequantize(np.array([0, 255], np.uint8))
    values = np.concatenate([np.concatenate([r.rgb, r.audio]) for r in reader.read_shard(sample_shards[0])])
    assert values.min() >= grid[0] and values.max() <= grid[1]
    assert values.min() == grid[0] and values.max() == grid[1]  # the extremes are reached
    assert reader.detect_level(sample_shards[0]) == "video"
