"""Validation for both frameworks: one numpy pass computing loss, GAP@20 and Hit@1."""

from collections.abc import Callable

import numpy as np

from ytlabel.data import stream
from ytlabel.data.batching import LoaderOptions
from ytlabel.evaluation.metrics import MetricAccumulator


def binary_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-video loss summed over classes, from logits, in float64 (numerically stable form)."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    return np.sum(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)


def validate(predict: Callable[[dict], np.ndarray], shards: list[str], counts: list[int], options: LoaderOptions,
             batch_size: int) -> dict:
    """Runs `predict` (numpy batch -> logits) over every validation video once, in shard order."""
    plan = stream.StreamPlan(tuple(shards), tuple(counts), options, batch_size, shuffle_buffer=0)
    metrics = MetricAccumulator()
    losses = []
    pending = []
    for example in stream.reader_examples(plan, reader=0, epoch=0):
        pending.append(example)
        if len(pending) == batch_size:
            _score(predict, stream.collate(pending), metrics, losses)
            pending = []
    if pending:
        _score(predict, stream.collate(pending), metrics, losses)
    result = metrics.result()
    result["loss"] = float(np.mean(np.concatenate(losses))) if losses else None
    return result


def _score(predict, batch: dict, metrics: MetricAccumulator, losses: list) -> None:
    labels = batch.pop("labels")
    batch.pop("id")
    logits = predict(batch)
    metrics.accumulate(1.0 / (1.0 + np.exp(-logits.astype(np.float64))), labels)
    losses.append(binary_cross_entropy(logits, labels))
