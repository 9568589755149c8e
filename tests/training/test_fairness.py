"""Both frameworks see the same batches in the same order, the same loss and the same schedule."""

import glob
import itertools
import os

import numpy as np
import pytest
import torch

from ytlabel.data import stream
from ytlabel.data.examples import InputOptions
from ytlabel.training import schedule
from ytlabel.training.keras_feed import Feed
from ytlabel.training.keras_fit import StepSchedule, SummedBinaryCrossentropy
from ytlabel.training.torch_feed import EpochBatches


def _plan(synth_dir, readers, rank=0, world_size=1):
    shards = sorted(glob.glob(os.path.join(synth_dir, "frame", "*.tfrecord")))
    return stream.StreamPlan(
        tuple(shards),
        tuple(stream.count_records(shards)),
        InputOptions(max_frames=8),
        batch_size=2,
        seed=5,
        rank=rank,
        world_size=world_size,
        readers=readers,
        shuffle_buffer=4,
    )


def _torch_batches(plan, workers, epoch):
    dataset = EpochBatches(plan)
    dataset.epoch = epoch
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    return [b["rgb"].numpy() for b in itertools.islice(loader, plan.steps_per_epoch)]


@pytest.mark.parametrize("workers", [0, 2])
def test_torch_dataloader_and_keras_feed_yield_identical_batches(synth_dir, workers):
    plan = _plan(synth_dir, readers=max(1, workers))
    steps = plan.steps_per_epoch
    # 24 videos in 3 shards of 8: one reader makes 12 batches of 2; two readers hold 16 and 8 videos,
    # 8 + 4 batches, so the second runs dry first and the first goes on alone, as DataLoader workers do.
    assert steps == 12
    keras_side = [
        inputs["rgb"] for inputs, _ in itertools.islice(Feed(plan, 0, read_ahead=4 if workers else 0)(), 2 * steps)
    ]
    for epoch in (0, 1):
        torch_side = _torch_batches(plan, workers, epoch)
        assert len(torch_side) == steps
        for ours, theirs in zip(torch_side, keras_side[epoch * steps : (epoch + 1) * steps]):
            np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(keras_side[0], keras_side[steps])  # epochs are reshuffled


def test_ranks_split_the_data_and_run_equal_steps(synth_dir):
    plans = [_plan(synth_dir, readers=1, rank=r, world_size=2) for r in range(2)]
    # Whole shards per rank: rank 0 holds shards 0 and 2 (16 videos), rank 1 shard 1 (8 videos); both
    # must run the same number of steps, so the epoch is 4 batches of 2 on each rank.
    assert plans[0].steps_per_epoch == plans[1].steps_per_epoch == 4
    ids = [set(itertools.chain.from_iterable(b["id"] for b in stream.rank_batches(p, 0))) for p in plans]
    assert not ids[0] & ids[1] and len(ids[0]) == len(ids[1]) == 8


@pytest.mark.parametrize("kind", ["constant", "cosine", "exponential"])
def test_keras_schedule_equals_the_shared_formula(kind):
    keras_schedule = StepSchedule(kind, 0.01, steps_per_epoch=10, epochs=3, decay_rate=0.5)
    for step in (0, 5, 10, 29, 30, 45):
        expected = schedule.learning_rate(kind, 0.01, step, 10, 3, 0.5)
        assert float(keras_schedule(step)) == pytest.approx(expected, rel=1e-5)
    assert schedule.learning_rate("cosine", 0.01, 30, 10, 3, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert schedule.learning_rate("exponential", 0.01, 20, 10, 3, 0.5) == pytest.approx(0.0025)


def test_keras_loss_equals_the_torch_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 7)).astype(np.float32)
    labels = (rng.random((4, 7)) < 0.3).astype(np.float32)
    ours = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.from_numpy(labels), reduction="none"
        )
        .sum(1)
        .mean()
        .item()
    )
    theirs = float(SummedBinaryCrossentropy()(labels, logits))
    assert theirs == pytest.approx(ours, rel=1e-6)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_same_weights_and_batch_give_the_same_training_trajectory(optimizer, batch_norm):
    """Transferred weights, one batch, five steps: the frameworks' optimizers, losses and batch norm agree."""
    import keras

    from ytlabel.models import keras as keras_models
    from ytlabel.models import parity
    from ytlabel.models import torch as torch_models
    from ytlabel.models.keras.layers import import_weights
    from ytlabel.models.spec import make_spec
    from ytlabel.models.torch.layers import export_weights
    from ytlabel.training.keras_fit import TrainingModel

    spec = make_spec("fc", rgb_hidden=16, audio_hidden=8, head_hidden=16, dropout=0.0, batch_norm=batch_norm)
    torch.manual_seed(0)
    torch_model, keras_model = torch_models.build("fc", spec), keras_models.build("fc", spec)
    import_weights(keras_model, export_weights(torch_model))
    inputs = parity.sample_batch("video", batch=4)
    labels = (np.random.default_rng(0).random((4, 3862)) < 0.001).astype(np.float32)
    labels[:, 0] = 1.0
    if optimizer == "adam":
        torch_optimizer = torch.optim.Adam(torch_model.parameters(), lr=0.01, eps=1e-7)
        keras_optimizer = keras.optimizers.Adam(0.01, epsilon=1e-7)
    else:
        torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.03, momentum=0.9)
        keras_optimizer = keras.optimizers.SGD(0.03, momentum=0.9)
    trainer = TrainingModel(keras_model)
    trainer.compile(optimizer=keras_optimizer, loss=SummedBinaryCrossentropy())
    torch_losses, keras_losses = [], []
    for _ in range(5):
        logits = torch_model({key: torch.from_numpy(value) for key, value in inputs.items()})
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels), reduction="none")
        loss = loss.sum(1).mean()
        torch_optimizer.zero_grad()
        loss.backward()
        torch_optimizer.step()
        torch_losses.append(loss.item())
        keras_losses.append(float(np.ravel(trainer.train_on_batch(inputs, labels, return_dict=True)["step_loss"])[0]))
    # It really trains (SGD may overshoot at the end); batch norm over 4 videos slows the first steps.
    assert min(torch_losses) < (0.95 if batch_norm else 0.9) * torch_losses[0]
    # Float32 summation order differs between the frameworks; over 5 steps from a loss of ~30 (output
    # biases start at the prior) the trajectories agree to ~5e-4 relative.
    np.testing.assert_allclose(keras_losses, torch_losses, rtol=1e-3)
