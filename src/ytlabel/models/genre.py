"""Genre (Vertical1) scores derived from class probabilities through the vocabulary (numpy only).

A video's genres are multi-label (the real sample has 1.4 distinct Vertical1 per video), so a genre
gets its own probability rather than a softmax share. Two aggregations:

  * "max" (default): P(genre) ~ the most probable class of that genre. It is a lower bound on the
    probability that some class of the genre is present, whatever the dependence between classes,
    and it does not grow with the number of classes in a genre.
  * "noisy_or": 1 - prod(1 - p_c). Exact if classes were independent; with hundreds of classes per
    genre (Arts & Entertainment has over a thousand), many small probabilities add up, so large
    genres drift towards 1. Offered for comparison in the evaluation report.
"""

import numpy as np

from ytlabel.data.vocabulary import Vocabulary, load_vocabulary
from ytlabel.errors import ConfigError

METHODS = ("max", "noisy_or")


def genre_scores(probabilities: np.ndarray, vocabulary: Vocabulary | None = None, method: str = "max") -> np.ndarray:
    """(batch, 3862) class probabilities -> (batch, genres) genre probabilities.

    Columns follow `vocabulary.genres` (sorted Vertical1 names, "(Unknown)" included).
    """
    if method not in METHODS:
        raise ConfigError(f"genre aggregation {method!r}: choose one of {METHODS}")
    vocabulary = vocabulary or load_vocabulary()
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(vocabulary.names):
        raise ConfigError(f"probabilities must be (batch, {len(vocabulary.names)}), got {probabilities.shape}")
    order, starts = vocabulary.genre_groups
    grouped = probabilities[:, order]
    if method == "max":
        return np.maximum.reduceat(grouped, starts, axis=1)
    log_absent = np.add.reduceat(np.log1p(-np.clip(grouped, 0.0, 1.0 - 1e-12)), starts, axis=1)
    return -np.expm1(log_absent)
