"""The loss curves of both frameworks mean the same thing: TensorBoard's `step/loss` is each step's own loss
(summed BCE over classes, averaged over the batch), held here to that loss recomputed by hand from the first
batch of the shared stream and the seeded initial weights; each epoch's `train_loss` is the mean of its steps."""

import csv
import glob
import os

import numpy as np
import pytest

from ytlabel.config import load_config
from ytlabel.training import inputs
from ytlabel.training.distributed import Place
from ytlabel.training.run import train

SETTINGS = [
    "epochs=2",
    "batch_size=4",
    "learning_rate=0.01",
    "validation_fraction=0",
    "model.head_hidden=16",
    "model.dropout=0",
    "loader_workers=0",
]  # no dropout: the forward pass of the first step is reproducible by hand


def _step_losses(out: str) -> dict[int, float]:
    """step -> `step/loss` read back with TensorFlow's own event reader, as TensorBoard reads them."""
    import tensorflow as tf

    [events] = glob.glob(os.path.join(out, "tensorboard", "train", "events.out.tfevents.*"))
    losses = {}
    for event in tf.compat.v1.train.summary_iterator(events):
        for value in event.summary.value:
            if value.tag == "step/loss":
                losses[event.step] = value.simple_value
    return losses


def _by_hand(logits: np.ndarray, labels: np.ndarray) -> float:
    """Binary cross-entropy from logits, summed over classes, averaged over videos, in float64."""
    logits = logits.astype(np.float64)
    per_class = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    return float(per_class.sum(axis=1).mean())


def _first_batch(config) -> tuple[dict, np.ndarray]:
    from ytlabel.data import stream

    plan = inputs.make_plan(config, inputs.resolve_data(config), Place(0, 1, 0))
    batch = next(stream.rank_batches(plan, 0))
    batch.pop("id")
    return batch, batch.pop("labels")


def _initial_logits(config, batch: dict) -> np.ndarray:
    """The first step's forward pass (training mode: batch statistics) with the weights the loop starts from."""
    if config.framework == "torch":
        import torch

        from ytlabel.models import torch as torch_models

        torch.manual_seed(config.seed)
        model = torch_models.build(config.arch, config.spec()).train()
        with torch.no_grad():
            return model({key: torch.from_numpy(value) for key, value in batch.items()}).numpy()
    import keras

    from ytlabel.models import keras as keras_models

    keras.utils.set_random_seed(config.seed)
    return np.asarray(keras_models.build(config.arch, config.spec())(batch, training=True))


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_step_loss_is_the_steps_own_loss(synth_dir, tmp_path, framework):
    config = load_config("fc", framework, os.path.join(synth_dir, "video"), str(tmp_path / "run"), None, SETTINGS)
    train(config)
    losses = _step_losses(config.out)
    assert sorted(losses) == list(range(12))  # 24 videos in batches of 4: 6 steps per epoch, 2 epochs

    batch, labels = _first_batch(config)
    assert losses[0] == pytest.approx(_by_hand(_initial_logits(config, batch), labels), rel=1e-5)

    rows = list(csv.DictReader(open(os.path.join(config.out, "curves.csv"))))
    for epoch, row in enumerate(rows):
        steps = [losses[step] for step in range(6 * epoch, 6 * epoch + 6)]
        assert float(row["train_loss"]) == pytest.approx(np.mean(steps), rel=1e-5)
        # a running mean would end on the epoch mean; the last step's own loss does not
        assert steps[-1] != pytest.approx(float(row["train_loss"]), rel=1e-3)
