"""How our batch stream reaches Keras `fit`: a generator for `tf.data.Dataset.from_generator`.

The batches are the ones the PyTorch loop consumes (`ytlabel.data.stream`, same order, same per-rank
split). The feed also times how long the trainer waits for data and keeps the exception that stopped
it, because tf.data passes on only its text.
"""

import itertools
import queue
import threading
import time

import tensorflow as tf

from ytlabel.data import schema, stream
from ytlabel.models.spec import VIDEO


class Feed:
    """Batches for `fit`: epoch after epoch from `start_epoch`, timing how long the trainer waits.

    With loader_workers > 0 a background thread reads ahead (the PyTorch DataLoader's role); with 0
    the trainer reads synchronously, as the PyTorch loop does without workers.
    """

    def __init__(self, plan: stream.StreamPlan, start_epoch: int, prefetch: bool):
        self.plan, self.start_epoch, self.prefetch = plan, start_epoch, prefetch
        self.wait_seconds = 0.0
        self.error: Exception | None = None  # what stopped the data (tf.data would only pass on its text)

    def batches(self):
        for epoch in itertools.count(self.start_epoch):
            for batch in stream.rank_batches(self.plan, epoch):
                batch.pop("id")
                labels = batch.pop("labels")
                yield batch, labels

    def __call__(self):
        source = self.batches()
        if self.prefetch:
            source = read_ahead(source, depth=4)
        while True:
            waited = time.perf_counter()
            try:
                item = next(source)
            except Exception as error:
                self.error = error
                raise
            self.wait_seconds += time.perf_counter() - waited
            yield item


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(source, depth: int):
    """Reads `source` in a thread, `depth` items ahead; an exception there is raised here, in order."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)

    def fill():
        try:
            for item in source:
                buffer.put(item)
        except BaseException as error:  # handed to the consumer, never lost in the thread
            buffer.put(_Failed(error))

    threading.Thread(target=fill, daemon=True).start()
    while True:
        item = buffer.get()
        if isinstance(item, _Failed):
            raise item.error
        yield item


def signature(level: str, classes: int):
    frames = (None,) if level == VIDEO else (None, None)
    inputs = {"rgb": tf.TensorSpec(frames + (schema.RGB_DIM,), tf.float32),
              "audio": tf.TensorSpec(frames + (schema.AUDIO_DIM,), tf.float32)}
    if level != VIDEO:
        inputs["num_frames"] = tf.TensorSpec((None,), tf.int64)
    return inputs, tf.TensorSpec((None, classes), tf.float32)


def dataset(feed: Feed, classes: int) -> tf.data.Dataset:
    """The feed as the tf.data.Dataset `fit` consumes: (inputs dict, multi-hot labels) per batch."""
    return tf.data.Dataset.from_generator(feed, output_signature=signature(feed.plan.options.level, classes))
