"""Learning-rate schedules, one formula per name, used per step by both frameworks.

constant     lr
cosine       lr * (1 + cos(pi * step / total_steps)) / 2        (to 0 at the end of training)
exponential  lr * decay_rate ** (step / steps_per_epoch)         (decay_rate per epoch, smoothly)
"""

import math

from ytlabel.errors import ConfigError


def learning_rate(schedule: str, base: float, step: int, steps_per_epoch: int, epochs: int, decay_rate: float) -> float:
    if schedule == "constant":
        return base
    if schedule == "cosine":
        total = max(1, steps_per_epoch * epochs)
        return base * (1.0 + math.cos(math.pi * min(step, total) / total)) / 2.0
    if schedule == "exponential":
        return base * decay_rate ** (step / max(1, steps_per_epoch))
    raise ConfigError(f"schedule={schedule!r}: unknown")
