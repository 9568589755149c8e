"""How our batch stream reaches the PyTorch loop: an IterableDataset in a DataLoader.

The batches are `ytlabel.data.stream`'s, the ones Keras `fit` consumes through keras_feed.py: each
DataLoader worker is one of the stream's readers, and the DataLoader takes their batches in turn,
exactly as `stream.rank_batches` orders them.

With workers, a batch crosses from the worker as `examples.pack_batch` packs it (uint8 frame codes and label
ids: 4x smaller frames, a few ids instead of a 3,862-wide row per video), and `batches` unpacks it in the
training process, bit for bit the arrays a worker would have built. The workers live across epochs
(`persistent_workers`): each counts its own passes, so the epoch it reads follows from the first one.
"""

import functools
import os
from collections.abc import Iterable, Iterator

import torch

from ytlabel.data import examples, schema, stream
from ytlabel.data.examples import InputOptions
from ytlabel.data.records import VIDEO
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import YtlabelError
from ytlabel.processes import exit_with_parent

# A packed batch smaller than this crosses from a worker as numpy arrays pickled through its pipe (a video-level
# batch: ~150 KB); a larger one as tensors in shared memory (a frame-level batch: ~5 MB of uint8 codes). Either
# way is slower for the other size: a new shared-memory segment per tensor costs more than copying 150 KB,
# and pickling 5 MB through a pipe more than mapping it (docs/benchmarks.md, input path).
PIPE_BYTES = 1 << 20
FAILED = "failed"  # the key of the one item a worker sends when its reading fails


class EpochBatches(torch.utils.data.IterableDataset):
    """One reader's batches of `ytlabel.data.stream` (one reader per DataLoader worker). `epoch` is the epoch
    the next pass reads; each pass moves it on by one, in this process or in a worker's copy. Ids are dropped
    unless `keep_ids` (training needs tensors only); `packed` batches are `examples.pack_batch`'s."""

    def __init__(self, plan: stream.StreamPlan, keep_ids: bool = False, packed: bool = False):
        super().__init__()
        self.plan, self.epoch, self.keep_ids, self.packed = plan, 0, keep_ids, packed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        reader = self.plan.rank * self.plan.readers + (info.id if info else 0)
        epoch, self.epoch = self.epoch, self.epoch + 1
        try:
            yield from self._batches(reader, epoch)
        except YtlabelError as error:
            if info is None:
                raise
            # In a worker: the DataLoader would re-raise it as its own text with the worker's traceback in
            # it; sent as a value, the error arrives as itself (its file and byte offset), see `Loader`.
            yield {FAILED: error}

    def _batches(self, reader: int, epoch: int):
        for batch in stream.reader_batches(self.plan, reader, epoch, packed=self.packed):
            ids = batch.pop("id")
            if self.packed and sum(value.nbytes for value in batch.values()) < PIPE_BYTES:
                yield {**batch, "id": ids} if self.keep_ids else batch  # numpy: pickled through the pipe
                continue
            tensors = {key: torch.from_numpy(value) for key, value in batch.items()}  # shared memory
            yield {**tensors, "id": ids} if self.keep_ids else tensors


def data_loader(
    plan: stream.StreamPlan,
    workers: int = 0,
    pin_memory: bool = False,
    keep_ids: bool = False,
    packed: bool = False,
    start_epoch: int = 0,
):
    """A DataLoader over the plan with `workers` processes (0: read in this process) that live across epochs;
    the plan's `readers` must be max(1, workers), as `training.inputs.make_plan` sets it. Iterate it once per
    epoch, from `start_epoch` on. `packed`: batches as `examples.pack_batch` packs them (see `batches`)."""
    dataset = EpochBatches(plan, keep_ids, packed)
    dataset.epoch = start_epoch
    return Loader(
        torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            pin_memory=pin_memory,
            persistent_workers=workers > 0,
            collate_fn=_as_is if packed else None,
            generator=torch.Generator().manual_seed(plan.seed),
            worker_init_fn=functools.partial(_worker_started, os.getpid()) if workers else None,
        )
    )


