"""Keras 3 builds of every architecture in `ytlabel.models.spec.ARCHITECTURES` (same file names as torch/)."""

from ytlabel.errors import ConfigError
from ytlabel.models.keras import bilstm, fc, fc_stream_lstm, logistic, moe, stream_lstm
from ytlabel.models.spec import ARCHITECTURES

BUILDERS = {
    "logistic": logistic.build,
    "moe": moe.build,
    "fc": fc.build,
    "bilstm": bilstm.build,
    "stream_lstm": stream_lstm.build,
    "fc_stream_lstm": fc_stream_lstm.build,
}


def build(arch: str, spec):
    """The Keras model of `arch` built from `spec` (an instance of the arch's spec class)."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if not isinstance(spec, ARCHITECTURES[arch].spec):
        raise TypeError(f"{arch} needs a {ARCHITECTURES[arch].spec.__name__}, got {type(spec).__name__}")
    return BUILDERS[arch](spec)
