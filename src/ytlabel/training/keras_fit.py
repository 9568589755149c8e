"""The Keras training path: `fit` + callbacks, MultiWorkerMirroredStrategy when TF_CONFIG has > 1 task.

It consumes the same batches as the PyTorch loop (through `keras_feed`) and reproduces its loss (BCE
summed over classes), optimizers and learning-rate schedule.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ytlabel import compat, runs, storage
from ytlabel.config import TrainConfig
from ytlabel.data import stream
from ytlabel.kinds import KERAS
from ytlabel.models import keras as keras_models
from ytlabel.models.keras import layers as _layers
from ytlabel.runs import RESULT, RunDir
from ytlabel.training import distill, inputs, keras_feed, record
from ytlabel.training.distributed import Place
from ytlabel.training.loop import CHECKPOINTS, Loop, optimizer_settings
from ytlabel.training.telemetry import Telemetry


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


class _LoopCallback(keras.callbacks.Callback):
    """Hands `fit`'s steps and epochs to the shared Loop (training/loop.py): per step the loss check,
    telemetry and curves; per epoch batch-norm averaging across workers, validation, the row and the
    checkpoint."""

    def __init__(self, loop: Loop, feed: keras_feed.Feed, plain_model, strategy):
        super().__init__()
        self.loop, self.feed, self.plain_model, self.strategy = loop, feed, plain_model, strategy

    def on_epoch_begin(self, epoch, logs=None):
        self.loop.begin_epoch(epoch)
        self.batch_started = time.perf_counter()
        self.waited_before = self.feed.wait_seconds

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        wait = self.feed.wait_seconds - self.waited_before
        self.waited_before = self.feed.wait_seconds
        seconds = now - self.batch_started
        # This step's own loss (TrainingModel.train_step), as the PyTorch loop logs it.
        self.loop.step_done(batch, seconds, min(wait, seconds), self.loop.config.batch_size, float(logs["step_loss"]))
        self.batch_started = now

    def on_epoch_end(self, epoch, logs=None):
        loop = self.loop
        if loop.place.distributed:
            _average_across_workers(self.model.non_trainable_variables, self.strategy)
        if self.plain_model is not None:
            self.plain_model.set_weights(self.model.get_weights())  # validation runs outside the strategy
        loop.end_epoch(lambda b: np.asarray(self.plain_model(b, training=False)))
        if loop.place.writer:
            with storage.AtomicTarget(loop.run.path(CHECKPOINTS[KERAS].weights)) as partial:
                self.model.save_weights(partial)
            loop.run.write_json(CHECKPOINTS[KERAS].state, loop.checkpoint_state(epoch + 1))
            loop.run.sync()


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
        return _train(Loop(config, run, place, data, telemetry, started), strategy, bool(config.amp and gpus))
    finally:
        telemetry.close()


def _train(loop: Loop, strategy, amp: bool) -> dict:
    config, run, place, data = loop.config, loop.run, loop.place, loop.data
    # --- setup --------------------------------------------------------------------------------
    keras.utils.set_random_seed(config.seed)
    spec = config.spec()
    with strategy.scope():
        inner = keras_models.build(config.arch, spec)
        model = TrainingModel(inner)
        optimizer = _optimizer(config, loop.steps)
        model.compile(optimizer=optimizer, loss=SummedBinaryCrossentropy())

    def load_weights(path: str) -> None:  # an HDF5 weights file holds arrays only: loading it runs nothing
        with strategy.scope():
            optimizer.build(model.trainable_variables)
            model.load_weights(path)

    loop.resume(load_weights)
    loop.start_curves()
    plain_model = keras_models.build(config.arch, spec) if place.writer else None  # validation outside the strategy
    feed = keras_feed.Feed(
        loop.plan,
        loop.state["epoch"],
        read_ahead=config.read_ahead,
        teacher=distill.load_teacher(config, data.options),
        workers=config.loader_workers,
    )

    def dataset_fn(_context=None):
        return keras_feed.dataset(feed, spec.num_classes)

    dataset = dataset_fn()
    if place.distributed:
        dataset = strategy.distribute_datasets_from_function(dataset_fn)
        _build_before_fit(model, strategy, loop.plan)

    # --- train --------------------------------------------------------------------------------
    if loop.state["epoch"] < config.epochs:
        try:
            model.fit(
                dataset,
                epochs=config.epochs,
                initial_epoch=loop.state["epoch"],
                steps_per_epoch=loop.steps,
                callbacks=[_LoopCallback(loop, feed, plain_model, strategy)],
                verbose=1 if record.interactive(place.writer) else 0,
                shuffle=False,
            )
        except tf.errors.OpError:
            if feed.error is not None:  # our data error, not TensorFlow's wrapping of it
                raise feed.error from None
            raise

    # --- save ------------------------------------------------------------------------------------
    device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    result = loop.finish(_named_weights(inner), _layers.trainable_parameters(inner), {"device": device, "amp": amp})
    if place.writer:
        with storage.AtomicTarget(run.path(runs.MODEL_FILES[KERAS])) as partial:
            inner.save(partial)
        run.write_json(RESULT, result)
        run.sync()
    return result


def _optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    rate = StepSchedule(config.schedule, config.learning_rate, steps, config.epochs, config.decay_rate)
    kind, settings = optimizer_settings(config)
    if kind == "adam":
        return keras.optimizers.Adam(rate, epsilon=settings["epsilon"])
    return keras.optimizers.SGD(rate, momentum=settings["momentum"])


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


def _named_weights(model) -> list[tuple[str, np.ndarray]]:
    """Every weight, batch-norm statistics included: equal across workers once they are averaged."""
    return [(weight.path, np.asarray(weight.numpy())) for weight in model.weights]
