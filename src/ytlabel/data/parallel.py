"""The stream's readers in processes of their own, for a trainer without a DataLoader (the Keras feed).

`ReaderPool(plan, start_epoch).batches(epoch)` yields exactly `stream.rank_batches(plan, epoch)`, bit for bit
and in the same order, with each of the rank's readers in a process that lives across epochs (started
with `spawn`: a child forked from a process running TensorFlow's threads is not safe).

What crosses: a reader packs each batch (`examples.pack_batch`: uint8 frame codes, label ids) into one of
its `slots`, shared memory made once when the pool starts and reused, and sends only the slot's number,
the arrays' layout and the small arrays (ids, label ids, frame counts) through a queue. This process
unpacks the batch straight from the slot and hands the slot back. An epoch that stops early (at
`steps_per_epoch`) tells the readers to move on, so they do not read the rest of it.
"""

import itertools
import multiprocessing
import os
import queue
from collections.abc import Iterator
from typing import Self

import numpy as np

from ytlabel.data import examples, schema, stream
from ytlabel.errors import DataError, YtlabelError
from ytlabel.processes import exit_with_parent

_BATCH, _END, _FAILED = "batch", "end", "failed"
_LARGE = ("rgb", "audio", "rgb_codes", "audio_codes")  # the arrays that go through the slots
_POLL_S = 1.0  # how often a wait for a reader checks that the reader is still alive


def slot_bytes(plan: stream.StreamPlan) -> int:
    """The largest packed batch of the plan: float32 means (video) or uint8 codes (frame) of a full batch."""
    features = schema.RGB_DIM + schema.AUDIO_DIM
    if plan.options.level == examples.VIDEO:
        return plan.batch_size * features * 4
    return plan.batch_size * plan.options.max_frames * features


class ReaderPool:
    """The rank's `plan.readers` readers, each in its own process, from `start_epoch` on. Close it (or use
    `with`) to stop them; `batches` must be iterated epoch after epoch, each to its end."""

    def __init__(self, plan: stream.StreamPlan, start_epoch: int = 0, slots: int = 2):
        context = multiprocessing.get_context("spawn")
        self.plan, self.next_epoch = plan, start_epoch
        size = slot_bytes(plan)
        self._readers = []
        for index in range(plan.readers):
            buffers = [context.RawArray("B", size) for _ in range(slots)]
            free, out = context.Queue(), context.Queue()
            for slot in range(slots):
                free.put(slot)
            skip_to = context.RawValue("q", start_epoch)  # epochs before this one are done: stop reading them
            process = context.Process(
                target=_read,
                name=f"ytlabel-reader-{index}",
                daemon=True,
                args=(plan, plan.rank * plan.readers + index, start_epoch, buffers, free, out, skip_to, os.getpid()),
            )
            self._readers.append(
                _Reader(process, [np.frombuffer(buffer, np.uint8) for buffer in buffers], free, out, skip_to)
            )
        for reader in self._readers:
            reader.process.start()

    def batches(self, epoch: int) -> Iterator[dict]:
        """`stream.rank_batches(plan, epoch)`: the readers take turns and the epoch stops at steps_per_epoch."""
        if epoch != self.next_epoch:
            raise ValueError(f"epoch {epoch}: the readers are at epoch {self.next_epoch}")
        steps, produced = self.plan.steps_per_epoch, 0
        active = list(self._readers)
        while active and produced < steps:
            for reader in list(active):
                if produced == steps:
                    break
                message = reader.receive()
                if message[0] == _END:
                    active.remove(reader)
                    continue
                yield reader.unpack(message, self.plan.options)
                produced += 1
        for reader in self._readers:
            reader.skip_to.value = epoch + 1
        for reader in active:  # readers still in this epoch: let them finish it, handing their slots back
            while (message := reader.receive())[0] != _END:
                reader.free.put(message[2])
        self.next_epoch = epoch + 1
        if produced < steps:
            raise stream.short_epoch(self.plan, epoch, produced)

    def close(self) -> None:
        for reader in self._readers:
            reader.process.terminate()
        for reader in self._readers:
            reader.process.join(timeout=5)
            reader.free.close()
            reader.out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Reader:
    """One reader process seen from the consumer: its slots, the queue of free slots, its messages."""

    def __init__(self, process, slots: list[np.ndarray], free, out, skip_to):
        self.process, self.slots, self.free, self.out, self.skip_to = process, slots, free, out, skip_to

    def receive(self) -> tuple:
        while True:
            try:
                message = self.out.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.process.is_alive():
                    raise DataError(
                        f"the data reader {self.process.name} stopped (exit code "
                        f"{self.process.exitcode}) without finishing its batches"
                    ) from None
                continue
            if message[0] == _FAILED:
                raise message[1]
            return message

    def unpack(self, message: tuple, options: examples.InputOptions) -> dict:
        """The batch as `stream.batch_of` builds it, unpacked from the slot, which is then free again."""
        _, _, slot, layout, small = message
        packed = dict(small)
        ids = packed.pop("id")
        for key, dtype, shape, offset in layout:
            count = int(np.prod(shape)) * np.dtype(dtype).itemsize
            packed[key] = self.slots[slot][offset : offset + count].view(dtype).reshape(shape)
        batch = examples.unpack_batch(packed, options)
        batch = {
            key: value.copy() if np.may_share_memory(value, self.slots[slot]) else value for key, value in batch.items()
        }
        self.free.put(slot)
        return {**batch, "id": ids}


def _read(plan, reader: int, start_epoch: int, buffers, free, out, skip_to, parent: int) -> None:
    """A reader process: packs its batches into free slots, epoch after epoch, until it is stopped."""
    exit_with_parent(parent)
    slots = [np.frombuffer(buffer, np.uint8) for buffer in buffers]
    try:
        for epoch in itertools.count(start_epoch):
            for batch in stream.reader_batches(plan, reader, epoch, packed=True):
                if skip_to.value > epoch:
                    break
                slot = free.get()
                layout, offset = [], 0
                for key in _LARGE:
                    if key in batch:
                        array = np.ascontiguousarray(batch.pop(key))
                        slots[slot][offset : offset + array.nbytes] = array.reshape(-1).view(np.uint8)
                        layout.append((key, array.dtype.str, array.shape, offset))
                        offset += array.nbytes
                out.put((_BATCH, epoch, slot, layout, batch))
            out.put((_END, epoch))
    except YtlabelError as error:  # sent as itself: its file and byte offset reach the trainer
        out.put((_FAILED, error))
