"""PyTorch builds of every architecture in `ytlabel.models.spec.ARCHITECTURES` (same file names as keras/)."""

from torch import nn

from ytlabel.errors import ConfigError
from ytlabel.models.spec import ARCHITECTURES
from ytlabel.models.torch.bilstm import BiLSTM
from ytlabel.models.torch.fc import FC
from ytlabel.models.torch.fc_stream_lstm import FCStreamLSTM
from ytlabel.models.torch.logistic import Logistic
from ytlabel.models.torch.moe import Moe
from ytlabel.models.torch.stream_lstm import StreamLSTM

BUILDERS = {
    "logistic": Logistic,
    "moe": Moe,
    "fc": FC,
    "bilstm": BiLSTM,
    "stream_lstm": StreamLSTM,
    "fc_stream_lstm": FCStreamLSTM,
}


def build(arch: str, spec) -> nn.Module:
    """The PyTorch model of `arch` built from `spec` (an instance of the arch's spec class)."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if not isinstance(spec, ARCHITECTURES[arch].spec):
        raise TypeError(f"{arch} needs a {ARCHITECTURES[arch].spec.__name__}, got {type(spec).__name__}")
    return BUILDERS[arch](spec)
