"""Validation for both frameworks during training: loss, GAP@20 and Hit@1 in one numpy pass."""

from collections.abc import Callable

import numpy as np

from ytlabel.data.examples import InputOptions
from ytlabel.evaluation.evaluate import Evaluation, evaluate_predictions


def validate(predict: Callable[[dict], np.ndarray], shards: list[str], options: InputOptions, batch_size: int) -> dict:
    """Runs `predict` (numpy batch -> logits) over every validation video once, in shard order."""
    evaluation = Evaluation(genres=False, target=options.target)
    result = evaluate_predictions(predict, shards, options, batch_size, evaluation).result()
    # A genre-trained run is validated on its own outputs: GAP over every genre in the GAP@20 column.
    return {
        "loss": result["loss"],
        "gap_at_20": result.get("gap_at_20", result.get("genre_gap")),
        "hit_at_1": result.get("hit_at_1", result.get("genre_hit_at_1")),
    }
