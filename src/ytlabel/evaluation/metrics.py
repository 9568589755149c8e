"""YouTube-8M metrics, framework-neutral (numpy, float64), streaming over batches.

Definitions follow the official YT8M evaluation:
  * GAP@k (global average precision): keep each video's top-k (score, is-label) pairs, pool them over
    all videos, sort by score (descending, stable for ties), and compute
    AP = sum_i precision@i * rel_i / (total number of labels over all videos) — the denominator
    counts every label, also those that never made a top-k.
  * Hit@1: fraction of videos whose highest-scored class is one of its labels.
"""

import numpy as np

from ytlabel.errors import ConfigError

TOP_K = 20


class MetricAccumulator:
    """Accumulates batches; memory O(videos * k), never O(videos * classes).

    Usage:
        metrics = MetricAccumulator()
        for scores, labels in batches:       # (batch, classes) each; labels 0/1
            metrics.accumulate(scores, labels)
        metrics.result()                     # {"gap_at_20": ..., "hit_at_1": ..., "videos": ...}
    """

    def __init__(self, k: int = TOP_K):
        if k < 1:
            raise ConfigError(f"k={k}: must be >= 1")
        self.k = k
        self.reset()

    def reset(self) -> None:
        self._scores: list[np.ndarray] = []  # (batch, k) top-k scores per video
        self._relevant: list[np.ndarray] = []  # (batch, k) whether each top-k class is a label
        self._positives = 0
        self._hits = 0
        self._videos = 0

    def accumulate(self, scores: np.ndarray, labels: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64) > 0.5
        if scores.shape != labels.shape or scores.ndim != 2:
            raise ConfigError(f"scores {scores.shape} and labels {labels.shape} must both be (batch, classes)")
        k = min(self.k, scores.shape[1])
        # Top-k per row in descending score; ties broken by class index (stable).
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        rows = np.arange(scores.shape[0])[:, None]
        self._scores.append(scores[rows, order])
        self._relevant.append(labels[rows, order])
        self._positives += int(labels.sum())
        self._hits += int(labels[rows[:, 0], order[:, 0]].sum())
        self._videos += scores.shape[0]

    def result(self) -> dict[str, float | int]:
        if not self._videos:
            return {f"gap_at_{self.k}": 0.0, "hit_at_1": 0.0, "videos": 0}
        scores = np.concatenate(self._scores).ravel()
        relevant = np.concatenate(self._relevant).ravel()
        return {
            f"gap_at_{self.k}": average_precision(scores, relevant, self._positives),
            "hit_at_1": self._hits / self._videos,
            "videos": self._videos,
        }


def average_precision(scores: np.ndarray, relevant: np.ndarray, positives: int) -> float:
    """AP of a ranked list: sum of precision at each relevant position, over `positives`."""
    if positives <= 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(np.sum(precision * hits) / positives)


def gap_at_k(scores: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> float:
    """One-shot GAP@k for (videos, classes) arrays."""
    metrics = MetricAccumulator(k)
    metrics.accumulate(scores, labels)
    return metrics.result()[f"gap_at_{k}"]


def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    """One-shot Hit@1 for (videos, classes) arrays."""
    metrics = MetricAccumulator(1)
    metrics.accumulate(scores, labels)
    return metrics.result()["hit_at_1"]
