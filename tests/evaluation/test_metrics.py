"""Metrics against brute-force implementations written from the definitions."""

import numpy as np
import pytest

from ytlabel.evaluation.metrics import MetricAccumulator, gap_at_k, hit_at_one


def brute_gap(scores, labels, k):
    pooled = []
    for video in range(scores.shape[0]):
        ranked = sorted(range(scores.shape[1]), key=lambda c: -scores[video, c])[:k]
        pooled += [(scores[video, c], labels[video, c] > 0) for c in ranked]
    pooled.sort(key=lambda pair: -pair[0])
    positives = labels.sum()
    hits, total = 0, 0.0
    for position, (_, relevant) in enumerate(pooled, start=1):
        if relevant:
            hits += 1
            total += hits / position
    return total / positives if positives else 0.0


def brute_hit(scores, labels):
    return np.mean([labels[v, int(np.argmax(scores[v]))] > 0 for v in range(len(scores))])


@pytest.mark.parametrize("seed", range(5))
def test_gap_and_hit_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((40, 30))
    labels = (rng.random((40, 30)) < 0.1).astype(np.float32)
    assert gap_at_k(scores, labels, k=5) == pytest.approx(brute_gap(scores, labels, 5), abs=1e-9)
    assert hit_at_one(scores, labels) == pytest.approx(brute_hit(scores, labels), abs=1e-9)


def test_known_values():
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]])
    labels = np.array([[1, 0, 0], [0, 0, 1]])
    # pooled top-2: 0.9 (rel), 0.8, 0.7, 0.6 (rel) -> (1/1 + 2/4) / 2 positives
    assert gap_at_k(scores, labels, k=2) == pytest.approx(0.75)
    assert hit_at_one(scores, labels) == 0.5


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(9)
    scores, labels = rng.random((50, 12)), (rng.random((50, 12)) < 0.2).astype(np.float32)
    metrics = MetricAccumulator(k=4)
    for start in range(0, 50, 7):
        metrics.accumulate(scores[start : start + 7], labels[start : start + 7])
    assert metrics.result()["gap_at_4"] == pytest.approx(gap_at_k(scores, labels, k=4), abs=1e-12)
    assert metrics.result()["videos"] == 50
