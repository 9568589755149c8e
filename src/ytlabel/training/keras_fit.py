"""The Keras training path: `fit` + callbacks, MultiWorkerMirroredStrategy when TF_CONFIG has > 1 task.

It consumes the same batches as the PyTorch loop (through `keras_feed`) and reproduces its loss (BCE
summed over classes), optimizers and learning-rate schedule.
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ytlabel import compat, runs, storage
from ytlabel.config import TrainConfig
from ytlabel.data import stream
from ytlabel.errors import TrainingError
from ytlabel.models import keras as keras_models
from ytlabel.models.keras import layers as _layers
from ytlabel.runs import RESULT, RunDir
from ytlabel.training import distill, inputs, keras_feed, record, schedule
from ytlabel.training.distributed import Place
from ytlabel.training.telemetry import Telemetry
from ytlabel.training.validation import validate

CHECKPOINT_DIR = runs.KERAS_CHECKPOINT_DIR


@keras.saving.register_keras_serializable(package="ytlabel")
class SummedBinaryCrossentropy(keras.losses.Loss):
    """BCE from logits summed over classes (averaged over the batch by Keras), as the PyTorch loop."""

    def call(self, y_true, y_pred):
        return ops.sum(ops.binary_crossentropy(y_true, y_pred, from_logits=True), axis=-1)


@keras.saving.register_keras_serializable(package="ytlabel")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`ytlabel.training.schedule.learning_rate` in Keras ops (tested equal)."""

    def __init__(self, kind: str, base: float, steps_per_epoch: int, epochs: int, decay_rate: float):
        self.kind, self.base, self.steps_per_epoch, self.epochs, self.decay_rate = (
            kind,
            base,
            steps_per_epoch,
            epochs,
            decay_rate,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.kind == "cosine":
            total = float(max(1, self.steps_per_epoch * self.epochs))
            return self.base * (1.0 + ops.cos(np.pi * ops.minimum(step, total) / total)) / 2.0
        if self.kind == "exponential":
            return self.base * ops.power(self.decay_rate, step / float(max(1, self.steps_per_epoch)))
        return ops.convert_to_tensor(self.base, "float32")

    def get_config(self):
        return {
            "kind": self.kind,
            "base": self.base,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "decay_rate": self.decay_rate,
        }


@keras.saving.register_keras_serializable(package="ytlabel")
class TrainingModel(keras.Model):
    """Wraps a built model for `fit`; the wrapped model is what gets saved and served.

    Its train step is Keras's own (forward, loss, loss scaling, gradients, update, metrics) with two
    changes. It also returns `step_loss`, this step's loss: Keras's `loss` log is the running mean over
    the epoch so far, while the PyTorch loop logs each step's own loss, and the curves of both must mean
    the same thing. And the logs are returned as shape (1,) instead of scalars: under
    MultiWorkerMirroredStrategy Keras 3 mean-reduces every step output along axis 0, which fails for
    scalars; the cross-replica mean of (1,) values is the scalar Keras expected.
    """

    def __init__(self, inner: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.built = inner.built  # no weights of its own: built when the wrapped model is

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def train_step(self, data):
        inputs, labels, _ = keras.utils.unpack_x_y_sample_weight(data)  # our feeds carry no sample weights
        with tf.GradientTape() as tape:
            logits = self(inputs, training=True)
            # Keras divides the loss by the replicas in sync, so that summed gradients are the global mean's.
            loss = self.compute_loss(x=inputs, y=labels, y_pred=logits, training=True)
            scaled = self.optimizer.scale_loss(loss)  # mixed precision's loss scale (1 in float32)
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, self.trainable_weights), self.trainable_weights))
        step_loss = loss * tf.distribute.get_strategy().num_replicas_in_sync  # this replica's batch mean again
        self._loss_tracker.update_state(step_loss, sample_weight=tf.shape(labels)[0])  # Keras's `loss` log
        logs = {**self.compute_metrics(inputs, labels, logits), "step_loss": step_loss}
        return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


