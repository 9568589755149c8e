"""Reading batches ahead in a background thread while the trainer computes on the current one.

Both training loops use it (`read_ahead` in the config: batches kept ready, 0 reads synchronously):
the batch work is NumPy (decoding, dequantizing, copying into the batch arrays) and the step is
PyTorch or TensorFlow kernels, and both release the GIL, so a thread overlaps them without the
memory and start-up cost of a DataLoader worker process.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Self

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class ReadAhead(Iterator):
    """Iterates `source` in a daemon thread, at most `depth` items ahead of the consumer.

    Items arrive in order; an exception raised by `source` is raised here, at the point where its item
    would have been, never lost in the thread. `close()` (or leaving a `with` block) stops the thread
    even when the consumer stops early, e.g. at the end of an epoch with batches left unread.
    """

    def __init__(self, source: Iterable, depth: int):
        if depth < 1:
            raise ValueError(f"depth={depth}: must be >= 1")
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(source,), name="ytlabel-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self, source: Iterable) -> None:
        try:
            for item in source:
                if not self._put(item) or self._stop.is_set():  # closed: read nothing more
                    return
            self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer in order
            self._put(_Failed(error))

    def _put(self, item) -> bool:
        """Waits for room; False once the consumer has closed."""
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self):
        if self._stop.is_set():
            raise StopIteration
        item = self._items.get()
        if item is _END:
            self._stop.set()
            raise StopIteration
        if isinstance(item, _Failed):
            self._stop.set()
            raise item.error
        return item

    def close(self) -> None:
        """Stops the thread and drops what it had read ahead."""
        self._stop.set()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
