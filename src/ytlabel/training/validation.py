"""Validation for both frameworks during training: loss, GAP@20 and Hit@1 in one numpy pass."""

from collections.abc import Callable

import numpy as np

from ytlabel.data.examples import InputOptions
from ytlabel.evaluation.evaluate import Evaluation, evaluate_predictions


def validate(predict: Callable[[dict], np.ndarray], shards: list[str], options: InputOptions, batch_size: int) -> dict:
    """Runs `predict` (numpy batch -> logits) over every validation video once, in shard order."""
    result = evaluate_predictions(predict, shards, options, batch_size, Evaluation(genres=False)).result()
    return {"loss": result["loss"], "gap_at_20": result["gap_at_20"], "hit_at_1": result["hit_at_1"]}
