"""`ytlabel train`: one entry point for both frameworks, locally or as one rank of a cluster job.

A run directory holds one run and says what it is (training/run_record.py): spec.json (the model), config.yaml
(every setting) and data.json (the shards it reads, with their record counts and a digest). A rerun into it continues exactly
that run, or is refused naming the first difference; a finished run is left as it is, unless the rerun asks
for more epochs under a schedule that does not span the whole run (constant, exponential), which trains
it on exactly as if it had been asked for them from the start. `force=True` (the
CLI's --force) removes what the directory holds and starts over. A start that fails before its first
checkpoint takes away whatever it wrote.
"""

import dataclasses
import logging
import os
import shutil
import sys

from ytlabel import cores, runs, storage
from ytlabel.config import TrainConfig
from ytlabel.errors import YtlabelError
from ytlabel.kinds import TORCH
from ytlabel.runs import RESULT, RunDir
from ytlabel.training import distributed, inputs
from ytlabel.training.run_record import check_same_run, run_record

log = logging.getLogger("ytlabel.train")

# A checkpoint's state file is written last: with it, the run has progress that a failed rerun must keep.
PROGRESS = (runs.TORCH_CHECKPOINT_STATE, runs.KERAS_CHECKPOINT_STATE)


def train(config: TrainConfig, workers: int = 1, argv: list[str] | None = None, force: bool = False) -> dict | None:
    """Trains `config` and returns the result record (None on non-writer ranks).

    With workers > 1 (and not already inside a launched worker) this process becomes a launcher:
    it starts `workers` copies of `argv` with the PyTorchJob / TFJob environment and waits.
    """
    launched = os.environ.get(distributed.LAUNCHED) == "1"
    if workers > 1 and not launched:
        if force:
            start_over(config.out)
        code = distributed.launch_local(
            argv or [sys.executable, "-m", "ytlabel", *sys.argv[1:]], workers, config.framework
        )
        if code:
            raise YtlabelError(f"a training worker failed with exit code {code}; see the [rank N] lines above")
        run = RunDir(config.out)
        return run.read_json(RESULT) if run.exists(RESULT) else None
    place = distributed.torch_place() if config.framework == TORCH else distributed.keras_place()
    if force and place.distributed and not launched:
        raise YtlabelError(
            "--force starts a run over by hand; a cluster job's pods restart into their run and must "
            "resume it: give the job a new --out instead"
        )
    data = inputs.resolve_data(config)  # missing or unreadable data fails here, before anything is written
    if force and not launched:
        start_over(config.out)
    existing = _local_files(config.out)
    run = RunDir(config.out)
    config = choose_readers(config, run)
    check_same_run(run, config, data)
    finished = run.read_json(RESULT) if run.exists(RESULT) else None
    if finished is not None:
        if finished.get("epochs", 0) >= config.epochs:
            log.info(
                "%s already holds this run, finished; nothing to train (pass --force to train it again, "
                "or a new --out)",
                config.out,
            )
            return finished if place.writer else None
        if place.writer:  # trained on to more epochs: until it finishes again it is not a finished run
            log.info("%s: continuing the finished run to epochs=%d", config.out, config.epochs)
            run.remove(RESULT)
    if config.framework == TORCH:
        from ytlabel.training.torch_loop import train as train_loop
    else:
        from ytlabel.training.keras_fit import train as train_loop
    try:
        if place.writer:
            run_record(config, data).write(run)
        result = train_loop(config, run, place, data)
    except BaseException:
        if place.writer and not any(run.exists(name) for name in PROGRESS):
            _remove_new_files(run, existing)
        raise
    return result if place.writer else None  # only the writer's record is the run's


def choose_readers(config: TrainConfig, run: RunDir) -> TrainConfig:
    """Settles loader_workers=auto: the count a resumed run already reads with (the batch order depends on it),
    else one from the cores this process may use (`cores.default_readers`: a pod's CPU limit, not the node's)."""
    if config.loader_workers is not None:
        return config
    recorded = runs.read_config(run.local).get("loader_workers") if run.exists(runs.CONFIG) else None
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 0:
        count, why = recorded, "as the run in progress"
    else:
        usable = cores.usable_cores()
        count, why = cores.default_readers(usable), f"{usable} usable core(s)"
    log.info("loader_workers=auto: %d reader process(es) (%s)", count, why)
    return dataclasses.replace(config, loader_workers=count)


def start_over(out: str) -> None:
    """Removes everything a run directory (local, or an s3:// prefix and its local staging copy) holds."""
    remote = storage.is_remote(out)
    held = storage.listdir(out.rstrip("/")) if remote else os.listdir(out) if os.path.isdir(out) else []
    if held and not storage.exists(storage.join(out, runs.SPEC) if remote else os.path.join(out, runs.SPEC)):
        raise YtlabelError(
            f"--force: {out} holds files but no {runs.SPEC}, so it is not a run directory; "
            f"refusing to empty it (pass another --out)"
        )
    if remote:
        for uri in held:
            storage.delete(uri)
        shutil.rmtree(RunDir.staging(out), ignore_errors=True)
    else:
        for name in held:
            path = os.path.join(out, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    log.info("--force: removed what %s held; training from scratch", out)


def _local_files(out: str) -> set[str] | None:
    """The files a local run directory holds before this start (None: it does not exist yet)."""
    folder = RunDir.staging(out) if storage.is_remote(out) else out
    if not os.path.isdir(folder):
        return None
    return {os.path.join(current, name) for current, _, names in os.walk(folder) for name in names}


def _remove_new_files(run: RunDir, existing: set[str] | None) -> None:
    """Takes back what a failed start wrote: the directory if it made it, else the files it added.
    Nothing reached S3 yet: a run is uploaded at its checkpoints only."""
    if existing is None:
        shutil.rmtree(run.local, ignore_errors=True)
        return
    for current, directories, names in os.walk(run.local, topdown=False):
        for name in names:
            if os.path.join(current, name) not in existing:
                os.remove(os.path.join(current, name))
        if current != run.local and not os.listdir(current):
            os.rmdir(current)
