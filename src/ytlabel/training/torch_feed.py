"""How our batch stream reaches the PyTorch loop: an IterableDataset in a DataLoader.

The batches are `ytlabel.data.stream`'s, the ones Keras `fit` consumes through keras_feed.py: each
DataLoader worker is one of the stream's readers, and the DataLoader takes their batches in turn,
exactly as `stream.rank_batches` orders them.
"""

import torch

from ytlabel.data import stream


class EpochBatches(torch.utils.data.IterableDataset):
    """One reader's batches of `ytlabel.data.stream` (one reader per DataLoader worker); set `epoch`
    before iterating. Ids are dropped unless `keep_ids` (training needs tensors only)."""

    def __init__(self, plan: stream.StreamPlan, keep_ids: bool = False):
        super().__init__()
        self.plan, self.epoch, self.keep_ids = plan, 0, keep_ids

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        reader = self.plan.rank * self.plan.readers + (info.id if info else 0)
        for batch in stream.reader_batches(self.plan, reader, self.epoch):
            ids = batch.pop("id")
            tensors = {key: torch.from_numpy(value) for key, value in batch.items()}
            yield {**tensors, "id": ids} if self.keep_ids else tensors


def data_loader(plan: stream.StreamPlan, workers: int = 0, pin_memory: bool = False, keep_ids: bool = False):
    """A DataLoader over the plan with `workers` processes (0: read in this process); the plan's
    `readers` must be max(1, workers), as `training.inputs.make_plan` sets it."""
    return torch.utils.data.DataLoader(EpochBatches(plan, keep_ids), batch_size=None, num_workers=workers,
                                       pin_memory=pin_memory)
