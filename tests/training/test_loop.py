"""training/loop.py, the half of training both frameworks share, on its own: counters, rows and checkpoint
state from a few fake steps, the non-finite stop, the resume refusal, the optimizer settings and digests."""

import json

import numpy as np
import pytest

from ytlabel import runs
from ytlabel.config import load_config
from ytlabel.errors import TrainingError
from ytlabel.training import inputs, loop
from ytlabel.training.distributed import Place
from ytlabel.training.telemetry import Telemetry


@pytest.fixture
def shared(synth_dir, tmp_path):
    config = load_config(
        "fc",
        "torch",
        f"{synth_dir}/video",
        str(tmp_path / "run"),
        None,
        [
            "batch_size=4",
            "epochs=2",
            "learning_rate=0.1",
            "schedule=exponential",
            "decay_rate=0.5",
            "loader_workers=0",
            "validation_fraction=0",
        ],
    )
    place = Place()
    run = runs.RunDir(config.out)
    telemetry = Telemetry(0, 0, "127.0.0.1")
    made = loop.Loop(config, run, place, inputs.resolve_data(config), telemetry)
    yield made
    telemetry.close()


def test_steps_rows_and_checkpoint_state_are_counted_once_for_both_frameworks(shared):
    shared.start_curves()
    shared.begin_epoch(0)
    shared.step_done(0, seconds=0.5, wait=0.1, videos=4, loss=2.0)
    shared.step_done(1, seconds=0.25, wait=0.0, videos=4, loss=1.0)
    assert shared.checkpoint_state(0, step=2) == {
        "epoch": 0,
        "step": 2,
        "videos": 8,
        "train_seconds": 0.75,
        "history": [],
    }
    row = shared.end_epoch(predict=None)  # no validation without a predictor
    assert (row["epoch"], row["train_loss"]) == (0, 1.5)
    assert row["learning_rate"] == pytest.approx(0.1 * 0.5 ** ((shared.steps - 1) / shared.steps))
    assert shared.checkpoint_state(1) == {"epoch": 1, "step": 0, "videos": 8, "train_seconds": 0.75, "history": [row]}
    assert shared.first_step_seconds == 0.5
    with pytest.raises(TrainingError, match="the training loss became nan at epoch 1, step 3: lower learning_rate"):
        shared.begin_epoch(1)
        shared.step_done(3, seconds=0.1, wait=0.0, videos=4, loss=float("nan"))


def test_a_checkpoint_that_cannot_be_loaded_is_refused_in_one_line(shared):
    assert shared.resume(lambda path: pytest.fail("no checkpoint: nothing to load")) is False
    weights = shared.run.path(runs.TORCH_CHECKPOINT)
    shared.run.write_json(
        runs.TORCH_CHECKPOINT_STATE,
        {"epoch": 1, "step": 0, "videos": 8, "train_seconds": 1.0, "history": [{"epoch": 0}]},
    )
    with open(weights, "wb") as handle:
        handle.write(b"not tensors")

    def load(path):
        raise ValueError("invalid load key, 'n'.")

    with pytest.raises(
        runs.RunError,
        match="checkpoints/last.pt: not a checkpoint this run can resume from "
        "\\(invalid load key, 'n'.\\); remove checkpoints/",
    ):
        shared.resume(load)
    assert shared.resume(lambda path: None) is True
    assert (shared.state["epoch"], shared.state["videos"]) == (1, 8)
    assert json.loads(open(shared.run.path(runs.TORCH_CHECKPOINT_STATE)).read())["epoch"] == 1  # kept


def test_optimizer_settings_and_digest():
    config = load_config("fc", "keras", "d", "o", None, ["optimizer=sgd"])
    assert loop.optimizer_settings(config) == ("sgd", {"momentum": 0.9})
    assert loop.optimizer_settings(load_config("fc", "torch", "d", "o", None, [])) == ("adam", {"epsilon": 1e-7})
    a = [("w", np.arange(4, dtype=np.float32)), ("b", np.zeros(2, np.float32))]
    assert loop.weights_digest(a) == loop.weights_digest([(n, v.copy()) for n, v in a])
    assert loop.weights_digest(a) != loop.weights_digest(a[::-1])
    assert loop.weights_digest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
