"""The one input pipeline: `data.stream` gives every record exactly once, follows the shared rules,
agrees with TensorFlow's own parser, and both framework feeds pass its batches through unchanged."""

import collections
import glob
import os

import numpy as np
import pytest
import torch

from ytlabel.data import examples, reader, schema, stream
from ytlabel.data.examples import InputOptions
from ytlabel.errors import SchemaError
from ytlabel.training.torch_feed import data_loader


def _shards(synth_dir, level="frame"):
    return sorted(glob.glob(os.path.join(synth_dir, level, "*.tfrecord")))


def _plan(shards, options, batch_size, **kwargs) -> stream.StreamPlan:
    return stream.StreamPlan(tuple(shards), tuple(stream.count_records(shards)), options, batch_size, **kwargs)


def _examples(plan: stream.StreamPlan) -> list[dict]:
    """Reader 0's records prepared as one batch (the training path), split back into per-video dicts."""
    batch = stream.batch_of(list(stream.reader_records(plan, reader=0, epoch=0)), plan.options)
    return [
        {"id": video, **{key: value[row] for key, value in batch.items() if key != "id"}}
        for row, video in enumerate(batch["id"])
    ]


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("readers", [1, 2])
@pytest.mark.parametrize("shard_count", [2, 3])
def test_every_record_read_once_across_ranks_and_readers(synth_dir, world_size, readers, shard_count):
    shards = _shards(synth_dir)[:shard_count]
    expected = [r.id for shard in shards for r in reader.read_shard(shard)]
    plan = _plan(shards, InputOptions(max_frames=4), 3, world_size=world_size, readers=readers, shuffle_buffer=4)
    seen = collections.Counter(
        record.id
        for global_reader in range(world_size * readers)
        for record in stream.reader_records(plan, global_reader, epoch=1)
    )
    assert sorted(seen) == sorted(expected) and set(seen.values()) == {1}


@pytest.mark.parametrize("workers", [0, 2])
def test_the_torch_dataloader_yields_the_streams_batches_in_order(synth_dir, workers):
    plan = _plan(_shards(synth_dir), InputOptions(max_frames=5), 2, readers=max(1, workers), shuffle_buffer=3)
    expected = list(stream.rank_batches(plan, epoch=0))
    got = list(data_loader(plan, workers, keep_ids=True))[: plan.steps_per_epoch]
    assert [batch["id"] for batch in got] == [batch["id"] for batch in expected]
    for ours, theirs in zip(got, expected):
        for key in set(theirs) - {"id"}:
            np.testing.assert_array_equal(ours[key].numpy(), theirs[key], err_msg=key)


@pytest.mark.parametrize("workers", [0, 2])
def test_packed_batches_from_workers_that_live_across_epochs_are_the_streams(synth_dir, workers):
    """What the training loop consumes (packed in the workers, unpacked by `batches`) over three epochs from
    epoch 1 on: each epoch's batches are `rank_batches`' for that epoch, in order and bit for bit."""
    from ytlabel.training.torch_feed import batches

    options = InputOptions(max_frames=5, l2_normalize=True)
    plan = _plan(_shards(synth_dir), options, 2, readers=max(1, workers), shuffle_buffer=3)
    loader = data_loader(plan, workers, keep_ids=True, packed=True, start_epoch=1)
    for epoch in (1, 2, 3):
        expected = list(stream.rank_batches(plan, epoch=epoch))
        consumed = batches(loader, options)
        got = [next(consumed) for _ in range(plan.steps_per_epoch)]  # the loop stops at steps_per_epoch
        assert [batch["id"] for batch in got] == [batch["id"] for batch in expected], epoch
        for ours, theirs in zip(got, expected):
            for key in set(theirs) - {"id"}:
                assert ours[key].numpy().tobytes() == theirs[key].tobytes(), (epoch, key)
    if workers:
        assert loader.loader._iterator is not None and loader.loader.persistent_workers  # the same workers throughout


