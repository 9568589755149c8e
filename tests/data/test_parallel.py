"""Reader processes for the Keras feed (data/parallel.py): the stream's batches, bit for bit, from processes."""

import glob
import os
import signal

import pytest

from ytlabel.data import stream
from ytlabel.data.examples import InputOptions
from ytlabel.data.parallel import ReaderPool, slot_bytes
from ytlabel.errors import DataError, SchemaError


def _plan(synth_dir, level, options, batch_size, **kwargs) -> stream.StreamPlan:
    shards = sorted(glob.glob(os.path.join(synth_dir, level, "*.tfrecord")))
    return stream.StreamPlan(tuple(shards), tuple(stream.count_records(shards)), options, batch_size, **kwargs)


def _same(got: list[dict], expected: list[dict]) -> None:
    assert [batch["id"] for batch in got] == [batch["id"] for batch in expected]
    for ours, theirs in zip(got, expected):
        assert sorted(ours) == sorted(theirs)
        for key in set(theirs) - {"id"}:
            assert ours[key].dtype == theirs[key].dtype and ours[key].tobytes() == theirs[key].tobytes(), key


@pytest.mark.parametrize(
    ("level", "options"),
    [
        ("frame", InputOptions(max_frames=7, stride=2, l2_normalize=True)),
        ("video", InputOptions(level="video")),
    ],
)
def test_the_pool_yields_the_streams_batches_epoch_after_epoch(synth_dir, level, options):
    """2 readers over 3 epochs from epoch 1 on (a resumed run): each epoch is `rank_batches`' in order and
    bit for bit, though the slots the batches came through are reused every other batch."""
    plan = _plan(synth_dir, level, options, 3, readers=2, shuffle_buffer=4, seed=5)
    with ReaderPool(plan, start_epoch=1) as pool:
        for epoch in (1, 2, 3):
            _same(list(pool.batches(epoch)), list(stream.rank_batches(plan, epoch)))
        with pytest.raises(ValueError, match="readers are at epoch 4"):
            next(pool.batches(2))


def test_an_epoch_cut_short_moves_the_readers_on(synth_dir):
    """max_steps stops each epoch after 2 of 8 batches; the next epoch still starts at its own first batch."""
    plan = _plan(synth_dir, "video", InputOptions(level="video"), 3, readers=1, shuffle_buffer=0, max_steps=2)
    with ReaderPool(plan) as pool:
        for epoch in range(3):
            got = list(pool.batches(epoch))
            assert len(got) == 2
            _same(got, list(stream.rank_batches(plan, epoch)))


def test_the_slot_holds_the_largest_packed_batch():
    frame = stream.StreamPlan(("a",), (10,), InputOptions(max_frames=30), batch_size=4)
    assert slot_bytes(frame) == 4 * 30 * 1152  # uint8 codes
    video = stream.StreamPlan(("a",), (10,), InputOptions(level="video"), batch_size=4)
    assert slot_bytes(video) == 4 * 1152 * 4  # float32 means


def test_a_readers_error_arrives_as_itself_and_close_stops_every_process(synth_dir):
    frame_shard = min(glob.glob(os.path.join(synth_dir, "frame", "*.tfrecord")))
    plan = stream.StreamPlan((frame_shard,), (8,), InputOptions(level="video"), batch_size=2, shuffle_buffer=0)
    pool = ReaderPool(plan)
    with pytest.raises(SchemaError) as caught:
        next(pool.batches(0))
    assert (caught.value.source, caught.value.offset) == (frame_shard, 0)
    pool.close()
    assert all(reader.process.exitcode is not None for reader in pool._readers)


def test_a_reader_that_dies_is_named_instead_of_waited_for(synth_dir):
    plan = _plan(synth_dir, "frame", InputOptions(max_frames=5), 2, readers=2)
    with ReaderPool(plan) as pool:
        victim = pool._readers[1].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=10)
        with pytest.raises(DataError, match=r"the data reader ytlabel-reader-1 stopped \(exit code -9\)"):
            list(pool.batches(0))


def test_the_keras_feed_with_reader_processes_gives_the_same_batches(synth_dir):
    """Feed(workers=2) against Feed(workers=0) over two epochs from epoch 1, through the read-ahead thread."""
    import itertools

    from ytlabel.training.keras_feed import Feed

    plan = _plan(synth_dir, "frame", InputOptions(max_frames=6), 2, readers=2, shuffle_buffer=3)
    count = 2 * plan.steps_per_epoch
    inline = list(itertools.islice(Feed(plan, 1, read_ahead=0).batches(), count))
    feed = Feed(plan, 1, read_ahead=2, workers=2)
    source = feed()
    parallel = list(itertools.islice(source, count))
    source.close()  # what tf.data does when fit is done: the readers stop with the generator
    for (inputs, labels), (theirs, their_labels) in zip(parallel, inline):
        assert labels.tobytes() == their_labels.tobytes()
        assert {key: value.tobytes() for key, value in inputs.items()} == {
            key: value.tobytes() for key, value in theirs.items()
        }


@pytest.mark.parametrize("kind", ["pool", "dataloader"])
def test_readers_of_a_killed_trainer_end_with_it(synth_dir, kind):
    """SIGKILL leaves the trainer no chance to stop its readers: each notices its parent is gone and exits."""
    import subprocess
    import sys
    import time

    script = f"""
import os, signal, sys
from ytlabel.data import stream
from ytlabel.data.examples import InputOptions
import glob
shards = sorted(glob.glob({os.path.join(synth_dir, "frame", "*.tfrecord")!r}))
plan = stream.StreamPlan(tuple(shards), tuple(stream.count_records(shards)), InputOptions(max_frames=5), 2, readers=2)
if {kind!r} == "pool":
    from ytlabel.data.parallel import ReaderPool
    pool = ReaderPool(plan)
    next(pool.batches(0))
    pids = [reader.process.pid for reader in pool._readers]
else:
    from ytlabel.training.torch_feed import data_loader
    loader = data_loader(plan, 2, packed=True)
    iterator = iter(loader.loader)
    next(iterator)
    pids = [worker.pid for worker in iterator._workers]
print(*pids, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    pids = [int(pid) for pid in done.stdout.split()]
    assert done.returncode == -9 and len(pids) == 2, done.stderr[-2000:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in pids):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