class Loader:
    """A DataLoader's epochs, with a worker's error raised as the error it was (`EpochBatches` sends it).

    The loader has a generator of its own: it draws a seed for its workers from it on every new iterator, and
    with persistent workers only the first epoch makes one, so from the global generator a resumed run's
    dropout would differ from an uninterrupted one's. Our readers are seeded by the plan, not by torch.
    """

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader = loader

    def __iter__(self):
        for batch in self.loader:
            if FAILED in batch:
                raise batch[FAILED]
            yield batch


def _worker_started(trainer: int, _worker_id: int) -> None:
    # A worker of a killed trainer can wait forever on its pipes (it holds both ends): it ends with its parent.
    exit_with_parent(trainer)


def _as_is(batch):
    """Packed batches cross as `EpochBatches` yields them (numpy arrays or tensors, see PIPE_BYTES)."""
    return batch


def batches(packed: Iterable[dict], options: InputOptions, device: torch.device | None = None) -> Iterator[dict]:
    """Unpacks a packed loader's batches into the model's tensors: on a GPU `device` there (`unpack_on`: the
    uint8 codes and label ids cross the bus, 4x and ~100x less than floats), else on the CPU with
    `examples.unpack_batch` (the arrays a worker would have built, bit for bit)."""
    on_gpu = device is not None and device.type == "cuda"
    for batch in packed:
        ids = batch.pop("id", None)
        if on_gpu:
            tensors = unpack_on(batch, options, device)
        else:
            arrays = examples.unpack_batch(
                {key: value.numpy() if isinstance(value, torch.Tensor) else value for key, value in batch.items()},
                options,
            )
            tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
        yield tensors if ids is None else {**tensors, "id": ids}


def unpack_on(packed: dict, options: InputOptions, device: torch.device) -> dict[str, torch.Tensor]:
    """`examples.unpack_batch` in torch on `device`: the packed arrays are copied there (from pinned memory,
    without blocking, on a GPU) and expanded there. Dequantization and labels are bit-identical to the numpy
    path; the l2 norm sums in another order, so it agrees to float32 rounding (tests/training/test_feeds.py)."""
    cuda = device.type == "cuda"
    moved = {}
    for key, value in packed.items():
        tensor = torch.as_tensor(value)
        moved[key] = (tensor.pin_memory() if cuda else tensor).to(device, non_blocking=cuda)
    counts = moved["label_counts"]
    ids = moved["label_ids"]
    # With its size given, repeat_interleave need not wait for the GPU to learn how long its output is.
    rows = torch.repeat_interleave(torch.arange(len(counts), device=device), counts, output_size=len(ids))
    if options.target == examples.CLASSES:
        labels = torch.zeros((len(counts), schema.NUM_CLASSES), dtype=torch.float32, device=device)
    else:
        vocabulary = load_vocabulary()
        labels = torch.zeros((len(counts), len(vocabulary.genres)), dtype=torch.float32, device=device)
        ids = torch.as_tensor(vocabulary.genre_ids, device=device).long()[ids]
    labels[rows, ids] = 1.0
    if options.level == VIDEO:
        out = {"rgb": moved["rgb"], "audio": moved["audio"]}
    else:
        frames = moved["num_frames"]
        padding = torch.arange(options.max_frames, device=device)[None, :] >= frames[:, None]
        out = {}
        for key in ("rgb", "audio"):
            values = moved[f"{key}_codes"].to(torch.float32) * float(schema.DEQUANT_SCALE)
            values += float(schema.DEQUANT_BIAS)
            values[padding] = 0.0
            out[key] = values
    if options.l2_normalize:
        squared = out["rgb"].square().sum(-1, keepdim=True) + out["audio"].square().sum(-1, keepdim=True)
        inverse = 1.0 / torch.sqrt(torch.clamp(squared, min=examples.EPSILON))
        out = {key: value * inverse for key, value in out.items()}
    if options.level != VIDEO:
        out["num_frames"] = moved["num_frames"]
    return {**out, "labels": labels}
