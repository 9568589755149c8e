"""`ytlabel train`: one entry point for both frameworks, locally or as one rank of a cluster job."""

import json
import logging
import os
import sys

from ytlabel.config import TrainConfig
from ytlabel.errors import TrainingError, YtlabelError
from ytlabel.runs import RESULT, SPEC, RunDir, differences, spec_record
from ytlabel.training import distributed

log = logging.getLogger("ytlabel.train")


def train(config: TrainConfig, workers: int = 1, argv: list[str] | None = None) -> dict | None:
    """Trains `config` and returns the result record (None on non-writer ranks).

    With workers > 1 (and not already inside a launched worker) this process becomes a launcher:
    it starts `workers` copies of `argv` with the PyTorchJob / TFJob environment and waits.
    """
    if workers > 1 and os.environ.get(distributed.LAUNCHED) != "1":
        code = distributed.launch_local(argv or [sys.executable, "-m", "ytlabel", *sys.argv[1:]], workers,
                                        config.framework)
        if code:
            raise YtlabelError(f"a training worker failed with exit code {code}; see the [rank N] lines above")
        run = RunDir(config.out)
        return run.read_json(RESULT) if run.exists(RESULT) else None
    place = distributed.torch_place() if config.framework == "torch" else distributed.keras_place()
    run = RunDir(config.out)
    check_same_run(run, config)
    if place.writer and run.exists(RESULT):
        log.info("%s already holds a finished run (result.json); rerunning continues from its checkpoint", config.out)
    if config.framework == "torch":
        from ytlabel.training import torch_loop as loop
    else:
        from ytlabel.training import keras_fit as loop
    result = loop.train(config, run, place)
    return result if place.writer else None  # only the writer's record is the run's


def check_same_run(run: RunDir, config: TrainConfig) -> None:
    """A run directory holds one model: rerunning into it resumes that model, so anything that would build a
    different one (architecture, framework, widths, input preparation) is refused, naming what differs."""
    if not run.exists(SPEC):
        return
    changed = differences(run.read_json(SPEC), json.loads(json.dumps(spec_record(config))))
    if changed:
        raise TrainingError(f"{config.out} holds a different run ({'; '.join(changed[:4])}); "
                            f"pass a new --out, or remove this one to start over")
