"""The framework-neutral half of training: what the PyTorch loop and the Keras fit share, written once.

A training run is the same sequence in both frameworks (as torchtune's recipes: set up, resume, train,
save), and only the tensor work differs. `Loop` holds everything else:

    setup       the stream plan and steps per epoch from the run contract (`inputs.make_plan`)
    resume      the checkpoint's place in the run (`CHECKPOINTS`), its counters and curves restored, and
                one refusal for a file that is not a checkpoint; the weights are loaded by the framework
    optimizer   which optimizer and with what settings (`optimizer_settings`), built by the framework
    per step    the learning rate of a global step, a non-finite loss stopped, telemetry, step curves
    per epoch   the epoch's row (mean step loss, rate, speed), validation by the writer, the curves
    checkpoint  the counters and curves saved beside the framework's tensors (`checkpoint_state`)
    finish      the final weights' digest in the log and the result record

torch_loop.py and keras_fit.py own the rest: building the model, the step itself (or `fit`), saving
tensors, averaging batch-norm statistics across ranks.
"""

import dataclasses
import hashlib
import math
import os
import pickle
import time
from collections.abc import Callable, Iterable

import numpy as np

from ytlabel import runs
from ytlabel.config import TrainConfig
from ytlabel.errors import TrainingError
from ytlabel.kinds import KERAS, TORCH
from ytlabel.training import inputs, record, schedule
from ytlabel.training.distributed import Place
from ytlabel.training.telemetry import Telemetry
from ytlabel.training.validation import validate


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Where a framework's checkpoint lies in a run: its tensors (in the framework's format) and state.json
    (epoch, step, counters and curves), written last: tensors without their state are not resumed from."""

    weights: str
    state: str


CHECKPOINTS = {
    TORCH: Checkpoint(runs.TORCH_CHECKPOINT, runs.TORCH_CHECKPOINT_STATE),
    KERAS: Checkpoint(runs.KERAS_CHECKPOINT, runs.KERAS_CHECKPOINT_STATE),
}

# What a checkpoint that cannot be loaded raises in either framework (a file that is not one, another model's).
_UNLOADABLE = (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError, EOFError, OSError)


def optimizer_settings(config: TrainConfig) -> tuple[str, dict]:
    """The optimizer both frameworks build: Adam with epsilon 1e-7 (Keras's default, set in PyTorch too), or
    SGD with momentum 0.9. The learning rate comes from the schedule."""
    return (config.optimizer, {"epsilon": 1e-7} if config.optimizer == "adam" else {"momentum": 0.9})


class Loop:
    """One run's shared bookkeeping; a framework calls it around its own steps (see the module docstring)."""

    def __init__(
        self,
        config: TrainConfig,
        run: runs.RunDir,
        place: Place,
        data: inputs.RunData,
        telemetry: Telemetry,
        started: float | None = None,
    ):
        self.config, self.run, self.place, self.data, self.telemetry = config, run, place, data, telemetry
        self.started = time.perf_counter() if started is None else started  # wall_s counts from here
        self.plan = inputs.make_plan(config, data, place)
        self.steps = self.plan.steps_per_epoch
        self.checkpoint = CHECKPOINTS[config.framework]
        # What a checkpoint records: where the run is (epoch, step within it) and its counters and curves.
        self.state: dict = {"epoch": 0, "step": 0, "videos": 0, "train_seconds": 0.0, "history": []}
        self.first_step_seconds: float | None = None
        self.history: record.History | None = None

    # --- resume ----------------------------------------------------------------------------------------

    def resume(self, load_weights: Callable[[str], None]) -> bool:
        """When the run holds a whole checkpoint, restores its counters and curves and has the framework load
        its tensors (`load_weights(path)`, which must execute nothing from the file); False when there is none.

        Raises:
            RunError: the checkpoint cannot be loaded (named, with the way out).
        """
        weights = self.run.path(self.checkpoint.weights)
        if not (os.path.exists(weights) and self.run.exists(self.checkpoint.state)):
            return False
        try:
            load_weights(weights)
            state = self.run.read_json(self.checkpoint.state)
        except _UNLOADABLE as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise runs.RunError(
                f"{self.run.uri}/{self.checkpoint.weights}: not a checkpoint this run can resume from "
                f"({reason[:200]}); remove checkpoints/ to train from scratch"
            ) from None
        self.state = {**self.state, **state}
        record.log.info("resuming from epoch %d step %d", self.state["epoch"], self.state.get("step", 0))
        return True

    def start_curves(self) -> None:
        """The curves so far (a resumed run's included), written on by the writer rank."""
        self.history = record.History(self.run, self.place.writer, self.state["history"])

    # --- per step --------------------------------------------------------------------------------------

    def learning_rate(self, epoch: int, step: int) -> float:
        c = self.config
        return schedule.learning_rate(
            c.schedule, c.learning_rate, epoch * self.steps + step, self.steps, c.epochs, c.decay_rate
        )

    def begin_epoch(self, epoch: int) -> None:
        self.telemetry.set_epoch(epoch)
        self.epoch, self.epoch_started = epoch, time.perf_counter()
        self.losses: list[float] = []
        self.epoch_videos = 0

    def step_done(self, step: int, seconds: float, wait: float, videos: int, loss: float) -> None:
        """Counts a finished step: its time (`wait` of it for data), videos and loss.

        Raises:
            TrainingError: the loss is NaN or infinite (the last checkpoint is from before it).
        """
        if not math.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss} at epoch {self.epoch}, step {step}: lower "
                f"learning_rate (now {self.config.learning_rate}) or check the data; "
                f"the last checkpoint in {self.config.out} is from before it"
            )
        self.telemetry.step(seconds, wait, videos, loss)
        self.state["train_seconds"] += seconds
        if self.first_step_seconds is None:
            self.first_step_seconds = seconds
        self.losses.append(loss)
        self.epoch_videos += videos
        assert self.history is not None, "start_curves() first"
        self.history.step(self.epoch * self.steps + step, loss, self.learning_rate(self.epoch, step))

    def add_train_time(self, seconds: float) -> None:
        """Time the framework spent on a step's bookkeeping (checkpoints, progress): training, not data wait."""
        self.state["train_seconds"] += seconds

    def checkpoint_state(self, epoch: int, step: int = 0) -> dict:
        """state.json for a checkpoint at `step` of `epoch` (step 0: the epoch's start), counting the videos of
        the steps taken in the current epoch."""
        assert self.history is not None
        videos = self.state["videos"] + (self.epoch_videos * self.place.world_size if step else 0)
        return {**self.state, "epoch": epoch, "step": step, "videos": videos, "history": self.history.rows}

    # --- per epoch -------------------------------------------------------------------------------------

    def end_epoch(self, predict: Callable[[dict], np.ndarray] | None) -> dict:
        """The epoch's row: the mean of its step losses, the last step's rate, its speed over all ranks, and
        validation (writer rank only: `predict(batch) -> probabilities`); added to the curves. The counters
        move to the next epoch's start."""
        elapsed = time.perf_counter() - self.epoch_started
        videos = self.epoch_videos * self.place.world_size
        self.state["videos"] += videos
        self.state["step"] = 0
        row = {
            "epoch": self.epoch,
            "train_loss": float(np.mean(self.losses)) if self.losses else None,
            "learning_rate": self.learning_rate(self.epoch, self.steps - 1),
            "epoch_s": round(elapsed, 3),
            "videos_per_s": round(videos / elapsed, 2),
        }
        if self.place.writer and self.data.validation_shards and predict is not None:
            metrics = validate(predict, self.data.validation_shards, self.data.options, self.config.batch_size)
            row.update(val_loss=metrics["loss"], val_gap_at_20=metrics["gap_at_20"], val_hit_at_1=metrics["hit_at_1"])
        assert self.history is not None
        self.history.add(row, (self.epoch + 1) * self.steps)
        self.epoch_videos = 0
        return row

    # --- finish ----------------------------------------------------------------------------------------

    def finish(self, weights: Iterable[tuple[str, np.ndarray]], params: int, extra: dict) -> dict:
        """Logs the digest of the final `weights` (name, array), equal on every rank once the ranks agree,
        closes the curves, and returns result.json's record."""
        record.log.info("rank %d final weights sha256 %s", self.place.rank, weights_digest(weights))
        assert self.history is not None
        self.history.close()
        return record.result_record(
            self.config,
            self.data,
            self.place,
            self.history,
            self.telemetry.summary(),
            self.state["videos"],
            self.state["train_seconds"],
            self.started,
            params,
            self.first_step_seconds,
            self.config.batch_size * self.place.world_size,
            {**extra, "steps_per_epoch": self.steps},
        )


def weights_digest(weights: Iterable[tuple[str, np.ndarray]]) -> str:
    """sha256 over every weight's name and bytes, in the order given (batch-norm statistics included)."""
    digest = hashlib.sha256()
    for name, value in weights:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()
