"""Metrics against brute-force implementations written from the definitions (loops, no shortcuts)."""

import numpy as np
import pytest

from ytlabel.evaluation.metrics import MetricAccumulator, gap_at_k, hit_at_one, map_at_k, map_full, perr


def brute_ap(pairs, positives):
    """pairs: [(score, relevant)]; ties ranked non-relevant first."""
    ranked = sorted(pairs, key=lambda pair: (-pair[0], pair[1]))
    hits, total = 0, 0.0
    for position, (_, relevant) in enumerate(ranked, start=1):
        if relevant:
            hits += 1
            total += hits / position
    return total / positives if positives else 0.0


def brute_top(row, k):
    return sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]


def brute_gap(scores, labels, k):
    pooled = [(scores[v, c], labels[v, c] > 0) for v in range(len(scores)) for c in brute_top(scores[v], k)]
    return brute_ap(pooled, int(labels.sum()))


def brute_hit(scores, labels):
    return sum(labels[v, brute_top(scores[v], 1)[0]] > 0 for v in range(len(scores))) / len(scores)


def brute_perr(scores, labels):
    total = 0.0
    for v in range(len(scores)):
        n = int(labels[v].sum())
        if n:
            total += sum(labels[v, c] > 0 for c in brute_top(scores[v], n)) / n
    return total / len(scores)


def brute_map_at_k(scores, labels, k):
    aps = []
    for c in range(scores.shape[1]):
        positives = int(labels[:, c].sum())
        if not positives:
            continue
        pairs = [(scores[v, c], labels[v, c] > 0) for v in range(len(scores)) if c in brute_top(scores[v], k)]
        aps.append(brute_ap(pairs, positives))
    return sum(aps) / len(aps)


def brute_map_full(scores, labels):
    aps = [
        brute_ap([(scores[v, c], labels[v, c] > 0) for v in range(len(scores))], int(labels[:, c].sum()))
        for c in range(scores.shape[1])
        if labels[:, c].sum()
    ]
    return sum(aps) / len(aps)


def _cases():
    rng = np.random.default_rng(0)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        yield rng.random((30, 12)), (rng.random((30, 12)) < 0.15).astype(np.float32), 5
    ties = np.round(rng.random((25, 8)), 1)  # many tied scores
    yield ties, (rng.random((25, 8)) < 0.3).astype(np.float32), 3
    no_labels = (rng.random((10, 6)) < 0.2).astype(np.float32)
    no_labels[:4] = 0.0  # videos without labels
    yield rng.random((10, 6)), no_labels, 4
    yield rng.random((7, 4)), (rng.random((7, 4)) < 0.5).astype(np.float32), 20  # k larger than classes


@pytest.mark.parametrize("scores, labels, k", list(_cases()))
def test_every_metric_matches_brute_force(scores, labels, k):
    assert gap_at_k(scores, labels, k) == pytest.approx(brute_gap(scores, labels, k), abs=1e-9)
    assert hit_at_one(scores, labels) == pytest.approx(brute_hit(scores, labels), abs=1e-9)
    assert perr(scores, labels) == pytest.approx(brute_perr(scores, labels), abs=1e-9)
    assert map_at_k(scores, labels, k) == pytest.approx(brute_map_at_k(scores, labels, k), abs=1e-9)
    assert map_full(scores, labels) == pytest.approx(brute_map_full(scores, labels), abs=1e-9)


def test_known_values():
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]])
    labels = np.array([[1, 0, 0], [0, 0, 1]])
    # pooled top-2: 0.9 (rel), 0.8, 0.7, 0.6 (rel) -> (1/1 + 2/4) / 2 positives
    assert gap_at_k(scores, labels, k=2) == pytest.approx(0.75)
    assert hit_at_one(scores, labels) == 0.5
    assert perr(scores, labels) == 0.5


def test_ties_never_overestimate():
    scores = np.array([[0.5, 0.5]])
    assert gap_at_k(scores, np.array([[0, 1]]), k=2) == 0.5  # the label ranks after its tie
    assert gap_at_k(scores, np.array([[1, 0]]), k=2) == 0.5


def test_streaming_equals_one_shot_and_float32_labels_keep_precision():
    rng = np.random.default_rng(9)
    scores, labels = rng.random((50, 12)), (rng.random((50, 12)) < 0.2).astype(np.float32)
    metrics = MetricAccumulator(k=4)
    for start in range(0, 50, 7):
        metrics.accumulate(scores[start : start + 7].astype(np.float32), labels[start : start + 7])
    one_shot = MetricAccumulator(k=4)
    one_shot.accumulate(scores.astype(np.float32), labels)
    for key, value in one_shot.result().items():
        assert metrics.result()[key] == pytest.approx(value, abs=1e-12), key