class _EpochEnd(keras.callbacks.Callback):
    """Per step: telemetry. Per epoch: validation and curves (chief), checkpoint (chief)."""

    def __init__(self, config, run, place, data, history, telemetry, feed, steps, plain_model, strategy):
        super().__init__()
        self.strategy = strategy
        self.config, self.run, self.place, self.data = config, run, place, data
        self.history, self.telemetry, self.feed, self.steps = history, telemetry, feed, steps
        self.plain_model = plain_model
        self.videos = 0
        self.train_seconds = 0.0
        self.first_step_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self.telemetry.set_epoch(epoch)
        self.epoch_started = self.batch_started = time.perf_counter()
        self.epoch_videos = 0
        self.losses = []
        self.waited_before = self.feed.wait_seconds

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        videos = self.config.batch_size
        wait = self.feed.wait_seconds - self.waited_before
        self.waited_before = self.feed.wait_seconds
        loss = float(logs["step_loss"])  # this step's (TrainingModel.train_step), as the PyTorch loop logs it
        if not math.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss} at epoch {self.epoch_index}, step {batch}: lower "
                f"learning_rate (now {self.config.learning_rate}) or check the data; the last "
                f"checkpoint in {self.config.out} is from before it"
            )
        self.telemetry.step(now - self.batch_started, min(wait, now - self.batch_started), videos, loss)
        self.train_seconds += now - self.batch_started
        if self.first_step_seconds is None:
            self.first_step_seconds = now - self.batch_started
        self.losses.append(loss)
        self.epoch_videos += videos
        self.history.step(self.epoch_index * self.steps + batch, loss, self._rate(batch))
        self.batch_started = now

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.epoch_started
        videos = self.epoch_videos * self.place.world_size
        self.videos += videos
        # The mean of the epoch's step losses, as in the PyTorch loop (Keras's `loss` log is the same number).
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(self.losses)) if self.losses else None,
            "learning_rate": self._rate(self.steps - 1),
            "epoch_s": round(elapsed, 3),
            "videos_per_s": round(videos / elapsed, 2),
        }
        if self.place.distributed:
            _average_across_workers(self.model.non_trainable_variables, self.strategy)
        if self.place.writer and self.data.validation_shards:
            self.plain_model.set_weights(self.model.get_weights())
            metrics = validate(
                lambda b: np.asarray(self.plain_model(b, training=False)),
                self.data.validation_shards,
                self.data.options,
                self.config.batch_size,
            )
            row.update(val_loss=metrics["loss"], val_gap_at_20=metrics["gap_at_20"], val_hit_at_1=metrics["hit_at_1"])
        self.history.add(row, (epoch + 1) * self.steps)
        if self.place.writer:
            with storage.AtomicTarget(self.run.path(CHECKPOINT_DIR, "last.weights.h5")) as partial:
                self.model.save_weights(partial)
            self.run.write_json(
                os.path.join(CHECKPOINT_DIR, "state.json"),
                {
                    "epoch": epoch + 1,
                    "history": self.history.rows,
                    "videos": self.videos,
                    "train_seconds": self.train_seconds,
                },
            )
            self.run.sync()

    @property
    def epoch_index(self) -> int:
        return self.history.rows[-1]["epoch"] + 1 if self.history.rows else 0

    def _rate(self, batch: int) -> float:
        step = self.epoch_index * self.steps + batch
        return schedule.learning_rate(
            self.config.schedule,
            self.config.learning_rate,
            step,
            self.steps,
            self.config.epochs,
            self.config.decay_rate,
        )


def train(config: TrainConfig, run: RunDir, place: Place, data: inputs.RunData) -> dict:
    started = time.perf_counter()
    # The strategy must exist before any other TensorFlow op runs in a multi-worker process.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if place.distributed else tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if config.amp and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    elif config.amp:
        record.log.warning("amp=true needs a GPU; training in float32 on CPU")
    telemetry = Telemetry(place.rank, config.exporter_port(place), config.metrics_host)
    try:
        return _train(config, run, place, data, strategy, telemetry, started, bool(config.amp and gpus))
    finally:
        telemetry.close()


