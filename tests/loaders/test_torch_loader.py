import collections
import glob
import os

import numpy as np
import pytest
import torch

from ytlabel.data import batching, reader, schema
from ytlabel.data.batching import LoaderOptions
from ytlabel.loaders.torch_loader import YT8MIterable, make_loader


def _shards(synth_dir, level="frame"):
    return sorted(glob.glob(os.path.join(synth_dir, level, "*.tfrecord")))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 1, 2])
@pytest.mark.parametrize("shard_count", [2, 3])
def test_every_record_read_once_across_ranks_and_workers(synth_dir, world_size, num_workers, shard_count):
    shards = _shards(synth_dir)[:shard_count]
    expected = [r.id for shard in shards for r in reader.read_shard(shard)]
    seen = collections.Counter()
    for rank in range(world_size):
        loader = make_loader(shards, LoaderOptions(max_frames=4), batch_size=3,
                             num_workers=num_workers, rank=rank, world_size=world_size)
        for batch in loader:
            seen.update(batch["id"])
    assert sorted(seen) == sorted(expected) and set(seen.values()) == {1}


def test_values_follow_the_shared_rules(synth_dir):
    shard = _shards(synth_dir)[0]
    records = list(reader.read_shard(shard))
    options = LoaderOptions(max_frames=6, stride=2)
    batch = next(iter(make_loader([shard], options, batch_size=len(records))))
    assert batch["rgb"].shape == (len(records), 6, 1024) and batch["rgb"].dtype == torch.float32
    first = records[0]
    count = min(6, (first.num_frames + 1) // 2)
    assert batch["num_frames"][0].item() == count
    np.testing.assert_array_equal(batch["rgb"][0, :count].numpy(), schema.dequantize(first.rgb[::2][:count]))
    assert batch["labels"][0].sum().item() == len(first.labels)
    assert batch["labels"][0, first.labels].min().item() == 1.0


def test_padding_rows_are_zero_and_l2_rows_have_unit_norm(synth_dir):
    shard = _shards(synth_dir)[0]
    batch = next(iter(make_loader([shard], LoaderOptions(max_frames=30, l2_normalize=True), batch_size=4)))
    for i in range(4):
        n = batch["num_frames"][i].item()
        assert n < 30 and batch["rgb"][i, n:].abs().sum().item() == 0.0
        joint = torch.cat([batch["rgb"][i, :n], batch["audio"][i, :n]], dim=-1)
        np.testing.assert_allclose(joint.norm(dim=-1).numpy(), np.ones(n), atol=1e-5)


def test_min_frames_drops_are_counted(synth_dir):
    shards = _shards(synth_dir)
    lengths = [r.num_frames for shard in shards for r in reader.read_shard(shard)]
    dataset = YT8MIterable(shards, LoaderOptions(max_frames=20, min_frames=16), rank=0, world_size=1)
    kept = list(dataset)
    assert len(kept) == sum(n >= 16 for n in lengths)
    assert dataset.dropped_short == sum(n < 16 for n in lengths) > 0


def test_video_level(synth_dir):
    shards = _shards(synth_dir, "video")
    batch = next(iter(make_loader(shards, LoaderOptions(level="video"), batch_size=5)))
    assert set(batch) == {"id", "rgb", "audio", "labels"}
    assert batch["rgb"].shape == (5, 1024) and batch["audio"].shape == (5, 128)
    first = next(reader.read_shard(shards[0]))
    np.testing.assert_array_equal(batch["rgb"][0].numpy(), first.rgb)


def test_rank_comes_from_the_environment(synth_dir, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    dataset = YT8MIterable(_shards(synth_dir), LoaderOptions())
    assert (dataset.rank, dataset.world_size) == (1, 3)
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError, match="rank 3 is outside world size 3"):
        YT8MIterable(_shards(synth_dir), LoaderOptions())


@pytest.mark.parametrize("kwargs, message", [
    ({"max_frames": 0}, "max_frames=0: must be in \\[1, 300\\]"),
    ({"stride": 0}, "stride=0"),
    ({"level": "video", "min_frames": 100}, "video-level records carry no frame count"),
    ({"level": "clip"}, "level='clip'"),
])
def test_options_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        batching.LoaderOptions(**kwargs)
