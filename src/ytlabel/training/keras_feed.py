"""How our batch stream reaches Keras `fit`: a generator for `tf.data.Dataset.from_generator`.

The batches are the ones the PyTorch loop consumes (`ytlabel.data.stream`, same order, same per-rank
split), read in this process or, with `workers`, by reader processes (`data/parallel.py`) as the PyTorch
loop's DataLoader workers read them. The feed also times how long the trainer waits for data and keeps the exception that stopped
it, because tf.data passes on only its text.
"""

import itertools
import time

import tensorflow as tf

from ytlabel.data import schema, stream
from ytlabel.data.parallel import ReaderPool
from ytlabel.data.readahead import ReadAhead
from ytlabel.models.spec import VIDEO
from ytlabel.training.distill import Teacher


class Feed:
    """Batches for `fit`: epoch after epoch from `start_epoch`, timing how long the trainer waits.

    `workers` reader processes read and pack the batches (0: this process reads them); with `read_ahead` > 0
    a background thread keeps that many batches ready, unpacked (the PyTorch loop does the same); with 0 the
    trainer reads synchronously. A `teacher` softens the labels (distill.py).
    """

    def __init__(
        self,
        plan: stream.StreamPlan,
        start_epoch: int,
        read_ahead: int,
        teacher: Teacher | None = None,
        workers: int = 0,
    ):
        self.plan, self.start_epoch, self.read_ahead, self.teacher = plan, start_epoch, read_ahead, teacher
        self.workers = workers
        self.wait_seconds = 0.0
        self.error: Exception | None = None  # what stopped the data (tf.data would only pass on its text)

    def batches(self):
        pool = ReaderPool(self.plan, self.start_epoch) if self.workers else None
        try:
            for epoch in itertools.count(self.start_epoch):
                for batch in pool.batches(epoch) if pool else stream.rank_batches(self.plan, epoch):
                    batch.pop("id")
                    labels = batch.pop("labels")
                    yield batch, (labels if self.teacher is None else self.teacher.soften(batch, labels))
        finally:
            if pool:
                pool.close()

    def __call__(self):
        source = ReadAhead(self.batches(), self.read_ahead) if self.read_ahead else self.batches()
        try:
            while True:
                waited = time.perf_counter()
                try:
                    item = next(source)
                except Exception as error:
                    self.error = error
                    raise
                self.wait_seconds += time.perf_counter() - waited
                yield item
        finally:  # fit is done with the data (or failed): stop the reading thread
            if isinstance(source, ReadAhead):
                source.close()


def signature(level: str, classes: int):
    frames = (None,) if level == VIDEO else (None, None)
    inputs = {
        "rgb": tf.TensorSpec(frames + (schema.RGB_DIM,), tf.float32),
        "audio": tf.TensorSpec(frames + (schema.AUDIO_DIM,), tf.float32),
    }
    if level != VIDEO:
        inputs["num_frames"] = tf.TensorSpec((None,), tf.int64)
    return inputs, tf.TensorSpec((None, classes), tf.float32)


def dataset(feed: Feed, classes: int) -> tf.data.Dataset:
    """The feed as the tf.data.Dataset `fit` consumes: (inputs dict, multi-hot labels) per batch."""
    return tf.data.Dataset.from_generator(feed, output_signature=signature(feed.plan.options.level, classes))
