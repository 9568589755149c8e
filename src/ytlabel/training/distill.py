"""Distillation: a finished model (the teacher) softens the labels a new model (the student) trains on.

With `teacher=RUN`, every training batch's targets become `(1 - w) * labels + w * p`, where `p` is the
teacher's probabilities for the same videos and `w` is `distill_weight`. The teacher is anything
`load_predictor` loads - a run of either framework, a pulled registry version, an ensemble - so a single
model can learn from an ensemble's averaged answers. Both training loops call `Teacher.soften` on the
numpy batch before it becomes a tensor; validation keeps the true labels.
"""

import numpy as np

from ytlabel.config import TrainConfig
from ytlabel.data.examples import InputOptions
from ytlabel.data.records import FRAME
from ytlabel.errors import YtlabelError
from ytlabel.models.spec import probabilities


class Teacher:
    def __init__(self, location: str, predict, weight: float):
        self.location, self.predict, self.weight = location, predict, weight

    def soften(self, inputs: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
        """The batch's targets mixed with the teacher's probabilities for its inputs (float32).

        Raises:
            YtlabelError: the teacher answers with another number of classes, or with NaN/Inf.
        """
        logits = np.asarray(self.predict(inputs), dtype=np.float64)
        if logits.shape != labels.shape:
            raise YtlabelError(f"teacher {self.location}: answered {logits.shape} for labels of {labels.shape}")
        if not np.isfinite(logits).all():
            raise YtlabelError(f"teacher {self.location}: answered NaN or Inf; it cannot teach")
        return ((1.0 - self.weight) * labels + self.weight * probabilities(logits)).astype(np.float32)


def load_teacher(config: TrainConfig, options: InputOptions) -> Teacher | None:
    """The run's teacher, or None without one.

    Raises:
        YtlabelError: the teacher cannot be loaded, or reads its inputs differently from this run
            (level, frames, stride, normalisation, target), so its answers would be about other inputs.
    """
    if not config.teacher:
        return None
    from ytlabel.models.predictor import load_predictor

    try:
        predictor = load_predictor(config.teacher)
    except YtlabelError as error:
        raise YtlabelError(f"teacher={config.teacher}: {error}") from None
    compared = ("level", "l2_normalize", "target") + (("max_frames", "stride") if options.level == FRAME else ())
    differ = [
        f"{name} {getattr(predictor.options, name)!r} (this run: {getattr(options, name)!r})"
        for name in compared
        if getattr(predictor.options, name) != getattr(options, name)
    ]
    if differ:
        raise YtlabelError(
            f"teacher={config.teacher}: it reads its inputs differently from this run: " + ", ".join(differ)
        )
    return Teacher(config.teacher, predictor.predict, config.distill_weight)
