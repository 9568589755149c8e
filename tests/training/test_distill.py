"""Distillation: a teacher's probabilities soften the training targets, in both frameworks."""

import itertools
import os

import numpy as np
import pytest
import torch

from ytlabel.config import load_config
from ytlabel.data import stream
from ytlabel.errors import YtlabelError
from ytlabel.models import torch as torch_models
from ytlabel.models.predictor import load_predictor
from ytlabel.training import inputs
from ytlabel.training.distill import Teacher, load_teacher
from ytlabel.training.distributed import Place
from ytlabel.training.keras_feed import Feed
from ytlabel.training.run import train

# One step of one batch without dropout: the run's train_loss is the loss of the untrained student on
# the first batch, which this file recomputes.
ONE_STEP = [
    "model.head_hidden=16",
    "model.dropout=0",
    "epochs=1",
    "batch_size=8",
    "max_steps_per_epoch=1",
    "validation_fraction=0",
    "read_ahead=0",
    "loader_workers=0",
]


def test_soften_mixes_the_labels_with_the_teachers_probabilities():
    logits = np.array([[0.0, np.log(3.0)], [np.log(1 / 3), 0.0]])
    teacher = Teacher("t", lambda inputs: logits, weight=0.5)
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    softened = teacher.soften({}, labels)
    assert softened.dtype == np.float32
    np.testing.assert_allclose(softened, [[0.75, 0.375], [0.125, 0.75]], rtol=1e-6)


@pytest.mark.parametrize(
    "answer, message",
    [
        (np.zeros((2, 3)), r"teacher t: answered \(2, 3\) for labels of \(2, 2\)"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), "teacher t: answered NaN or Inf"),
    ],
)
def test_a_teacher_that_answers_wrongly_is_refused(answer, message):
    with pytest.raises(YtlabelError, match=message):
        Teacher("t", lambda inputs: answer, weight=0.5).soften({}, np.zeros((2, 2), dtype=np.float32))


def _student(synth_dir, out, framework, *extra):
    return load_config("fc", framework, os.path.join(synth_dir, "video"), out, None, [*ONE_STEP, *extra])


def _first_batch(config):
    plan = inputs.make_plan(config, inputs.resolve_data(config), Place())
    batch = next(stream.rank_batches(plan, 0))
    batch.pop("id")
    return batch


def _first_step_loss(config, targets: np.ndarray) -> float:
    """The loss the torch loop computes on its first step: the seeded, untrained student in train mode."""
    torch.manual_seed(config.seed)
    model = torch_models.build(config.arch, config.spec())
    model.train()
    batch = {key: torch.from_numpy(value) for key, value in _first_batch(config).items() if key != "labels"}
    with torch.no_grad():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(batch), torch.from_numpy(targets), reduction="none"
        )
    return float(loss.sum(dim=1).mean())


def test_the_torch_student_trains_on_the_softened_targets(synth_dir, fc_run, tmp_path):
    plain = _student(synth_dir, str(tmp_path / "plain"), "torch")
    taught = _student(synth_dir, str(tmp_path / "taught"), "torch", f"teacher={fc_run}", "distill_weight=0.7")
    batch = _first_batch(plain)
    labels = batch.pop("labels")
    probabilities = 1 / (1 + np.exp(-load_predictor(fc_run).predict(batch).astype(np.float64)))
    softened = (0.3 * labels + 0.7 * probabilities).astype(np.float32)

    plain_loss, taught_loss = train(plain)["train_loss"], train(taught)["train_loss"]
    assert plain_loss == pytest.approx(_first_step_loss(plain, labels), rel=1e-5)
    assert taught_loss == pytest.approx(_first_step_loss(taught, softened), rel=1e-5)
    assert abs(plain_loss - taught_loss) > 0.5  # the two expectations are told apart
    assert f"teacher: {fc_run}" in open(os.path.join(taught.out, "config.yaml")).read()


def test_the_keras_feed_yields_the_softened_targets(synth_dir, fc_run, tmp_path):
    config = _student(synth_dir, str(tmp_path / "keras"), "keras", f"teacher={fc_run}", "distill_weight=0.25")
    data = inputs.resolve_data(config)
    plan = inputs.make_plan(config, data, Place())
    teacher = load_teacher(config, data.options)
    plain = list(itertools.islice(Feed(plan, 0, read_ahead=0).batches(), 3))
    taught = list(itertools.islice(Feed(plan, 0, read_ahead=2, teacher=teacher)(), 3))
    for (batch, labels), (taught_batch, taught_labels) in zip(plain, taught):
        np.testing.assert_array_equal(batch["rgb"], taught_batch["rgb"])
        probabilities = 1 / (1 + np.exp(-load_predictor(fc_run).predict(batch).astype(np.float64)))
        np.testing.assert_allclose(taught_labels, 0.75 * labels + 0.25 * probabilities, rtol=1e-6, atol=1e-7)


def test_a_keras_student_learns_from_a_torch_teacher(synth_dir, fc_run, tmp_path):
    config = _student(synth_dir, str(tmp_path / "keras"), "keras", f"teacher={fc_run}", "max_steps_per_epoch=0")
    result = train(config)
    assert result["steps_per_epoch"] == 3 and np.isfinite(result["train_loss"])  # 24 videos in batches of 8


def test_a_teacher_reading_other_inputs_is_refused(synth_dir, fc_run, tmp_path):
    config = _student(synth_dir, str(tmp_path / "s"), "torch", f"teacher={fc_run}", "l2_normalize=true")
    with pytest.raises(
        YtlabelError,
        match=r"teacher=.*reads its inputs differently from this run: "
        r"l2_normalize False \(this run: True\)",
    ):
        train(config)
    assert not os.path.exists(os.path.join(config.out, "model"))


@pytest.mark.parametrize(
    "setting, message",
    [
        ("distill_weight=0", r"distill_weight=0.0: must be in \(0, 1\]"),
        ("distill_weight=1.5", r"distill_weight=1.5: must be in \(0, 1\]"),
    ],
)
def test_distill_weight_out_of_range_is_a_config_error(synth_dir, tmp_path, setting, message):
    with pytest.raises(YtlabelError, match=message):
        _student(synth_dir, str(tmp_path / "s"), "torch", setting)


def test_a_missing_teacher_is_named(synth_dir, tmp_path):
    config = _student(synth_dir, str(tmp_path / "s"), "torch", f"teacher={tmp_path / 'nowhere'}")
    with pytest.raises(YtlabelError, match=r"teacher=.*nowhere: "):
        train(config)
