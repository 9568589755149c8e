"""The training data stream both frameworks consume, so that they see the same batches in the same order.

For each epoch and rank:
  * the rank's records are fixed (`partition.assign` over the sorted shards, the same every epoch,
    so every rank's count is known and all ranks can run the same number of steps);
  * each of the rank's loader readers (PyTorch DataLoader workers; one reader without workers)
    visits its shards in an order permuted by (seed, epoch, reader) and mixes records through a
    seeded shuffle buffer;
  * readers produce whole batches, and the rank's batches take turns across readers — exactly how a
    PyTorch DataLoader interleaves its workers' batches, and how the Keras generator replays them;
  * every rank stops after `steps_per_epoch`, the same for all ranks (DDP and MultiWorker need it).
"""

import dataclasses
from collections.abc import Iterator

import numpy as np

from ytlabel.data import examples, partition, tfrecord
from ytlabel.data.examples import InputOptions
from ytlabel.data.reader import read_shard
from ytlabel.data.sources import open_shard
from ytlabel.data.tfrecord import CorruptionReport
from ytlabel.errors import DataError


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """Everything that decides the batch sequence of one rank.

    Attributes:
        shards: sorted shard URIs.
        counts: records per shard (from `count_records`), used to size epochs.
        options: loader options shared with evaluation.
        batch_size: examples per batch, per rank.
        seed: data order seed.
        rank, world_size: this process's place.
        readers: loader readers per rank (DataLoader workers, at least 1).
        shuffle_buffer: records mixed within a reader; 0 keeps shard order.
        max_steps: cap on steps per epoch (0: none).
        skip_corrupt: count corrupt records instead of raising.
    """

    shards: tuple[str, ...]
    counts: tuple[int, ...]
    options: InputOptions
    batch_size: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    readers: int = 1
    shuffle_buffer: int = 256
    max_steps: int = 0
    skip_corrupt: bool = False

    def reader_count(self, reader: int) -> int:
        """Records that global reader `reader` holds (before min_frames filtering)."""
        total = 0
        for part in partition.assign(len(self.shards), reader, self.world_size * self.readers):
            records = self.counts[part.shard]
            total += len(range(part.offset, records, part.stride))
        return total

    @property
    def steps_per_epoch(self) -> int:
        """Full batches every rank can serve, the minimum over ranks (capped by max_steps)."""
        per_rank = [
            sum(self.reader_count(rank * self.readers + r) // self.batch_size for r in range(self.readers))
            for rank in range(self.world_size)
        ]
        steps = min(per_rank)
        return min(steps, self.max_steps) if self.max_steps else steps


def count_records(shards: list[str]) -> list[int]:
    """Records per shard, counted from the framing alone (payloads are stepped over, not decoded)."""
    counts = []
    for shard in shards:
        with open_shard(shard) as stream:
            counts.append(tfrecord.count_records(stream, source=shard))
    return counts


def reader_records(plan: StreamPlan, reader: int, epoch: int, report: CorruptionReport | None = None) -> Iterator:
    """The records of global reader `reader` for `epoch`, in order (those `min_frames` drops left out).

    The shuffle buffer holds records as read (frames still quantized: 4x less memory than floats).
    """
    parts = partition.assign(len(plan.shards), reader, plan.world_size * plan.readers)
    rng = np.random.default_rng([plan.seed, epoch, reader])
    parts = [parts[i] for i in rng.permutation(len(parts))]
    buffer: list = []
    for part in parts:
        for record in read_shard(
            plan.shards[part.shard],
            plan.options.level,
            skip_corrupt=plan.skip_corrupt,
            report=report,
            keep=(part.stride, part.offset),
        ):
            if not examples.kept(record, plan.options):
                continue
            if plan.shuffle_buffer <= 0:
                yield record
                continue
            if len(buffer) < plan.shuffle_buffer:
                buffer.append(record)
                continue
            slot = int(rng.integers(len(buffer)))
            buffer[slot], record = record, buffer[slot]
            yield record
    while buffer:
        yield buffer.pop(int(rng.integers(len(buffer))))


def reader_batches(plan: StreamPlan, reader: int, epoch: int, packed: bool = False) -> Iterator[dict]:
    """Full batches from one reader: stacked numpy arrays plus "id" as a list; with `packed`, as
    `examples.pack_batch` packs them to cross a process boundary (`examples.unpack_batch` restores them)."""
    pending: list = []
    for record in reader_records(plan, reader, epoch):
        pending.append(record)
        if len(pending) == plan.batch_size:
            ids = [record.id for record in pending]
            yield (
                {**examples.pack_batch(pending, plan.options), "id": ids} if packed else batch_of(pending, plan.options)
            )
            pending = []


def batch_of(records: list, options: InputOptions) -> dict:
    """Model inputs and labels of `records` (`examples.prepare_batch`), and their ids as "id"."""
    return {**examples.prepare_batch(records, options), "id": [record.id for record in records]}


def rank_batches(plan: StreamPlan, epoch: int) -> Iterator[dict]:
    """The rank's batches for `epoch`: readers take turns, as DataLoader workers do; stops at steps_per_epoch."""
    streams = [reader_batches(plan, plan.rank * plan.readers + r, epoch) for r in range(plan.readers)]
    steps = plan.steps_per_epoch
    produced = 0
    while streams and produced < steps:
        for stream in list(streams):
            if produced == steps:
                return
            batch = next(stream, None)
            if batch is None:
                streams.remove(stream)
                continue
            yield batch
            produced += 1
    if produced < steps:
        raise short_epoch(plan, epoch, produced)


def short_epoch(plan: StreamPlan, epoch: int, produced: int) -> DataError:
    """The epoch ran out of batches before steps_per_epoch: min_frames dropped records the count included.

    Both frameworks must take the same steps (and every DDP rank the same number), so this is an error,
    not a shorter epoch.
    """
    return DataError(
        f"epoch {epoch}: the data gave {produced} of {plan.steps_per_epoch} batches; min_frames="
        f"{plan.options.min_frames} dropped videos that the step count includes. Lower min_frames (0 keeps "
        f"every video) or set max_steps_per_epoch={produced} or less",
        source=plan.shards[0] if len(plan.shards) == 1 else f"{len(plan.shards)} shards",
    )
