"""Gathering concurrent requests into one forward pass.

One server process runs one event loop. Without batching, each request's forward runs on that loop,
one at a time, so eight clients get no more answers per second than one. Here a request's prepared
inputs join a queue; one forward at a time runs in a worker thread (the loop keeps accepting and
parsing requests meanwhile, since PyTorch and TensorFlow kernels release the GIL), and it takes every
request that arrived while the previous forward ran, up to `max_videos` videos. A lone request goes
straight through; with `max_wait_ms` > 0 the first request of a batch also waits that long for others.

Every call into the model (loading, the probe, warm-up, forwards) runs on that one worker thread:
PyTorch's OpenMP thread team belongs to the thread that calls it, and once a second thread had
called the model, both ran an LSTM forward several times slower (docs/serving.md has the figures).

Each request gets back exactly its own rows. If a merged forward fails, each of its requests is run
alone, so an error reaches only the request that causes it (the caller checks its own rows for
non-finite scores, as before).
"""

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

FRAME_KEYS = ("rgb", "audio")  # (videos, frames, dim) at frame level, padded to the longest request


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_videos: int = 64  # videos in one forward; a larger single request still runs, alone
    max_wait_ms: float = 0.0  # extra wait for company before a forward starts (0: none)

    def __post_init__(self):
        if self.max_videos < 1:
            raise ValueError(f"max_videos={self.max_videos}: must be >= 1")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ValueError(f"max_wait_ms={self.max_wait_ms}: must be in [0, 1000]")


@dataclasses.dataclass
class _Request:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future

    @property
    def videos(self) -> int:
        return len(self.inputs["rgb"])


class Batcher:
    """`await batcher(inputs)` returns `forward`'s rows for `inputs`, computed together with whatever
    other requests were waiting. `forward` maps a numpy batch to (videos, classes) logits."""

    def __init__(self, forward: Callable[[dict], np.ndarray], options: BatchingOptions = BatchingOptions()):
        self.forward, self.options = forward, options
        self._queue: list[_Request] = []
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ytlabel-forward")
        self.forwards = 0  # forward passes run, and the requests they answered: their ratio is the batching
        self.requests = 0

    async def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        request = _Request(inputs, loop.create_future())
        self._queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await request.future

    async def _drain(self) -> None:
        while self._queue:
            if self.options.max_wait_ms and sum(r.videos for r in self._queue) < self.options.max_videos:
                await asyncio.sleep(self.options.max_wait_ms / 1000)
            group = self._take()
            try:
                await self._answer(group)
            except Exception:  # noqa: BLE001 - one request's input broke the forward: answer each alone, so only it fails
                for request in group:
                    try:
                        await self._answer([request])
                    except Exception as error:  # noqa: BLE001
                        if not request.future.done():
                            request.future.set_exception(error)

    async def _answer(self, group: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        logits = await loop.run_in_executor(self._executor, self.forward, merge([r.inputs for r in group]))
        self.forwards += 1
        self.requests += len(group)
        start = 0
        for request in group:
            if not request.future.done():  # a client that went away leaves a cancelled future
                request.future.set_result(logits[start : start + request.videos])
            start += request.videos

    def _take(self) -> list[_Request]:
        """The oldest requests that fit in max_videos together (always at least the oldest one)."""
        group = [self._queue.pop(0)]
        videos = group[0].videos
        while self._queue and videos + self._queue[0].videos <= self.options.max_videos:
            videos += self._queue[0].videos
            group.append(self._queue.pop(0))
        return group

    def call(self, function: Callable, *args):
        """Runs `function(*args)` on the forward thread and returns its result (for loading and warming up the
        model: every PyTorch call must come from that one thread, see the module docstring)."""
        return self._executor.submit(function, *args).result()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def merge(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch of several requests' inputs; frame arrays are zero-padded to the longest request.

    Padding frames past `num_frames` does not change a frame model's answer (masked pooling; tested).
    """
    if len(batches) == 1:
        return batches[0]
    merged = {}
    for key in batches[0]:
        arrays = [batch[key] for batch in batches]
        if key in FRAME_KEYS and arrays[0].ndim == 3:
            frames = max(array.shape[1] for array in arrays)
            arrays = [np.pad(array, ((0, 0), (0, frames - array.shape[1]), (0, 0))) for array in arrays]
        merged[key] = np.concatenate(arrays)
    return merged
