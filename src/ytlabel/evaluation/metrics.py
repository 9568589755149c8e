"""YouTube-8M metrics, framework-neutral (numpy, float64), streaming over batches.

Definitions follow the official YT8M evaluation code:
  * GAP@k (global average precision): keep each video's top-k (score, is-label) pairs, pool them over
    all videos, rank by score and compute AP = sum_i precision@i * rel_i / P, where P is the total
    number of labels over all videos: labels that never reached a top-k still count.
  * Hit@1: fraction of videos whose highest-scored class is one of its labels.
  * PERR (precision at equal recall rate): per video with n labels, the precision of its top-n
    classes; averaged over videos (a video without labels scores 0, as in the official code).
  * mAP, two variants, averaged over the classes that have at least one label in the data:
      `map_at_20`  the starter's: class c's AP over the videos that have c in their top-20, divided
                   by all of c's labels (streaming, memory O(videos * 20));
      `map_full`   the textbook one over the full ranking of every video (one-shot; O(videos * classes)).
Ties: the official code shuffles tied scores with a fixed seed "to avoid overestimating"; we rank tied
scores pessimistically (non-labels first), which is deterministic and never overestimates.
"""

import numpy as np

from ytlabel.errors import ConfigError

TOP_K = 20


def average_precision(scores: np.ndarray, relevant: np.ndarray, positives: int) -> float:
    """AP of a ranked list: sum of precision at each relevant position, over `positives`."""
    if positives <= 0 or len(scores) == 0:
        return 0.0
    order = np.lexsort((relevant.astype(np.int8), -scores))  # by score desc, ties: non-relevant first
    hits = relevant[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(np.sum(precision * hits) / positives)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(batch, k) class indices of each row's k highest scores, best first (ties: lower index first)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


class MetricAccumulator:
    """Accumulates batches; memory O(videos * k), never O(videos * classes).

    Usage:
        metrics = MetricAccumulator()
        for scores, labels in batches:       # (batch, classes) each; labels 0/1
            metrics.accumulate(scores, labels)
        metrics.result()
    """

    def __init__(self, k: int = TOP_K):
        if k < 1:
            raise ConfigError(f"k={k}: must be >= 1")
        self.k = k
        self.reset()

    def reset(self) -> None:
        self._scores: list[np.ndarray] = []  # (batch, k) top-k scores per video
        self._classes: list[np.ndarray] = []  # (batch, k) their class ids
        self._relevant: list[np.ndarray] = []  # (batch, k) whether each is a label of the video
        self._class_positives: np.ndarray | None = None  # (classes,) label counts
        self._hits = 0.0
        self._perr = 0.0
        self._videos = 0

    def accumulate(self, scores: np.ndarray, labels: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64) > 0.5
        if scores.shape != labels.shape or scores.ndim != 2:
            raise ConfigError(f"scores {scores.shape} and labels {labels.shape} must both be (batch, classes)")
        if self._class_positives is None:
            self._class_positives = np.zeros(scores.shape[1], dtype=np.int64)
        ranked = np.argsort(-scores, axis=1, kind="stable")
        rows = np.arange(scores.shape[0])[:, None]
        k = min(self.k, scores.shape[1])
        self._scores.append(scores[rows, ranked[:, :k]])
        self._classes.append(ranked[:, :k].astype(np.int32))
        self._relevant.append(labels[rows, ranked[:, :k]])
        self._class_positives += labels.sum(axis=0).astype(np.int64)
        self._hits += float(labels[rows[:, 0], ranked[:, 0]].sum())
        counts = labels.sum(axis=1).astype(int)
        in_top_n = np.cumsum(labels[rows, ranked], axis=1)  # labels among the top-j, for every j
        with np.errstate(invalid="ignore", divide="ignore"):
            per_video = np.where(
                counts > 0, in_top_n[np.arange(len(counts)), np.maximum(counts, 1) - 1] / np.maximum(counts, 1), 0.0
            )
        self._perr += float(per_video.sum())
        self._videos += scores.shape[0]

    def result(self) -> dict:
        """gap_at_k, hit_at_1, perr, map_at_k (see the module docstring) and the video count."""
        if not self._videos:
            return {f"gap_at_{self.k}": 0.0, "hit_at_1": 0.0, "perr": 0.0, f"map_at_{self.k}": 0.0, "videos": 0}
        scores = np.concatenate(self._scores).ravel()
        relevant = np.concatenate(self._relevant).ravel()
        return {
            f"gap_at_{self.k}": average_precision(scores, relevant, int(self._class_positives.sum())),
            "hit_at_1": self._hits / self._videos,
            "perr": self._perr / self._videos,
            f"map_at_{self.k}": float(np.mean(self.class_ap()[self._class_positives > 0]))
            if self._class_positives.any()
            else 0.0,
            "videos": self._videos,
        }

    def class_ap(self) -> np.ndarray:
        """(classes,) the starter's top-k-truncated AP per class (0 for classes without labels)."""
        scores = np.concatenate(self._scores).ravel()
        classes = np.concatenate(self._classes).ravel()
        relevant = np.concatenate(self._relevant).ravel()
        aps = np.zeros(len(self._class_positives))
        order = np.argsort(classes, kind="stable")
        boundaries = np.searchsorted(classes[order], np.arange(len(aps) + 1))
        for c in np.flatnonzero(self._class_positives):
            chosen = order[boundaries[c] : boundaries[c + 1]]
            aps[c] = average_precision(scores[chosen], relevant[chosen], int(self._class_positives[c]))
        return aps

    @property
    def class_positives(self) -> np.ndarray:
        return self._class_positives


def _one_shot(scores, labels, k) -> dict:
    metrics = MetricAccumulator(k)
    metrics.accumulate(scores, labels)
    return metrics.result()


def gap_at_k(scores: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> float:
    return _one_shot(scores, labels, k)[f"gap_at_{k}"]


def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    return _one_shot(scores, labels, 1)["hit_at_1"]


def perr(scores: np.ndarray, labels: np.ndarray) -> float:
    return _one_shot(scores, labels, 1)["perr"]


def map_at_k(scores: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> float:
    return _one_shot(scores, labels, k)[f"map_at_{k}"]


def map_full(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes with labels of the AP over the full ranking of all videos (one-shot)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.float64) > 0.5
    present = np.flatnonzero(labels.any(axis=0))
    if not len(present):
        return 0.0
    return float(np.mean([average_precision(scores[:, c], labels[:, c], int(labels[:, c].sum())) for c in present]))
