"""Whether ported weights fit a model: the check both frameworks run before importing weights.

The canonical weight layout is in models/torch/layers.py.
"""

import numpy as np

from ytlabel.errors import ConfigError


def check_fit(expected: dict[str, np.ndarray], weights: dict[str, np.ndarray]) -> None:
    """Raises ConfigError unless `weights` has exactly the keys and shapes of `expected`."""
    if set(expected) != set(weights):
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise ConfigError(f"weights do not fit the model: missing {missing[:5]}, unexpected {extra[:5]}")
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise ConfigError(f"weight {key}: shape {value.shape}, model expects {expected[key].shape}")