@pytest.mark.parametrize("workers", [0, 1])
def test_a_readers_error_reaches_the_trainer_as_itself(synth_dir, workers):
    """A frame-level shard read at video level: from a worker process too, the SchemaError names the shard and
    the record's byte offset (the DataLoader would re-raise its own text with the worker's traceback)."""
    frame_shard = _shards(synth_dir)[0]
    plan = _plan([frame_shard], InputOptions(level="video"), 2, shuffle_buffer=0)
    with pytest.raises(SchemaError) as caught:
        next(iter(data_loader(plan, workers, packed=True)))
    assert caught.value.source == frame_shard and caught.value.offset == 0
    assert str(caught.value).startswith(f"{frame_shard} at byte offset 0: missing feature 'mean_rgb'")


def test_values_follow_the_shared_rules(synth_dir):
    shard = _shards(synth_dir)[0]
    records = list(reader.read_shard(shard))
    options = InputOptions(max_frames=6, stride=2)
    batch = next(iter(data_loader(_plan([shard], options, len(records), shuffle_buffer=0))))
    assert batch["rgb"].shape == (len(records), 6, 1024) and batch["rgb"].dtype == torch.float32
    first = records[0]
    count = min(6, (first.num_frames + 1) // 2)
    assert batch["num_frames"][0].item() == count
    np.testing.assert_array_equal(batch["rgb"][0, :count].numpy(), schema.dequantize(first.rgb[::2][:count]))
    assert batch["labels"][0].sum().item() == len(first.labels)
    assert batch["labels"][0, first.labels].min().item() == 1.0


def test_padding_rows_are_zero_and_l2_rows_have_unit_norm(synth_dir):
    shard = _shards(synth_dir)[0]
    batch = next(iter(data_loader(_plan([shard], InputOptions(max_frames=30, l2_normalize=True), 4))))
    for i in range(4):
        n = batch["num_frames"][i].item()
        assert n < 30 and batch["rgb"][i, n:].abs().sum().item() == 0.0
        joint = torch.cat([batch["rgb"][i, :n], batch["audio"][i, :n]], dim=-1)
        np.testing.assert_allclose(joint.norm(dim=-1).numpy(), np.ones(n), atol=1e-5)


def test_min_frames_drops_short_videos(synth_dir):
    shards = _shards(synth_dir)
    lengths = [r.num_frames for shard in shards for r in reader.read_shard(shard)]
    plan = _plan(shards, InputOptions(max_frames=20, min_frames=16), 1, shuffle_buffer=0)
    kept = list(stream.reader_records(plan, reader=0, epoch=0))
    assert len(kept) == sum(n >= 16 for n in lengths) and sum(n < 16 for n in lengths) > 0


def test_video_level(synth_dir):
    shards = _shards(synth_dir, "video")
    batch = next(iter(data_loader(_plan(shards, InputOptions(level="video"), 5, shuffle_buffer=0), keep_ids=True)))
    assert set(batch) == {"id", "rgb", "audio", "labels"}
    assert batch["rgb"].shape == (5, 1024) and batch["audio"].shape == (5, 128)
    first = {r.id: r for shard in shards for r in reader.read_shard(shard)}[batch["id"][0]]
    np.testing.assert_array_equal(batch["rgb"][0].numpy(), first.rgb)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_frames": 0}, "max_frames=0: must be in \\[1, 300\\]"),
        ({"stride": 0}, "stride=0"),
        ({"level": "video", "min_frames": 100}, "video-level records carry no frame count"),
        ({"level": "clip"}, "level='clip'"),
    ],
)
def test_options_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        examples.InputOptions(**kwargs)


