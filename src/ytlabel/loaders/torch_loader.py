"""PyTorch IterableDataset over YT8M shards, partitioned across DDP ranks and DataLoader workers."""

import logging
import os
from collections.abc import Iterator, Sequence

import torch
import torch.utils.data

from ytlabel.data import batching, partition
from ytlabel.data.batching import LoaderOptions
from ytlabel.data.reader import read_shard
from ytlabel.data.tfrecord import CorruptionReport
from ytlabel.errors import ConfigError

log = logging.getLogger(__name__)


class YT8MIterable(torch.utils.data.IterableDataset):
    """Streams prepared examples (see `ytlabel.data.batching.prepare`) as torch tensors.

    Every (rank, worker) pair reads a disjoint part of the data (`ytlabel.data.partition`), so a
    full pass over all ranks and workers yields each record exactly once. Dropped (min_frames) and
    skipped (corrupt) records are counted live in `dropped_short` / `corruption` when iterated in
    the main process, and logged by every process, workers included, at the end of its pass.

    Args:
        shards: shard URIs, e.g. from `ytlabel.data.sources.resolve_shards`.
        options: frames, stride, min_frames and normalisation, shared with the tf.data loader.
        rank, world_size: this process's place in DDP; default from torch.distributed when it is
            initialised, else from the RANK / WORLD_SIZE environment (PyTorchJob, torchrun).
        skip_corrupt: count corrupt records instead of raising.
    """

    def __init__(
        self,
        shards: Sequence[str],
        options: LoaderOptions,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        skip_corrupt: bool = False,
    ):
        super().__init__()
        self.shards = list(shards)
        self.options = options
        self.rank, self.world_size = _distributed_place(rank, world_size)
        self.skip_corrupt = skip_corrupt
        self.dropped_short = 0
        self.corruption = CorruptionReport()

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        reader = self.rank * workers + worker
        # In a worker process these counters belong to the worker's copy; the log line below reports them.
        dropped_before, skipped_before = self.dropped_short, self.corruption.skipped
        for part in partition.assign(len(self.shards), reader, self.world_size * workers):
            records = read_shard(
                self.shards[part.shard],
                self.options.level,
                skip_corrupt=self.skip_corrupt,
                report=self.corruption,
                keep=(part.stride, part.offset),
            )
            for record in records:
                example = batching.prepare(record, self.options)
                if example is None:
                    self.dropped_short += 1
                    continue
                tensors = {key: torch.as_tensor(value) for key, value in example.items()}
                tensors["id"] = record.id
                yield tensors
        dropped, skipped = self.dropped_short - dropped_before, self.corruption.skipped - skipped_before
        if dropped or skipped:
            log.warning(
                "rank %d worker %d: dropped %d videos shorter than min_frames=%d, skipped %d corrupt records",
                self.rank, worker, dropped, self.options.min_frames, skipped,
            )


def _distributed_place(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        place = (rank, world_size)
    elif torch.distributed.is_available() and torch.distributed.is_initialized():
        place = (torch.distributed.get_rank(), torch.distributed.get_world_size())
    else:
        place = (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
    if not 0 <= place[0] < place[1]:
        raise ConfigError(f"rank {place[0]} is outside world size {place[1]}")
    return place


def make_loader(
    shards: Sequence[str],
    options: LoaderOptions,
    batch_size: int,
    *,
    num_workers: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    skip_corrupt: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader of dict batches: rgb, audio, labels (float32), num_frames (int64), id (list)."""
    dataset = YT8MIterable(shards, options, rank=rank, world_size=world_size, skip_corrupt=skip_corrupt)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )
