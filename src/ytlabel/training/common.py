"""Pieces both training loops share: data resolution, the stream plan, history, the result record."""

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import sys
import time

from ytlabel.config import TrainConfig
from ytlabel.data import sources, stream
from ytlabel.data.batching import LoaderOptions
from ytlabel.errors import YtlabelError
from ytlabel.runs import CURVES, TENSORBOARD, RunDir
from ytlabel.training.distributed import Place
from ytlabel.training.events import EventWriter

log = logging.getLogger("ytlabel.train")


@dataclasses.dataclass(frozen=True)
class RunData:
    train_shards: list[str]
    train_counts: list[int]
    validation_shards: list[str]
    options: LoaderOptions

    def fingerprint(self) -> dict:
        """What the model was trained on, for the registry: shard names with their record counts, hashed.

        Names and counts (not bytes) keep it cheap on S3 and stable across copies of the same shards.
        """
        listing = sorted(zip((os.path.basename(shard) for shard in self.train_shards), self.train_counts))
        digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
        return {"shards": len(listing), "videos": sum(self.train_counts), "sha256": digest}


def check_encoder(config: TrainConfig) -> None:
    """The encoder must see inputs normalised as during `ytlabel expand`, or its codes mean nothing."""
    if not config.encoder:
        return
    from ytlabel.features.encoder import load_encoder

    trained_on = bool(load_encoder(config.encoder).manifest.get("config", {}).get("l2_normalize", False))
    if trained_on != config.l2_normalize:
        raise YtlabelError(
            f"encoder {config.encoder} was trained with l2_normalize={str(trained_on).lower()} but this run has "
            f"l2_normalize={str(config.l2_normalize).lower()}; set l2_normalize={str(trained_on).lower()} or "
            f"re-run `ytlabel expand`{' --l2-normalize' if config.l2_normalize else ''}"
        )


def resolve_data(config: TrainConfig) -> RunData:
    """Training and validation shards with their record counts."""
    check_encoder(config)
    shards = sources.resolve_shards(config.data)
    if config.validation_data:
        train, validation = shards, sources.resolve_shards(config.validation_data)
    elif config.validation_fraction > 0 and len(shards) > 1:
        train, validation = sources.split_shards(shards, config.validation_fraction)
    else:
        train, validation = shards, []
    options = LoaderOptions(level=config.level, max_frames=config.max_frames, stride=config.stride,
                            min_frames=config.min_frames, l2_normalize=config.l2_normalize)
    return RunData(train, stream.count_records(train), validation, options)


def make_plan(config: TrainConfig, data: RunData, place: Place) -> stream.StreamPlan:
    plan = stream.StreamPlan(
        shards=tuple(data.train_shards), counts=tuple(data.train_counts), options=data.options,
        batch_size=config.batch_size, seed=config.seed, rank=place.rank, world_size=place.world_size,
        readers=max(1, config.loader_workers), shuffle_buffer=config.shuffle_buffer,
        max_steps=config.max_steps_per_epoch, skip_corrupt=config.skip_corrupt,
    )
    if plan.steps_per_epoch < 1:
        raise YtlabelError(
            f"not enough training data for one batch of {config.batch_size} per rank and reader "
            f"({sum(data.train_counts)} videos in {len(data.train_shards)} shards, world size {place.world_size}, "
            f"{plan.readers} reader(s) per rank); lower batch_size or loader_workers"
        )
    return plan


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

        self._progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(), transient=True)
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

    COLUMNS = ("epoch", "train_loss", "val_loss", "val_gap_at_20", "val_hit_at_1", "learning_rate",
               "videos_per_s", "epoch_s")

    def __init__(self, run: RunDir, writer: bool, rows: list[dict] | None = None):
        self.run, self.writer = run, writer
        self.rows = list(rows or [])
        self._events = EventWriter(run.path(*TENSORBOARD.split("/"))) if writer else None

    def add(self, row: dict, step: int) -> None:
        self.rows.append(row)
        if not self.writer:
            return
        self._events.scalars(step, {f"epoch/{key}": value for key, value in row.items()
                                    if key != "epoch" and value is not None})
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=self.COLUMNS, extrasaction="ignore")
        table.writeheader()
        table.writerows(self.rows)
        with open(self.run.path(CURVES), "w") as handle:
            handle.write(text.getvalue())
        log.info("epoch %d: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)), row["epoch"])

    def step(self, step: int, loss: float, learning_rate: float) -> None:
        if self.writer:
            self._events.scalars(step, {"step/loss": loss, "step/learning_rate": learning_rate})

    def close(self) -> None:
        if self._events:
            self._events.close()


def result_record(config: TrainConfig, data: RunData, place: Place, history: History, usage: dict, videos: int,
                  train_seconds: float, started: float, params: int, first_step_s: float | None,
                  first_step_videos: int, extra: dict) -> dict:
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
        "val_metrics": {"gap_at_20": last.get("val_gap_at_20"), "hit_at_1": last.get("val_hit_at_1"),
                        "loss": last.get("val_loss")},
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
