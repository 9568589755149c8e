"""What a training run reports: progress on a terminal, per-epoch curves (curves.csv and TensorBoard events
through tensorboardX), and the result record both loops return."""

import csv
import io
import logging
import sys
import time

from ytlabel import storage
from ytlabel.config import TrainConfig
from ytlabel.runs import CURVES, TENSORBOARD, RunDir
from ytlabel.training.distributed import Place
from ytlabel.training.inputs import RunData

log = logging.getLogger("ytlabel.train")


def interactive(writer: bool) -> bool:
    """Progress bars only for a person at a terminal, and only from the writer rank."""
    return writer and sys.stderr.isatty()


class _NoProgress:
    def update(self, epoch: int, step: int, steps: int, loss: float) -> None:
        pass

    def close(self) -> None:
        pass


class _RichProgress:
    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._progress.start()
        self._task = None
        self._epoch = None

    def update(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if epoch != self._epoch:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task("train", total=steps, epoch=epoch, loss=loss)
            self._epoch = epoch
        self._progress.update(self._task, completed=step, loss=loss)

    def close(self) -> None:
        self._progress.stop()


def progress_bar(writer: bool):
    """A rich progress bar on an interactive terminal; nothing otherwise (log lines remain)."""
    return _RichProgress() if interactive(writer) else _NoProgress()


class History:
    """Per-epoch rows kept in memory, written to curves.csv and TensorBoard by the writer rank."""

    COLUMNS = (
        "epoch",
        "train_loss",
        "val_loss",
        "val_gap_at_20",
        "val_hit_at_1",
        "learning_rate",
        "videos_per_s",
        "epoch_s",
    )

    def __init__(self, run: RunDir, writer: bool, rows: list[dict] | None = None):
        self.run, self.writer = run, writer
        self.rows = list(rows or [])
        self._events = None
        if writer:
            from tensorboardX import SummaryWriter

            # Flushed at every epoch row below, so TensorBoard shows a run while it trains.
            self._events = SummaryWriter(run.path(*TENSORBOARD.split("/")), flush_secs=3600)

    def add(self, row: dict, step: int) -> None:
        self.rows.append(row)
        if self._events is None:  # not the writer rank
            return
        for key, value in row.items():
            if key != "epoch" and value is not None:
                self._events.add_scalar(f"epoch/{key}", value, step)
        self._events.flush()
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=self.COLUMNS, extrasaction="ignore")
        table.writeheader()
        table.writerows(self.rows)
        storage.atomic_write(self.run.path(CURVES), text.getvalue())
        log.info("epoch %d: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)), row["epoch"])

    def step(self, step: int, loss: float, learning_rate: float) -> None:
        if self._events is not None:
            self._events.add_scalar("step/loss", loss, step)
            self._events.add_scalar("step/learning_rate", learning_rate, step)

    def close(self) -> None:
        if self._events:
            self._events.close()


def result_record(
    config: TrainConfig,
    data: RunData,
    place: Place,
    history: History,
    usage: dict,
    videos: int,
    train_seconds: float,
    started: float,
    params: int,
    first_step_s: float | None,
    first_step_videos: int,
    extra: dict,
) -> dict:
    """result.json: the columns of the research's comparison table, measured.

    `videos_per_s` leaves out the first step (graph tracing in Keras, allocator warm-up in PyTorch)
    so that short runs compare steady-state speed; `videos_per_s_with_first_step` keeps it.
    """
    last = history.rows[-1] if history.rows else {}
    steady = None
    if first_step_s is not None and train_seconds > first_step_s and videos > first_step_videos:
        steady = round((videos - first_step_videos) / (train_seconds - first_step_s), 2)
    return {
        "arch": config.arch,
        "framework": config.framework,
        "epochs": len(history.rows),
        "train_loss": last.get("train_loss"),
        "val_metrics": {
            "gap_at_20": last.get("val_gap_at_20"),
            "hit_at_1": last.get("val_hit_at_1"),
            "loss": last.get("val_loss"),
        },
        "videos_per_s": steady if steady is not None else (round(videos / train_seconds, 2) if train_seconds else None),
        "videos_per_s_with_first_step": round(videos / train_seconds, 2) if train_seconds else None,
        "wall_s": round(time.perf_counter() - started, 2),
        "train_s": round(train_seconds, 2),
        "world_size": place.world_size,
        "usage": usage,
        "params": params,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "videos": videos,
        "dataset": data.fingerprint(),
        **extra,
    }