def _train(config, run, place, data, strategy, telemetry, started, amp) -> dict:
    # --- setup --------------------------------------------------------------------------------
    plan = inputs.make_plan(config, data, place)
    steps = plan.steps_per_epoch
    keras.utils.set_random_seed(config.seed)
    spec = config.spec()
    with strategy.scope():
        inner = keras_models.build(config.arch, spec)
        model = TrainingModel(inner)
        rate = StepSchedule(config.schedule, config.learning_rate, steps, config.epochs, config.decay_rate)
        optimizer = (
            keras.optimizers.Adam(rate, epsilon=1e-7)
            if config.optimizer == "adam"
            else keras.optimizers.SGD(rate, momentum=0.9)
        )
        model.compile(optimizer=optimizer, loss=SummedBinaryCrossentropy())
    state = {"epoch": 0, "history": [], "videos": 0, "train_seconds": 0.0}
    checkpoint = run.path(CHECKPOINT_DIR, "last.weights.h5")
    if os.path.exists(checkpoint) and run.exists(os.path.join(CHECKPOINT_DIR, "state.json")):
        try:  # an HDF5 weights file holds arrays only: loading it runs nothing from the file
            state = run.read_json(os.path.join(CHECKPOINT_DIR, "state.json"))
            with strategy.scope():
                optimizer.build(model.trainable_variables)
                model.load_weights(checkpoint)
        except (OSError, ValueError, KeyError, TypeError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise runs.RunError(
                f"{run.uri}/{CHECKPOINT_DIR}: not a checkpoint this run can resume from "
                f"({reason[:200]}); remove checkpoints/ to train from scratch"
            ) from None
        record.log.info("resuming from epoch %d", state["epoch"])
    plain_model = keras_models.build(config.arch, spec) if place.writer else None  # validation outside the strategy
    feed = keras_feed.Feed(
        plan,
        state["epoch"],
        read_ahead=config.read_ahead,
        teacher=distill.load_teacher(config, data.options),
        workers=config.loader_workers,
    )

    def dataset_fn(_context=None):
        return keras_feed.dataset(feed, spec.num_classes)

    dataset = dataset_fn()
    if place.distributed:
        dataset = strategy.distribute_datasets_from_function(dataset_fn)
        _build_before_fit(model, strategy, plan)
    history = record.History(run, place.writer, state["history"])
    callback = _EpochEnd(config, run, place, data, history, telemetry, feed, steps, plain_model, strategy)
    callback.videos, callback.train_seconds = state["videos"], state["train_seconds"]

    # --- train --------------------------------------------------------------------------------
    if state["epoch"] < config.epochs:
        try:
            model.fit(
                dataset,
                epochs=config.epochs,
                initial_epoch=state["epoch"],
                steps_per_epoch=steps,
                callbacks=[callback],
                verbose=1 if record.interactive(place.writer) else 0,
                shuffle=False,
            )
        except tf.errors.OpError:
            if feed.error is not None:  # our data error, not TensorFlow's wrapping of it
                raise feed.error from None
            raise

    # --- save ------------------------------------------------------------------------------------
    digest = _digest(inner)
    record.log.info("rank %d final weights sha256 %s", place.rank, digest)
    history.close()
    result = record.result_record(
        config,
        data,
        place,
        history,
        telemetry.summary(),
        callback.videos,
        callback.train_seconds,
        started,
        _layers.trainable_parameters(inner),
        callback.first_step_seconds,
        config.batch_size * place.world_size,
        {"device": "gpu" if tf.config.list_physical_devices("GPU") else "cpu", "amp": amp, "steps_per_epoch": steps},
    )
    if place.writer:
        with storage.AtomicTarget(run.path(runs.MODEL_FILES["keras"])) as partial:
            inner.save(partial)
        run.write_json(RESULT, result)
        run.sync()
    return result


def _build_before_fit(model, strategy, plan: stream.StreamPlan) -> None:
    """Builds the loss and optimizer state from one plain batch of our own stream before `fit` (compat.py)."""
    compat.keras_build_before_fit(model, strategy, next(keras_feed.Feed(plan, start_epoch=0, read_ahead=0).batches()))


def _average_across_workers(variables, strategy) -> None:
    """Replaces each floating-point variable (batch-norm moving statistics) by its mean over workers.

    Keras 3 creates them unaggregated under MultiWorkerMirroredStrategy, so each worker's have seen
    only its own batches; the PyTorch loop averages its buffers the same way at every epoch end.
    """
    for variable in variables:
        if "float" in str(variable.dtype):  # not the dropout seed generators' integer states
            per_worker = strategy.run(lambda value=variable.value: tf.identity(value))
            variable.assign(strategy.reduce("MEAN", per_worker, axis=None))


def _digest(model) -> str:
    import hashlib

    digest = hashlib.sha256()
    # Every weight, batch-norm statistics included: equal across workers once they are averaged.
    for weight in model.weights:
        digest.update(weight.path.encode())
        digest.update(np.asarray(weight.numpy()).tobytes())
    return digest.hexdigest()