@pytest.mark.parametrize(
    "options",
    [
        InputOptions(level="frame", max_frames=8, stride=2),
        InputOptions(level="frame", max_frames=30, min_frames=15),
        InputOptions(level="video"),
    ],
)
def test_same_examples_as_tensorflows_own_parser(synth_dir, options):
    from tests.helpers.tf_reference import tf_examples

    shards = _shards(synth_dir, options.level)
    ours = _examples(_plan(shards, options, 1, shuffle_buffer=0))
    theirs = {e["id"]: e for e in tf_examples(shards, options)}  # the stream visits shards in a seeded order
    assert sorted(e["id"] for e in ours) == sorted(theirs) and len(ours) > 0
    theirs = [theirs[e["id"]] for e in ours]
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        for key in set(a) - {"id"}:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_l2_normalisation_agrees_with_tensorflow_to_float_rounding(synth_dir):
    from tests.helpers.tf_reference import tf_examples

    options = InputOptions(level="frame", max_frames=20, l2_normalize=True)
    shards = _shards(synth_dir, "frame")[:1]
    ours = _examples(_plan(shards, options, 1, shuffle_buffer=0))
    theirs = {e["id"]: e for e in tf_examples(shards, options)}
    assert len(ours) == len(theirs) > 0
    for a, b in ((a, theirs[a["id"]]) for a in ours):
        np.testing.assert_allclose(a["rgb"], b["rgb"], atol=2e-7)
        np.testing.assert_allclose(a["audio"], b["audio"], atol=2e-7)


@pytest.mark.parametrize(
    "options",
    [
        InputOptions(level="frame", max_frames=8, stride=2),
        InputOptions(level="frame", max_frames=300, l2_normalize=True),
        InputOptions(level="frame", max_frames=12, stride=3, l2_normalize=True, target="genres"),
        InputOptions(level="video"),
        InputOptions(level="video", l2_normalize=True, target="genres"),
    ],
)
def test_batches_are_the_per_video_rules_stacked_through_the_packed_form(synth_dir, options):
    """`prepare_batch` (packed as a batch crosses a process boundary, then unpacked) gives exactly `prepare`
    of each video, stacked, bit for bit; the packed form holds uint8 codes and label ids."""
    records = [r for shard in _shards(synth_dir, options.level)[:2] for r in reader.read_shard(shard)]
    packed = examples.pack_batch(records, options)
    batch = examples.unpack_batch(packed, options)
    one_by_one = [examples.prepare(record, options) for record in records]
    assert set(batch) == set(one_by_one[0])
    for key in batch:
        stacked = np.stack([example[key] for example in one_by_one])
        assert batch[key].dtype == stacked.dtype and batch[key].tobytes() == stacked.tobytes(), key
    assert batch["labels"].shape == (len(records), 3862 if options.target == "classes" else 25)
    assert batch["labels"].sum() == sum(example["labels"].sum() for example in one_by_one) > len(records) - 1
    labels = sum(len(record.labels) for record in records)
    assert packed["label_ids"].shape == (labels,) and packed["label_counts"].sum() == labels
    if options.level == "frame":  # 4x smaller frames than the floats they become
        assert packed["rgb_codes"].dtype == np.uint8 and packed["rgb_codes"].nbytes * 4 == batch["rgb"].nbytes


@pytest.mark.parametrize("level", ["video", "frame"])
@pytest.mark.parametrize("target", ["classes", "genres"])
def test_the_gpu_side_unpack_equals_the_numpy_one(synth_dir, level, target):
    """`torch_feed.unpack_on` (what a GPU run expands on the device), run here on the CPU: dequantization,
    padding and labels bit for bit as `examples.unpack_batch`; with l2_normalize to float32 rounding."""
    from ytlabel.training.torch_feed import unpack_on

    records = list(reader.read_shard(_shards(synth_dir, level)[0], level))[:6]
    for l2 in (False, True):
        options = InputOptions(level=level, max_frames=40, stride=2, l2_normalize=l2, target=target)
        packed = examples.pack_batch(records, options)
        expected = examples.unpack_batch(packed, options)
        got = unpack_on(packed, options, torch.device("cpu"))
        assert sorted(got) == sorted(expected)
        for key, value in expected.items():
            assert got[key].dtype == torch.from_numpy(value).dtype, key
            if l2 and key in ("rgb", "audio"):
                np.testing.assert_allclose(got[key].numpy(), value, rtol=2e-6, atol=1e-7)
            else:
                assert got[key].numpy().tobytes() == value.tobytes(), (key, l2)
        assert int(got["labels"].sum()) == sum(len(set(_genres(r.labels, target))) for r in records)


def _genres(labels, target):
    from ytlabel.data.vocabulary import load_vocabulary

    return labels if target == "classes" else load_vocabulary().genre_ids[labels]
