"""A few optimizer steps on a synthetic batch reduce the loss, for every architecture in both frameworks."""

import glob
import os

import keras
import numpy as np
import torch

from tests.helpers.model_helpers import CLASSES, tiny_spec
from ytlabel.data import stream
from ytlabel.data.examples import InputOptions
from ytlabel.models import keras as keras_models
from ytlabel.models import spec as S
from ytlabel.models import torch as torch_models

STEPS = 15


def _batch(synth_dir, level) -> tuple[dict, np.ndarray]:
    shards = sorted(glob.glob(os.path.join(synth_dir, level, "*.tfrecord")))
    plan = stream.StreamPlan(
        tuple(shards),
        tuple(stream.count_records(shards)),
        InputOptions(level=level, max_frames=20),
        batch_size=8,
        shuffle_buffer=0,
    )
    inputs = next(stream.reader_batches(plan, reader=0, epoch=0))
    inputs.pop("id")
    labels = inputs.pop("labels")[:, :CLASSES]  # the 7 most common classes
    return inputs, labels


def test_torch_steps_reduce_the_loss(arch, synth_dir):
    inputs, labels = _batch(synth_dir, S.ARCHITECTURES[arch].level)
    torch.manual_seed(0)
    model = torch_models.build(arch, tiny_spec(arch))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    batch = {key: torch.from_numpy(value) for key, value in inputs.items()}
    target = torch.from_numpy(labels)
    losses = []
    for _ in range(STEPS):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_keras_steps_reduce_the_loss(arch, synth_dir):
    inputs, labels = _batch(synth_dir, S.ARCHITECTURES[arch].level)
    keras.utils.set_random_seed(0)
    model = keras_models.build(arch, tiny_spec(arch))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    before = model.evaluate(inputs, labels, verbose=0)
    history = model.fit(inputs, labels, batch_size=8, epochs=STEPS, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < 0.7 * before, (before, history.history["loss"])
