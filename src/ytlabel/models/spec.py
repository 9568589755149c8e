"""One frozen dataclass per architecture: the single source both frameworks build from.

`models/torch/<arch>.py` and `models/keras/<arch>.py` read only these fields; parity tests hold the
two builds to the same parameter count and, after weight transfer, the same logits.

Inputs (batch dicts from `ytlabel.data.stream`):
    video level: rgb (batch, 1024), audio (batch, 128)
    frame level: rgb (batch, frames, 1024), audio (batch, frames, 128), num_frames (batch,)
Every model returns logits (batch, num_classes); multi-label: sigmoid + binary cross-entropy.
"""

import dataclasses
import math

import numpy as np

from ytlabel.data import schema
from ytlabel.errors import ConfigError
from ytlabel.kinds import FRAME, VIDEO

AVERAGE = "average"
LABELS_PER_VIDEO = 3.0  # the v2 data's mean, used only to start the output biases at the prior


def output_bias(num_classes: int) -> float:
    """Initial bias of every classifier's output layer: the logit of ~3 labels in `num_classes`.

    Starting at 0 means p = 0.5 for all 3,862 classes (loss ~2677); Adam then spends thousands of
    steps pulling every bias down towards -7 before learning anything else. Both frameworks use it.
    """
    p = min(0.5, LABELS_PER_VIDEO / num_classes)
    return math.log(p / (1.0 - p))


def probabilities(logits) -> np.ndarray:
    """Every model answers logits, one per class; their probabilities (float64, sigmoid per class)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


@dataclasses.dataclass(frozen=True)
class EncoderRef:
    """An autoencoder expansion artifact used as the (frozen by default) input layer.

    Attributes:
        path: directory written by `ytlabel expand` (encoder.npz + encoder.json).
        finetune: train the encoder's weights with the model instead of keeping them frozen.
    """

    path: str
    finetune: bool = False


@dataclasses.dataclass(frozen=True)
class _Spec:
    # Why shared: every architecture predicts the same label space and may sit behind an encoder.
    num_classes: int = schema.NUM_CLASSES  # tests shrink this; real data needs 3862
    encoder: EncoderRef | None = None  # None: raw 1024-d rgb and 128-d audio go straight in

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}.{name}={value!r}: must be a positive integer")

    def _non_negative(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{type(self).__name__}.{name}={value!r}: must be an integer >= 0")

    def _fraction(self, name: str) -> None:
        value = getattr(self, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{type(self).__name__}.{name}={value!r}: must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class LogisticSpec(_Spec):
    """Starter baseline: one linear layer on the concatenated 1152-d video features."""

    def __post_init__(self):
        self._positive("num_classes")


@dataclasses.dataclass(frozen=True)
class MoeSpec(_Spec):
    """Starter baseline: per-class mixture of logistic experts with a softmax gate (plus a null expert)."""

    mixtures: int = 2  # the starter's default; each adds 1152 x num_classes weights to gate and experts

    def __post_init__(self):
        self._positive("num_classes", "mixtures")


@dataclasses.dataclass(frozen=True)
class FCSpec(_Spec):
    """Video level: batch-normalised [rgb, audio] features, optional per-modality towers, an MLP head.

    The defaults are the best measured on the real 18k-video split: no towers, one 2048-wide hidden layer,
    batch norm, dropout 0.5. Towers (e.g. rgb_hidden=512, audio_hidden=128) scored lower there but remain
    available. The figures: docs/benchmarks.md, "Real YT8M video-level data", third run.
    """

    rgb_hidden: int = 0  # RGB tower width; 0 = no tower, the features go straight to the head
    audio_hidden: int = 0  # audio tower width; 0 = no tower
    head_hidden: int = 2048  # hidden layer of the head over the concatenated towers (or features)
    dropout: float = 0.5  # before the output layer, training only (0.2 overfitted the 18k-video split)
    # Normalise each input feature and each hidden layer over the batch, as the starter's video models do
    # (measured with and without: docs/benchmarks.md, third run).
    batch_norm: bool = True
    # Context gating (Miech et al. 2017) on the hidden layer: h * sigmoid(batchnorm(W h + b)), a learnt
    # per-unit gate that depends on the whole hidden vector (docs/benchmarks.md, stronger video-level models).
    gating: bool = False
    input_dropout: float = 0.0  # dropout on the (normalised) input features, training only

    def __post_init__(self):
        self._positive("num_classes", "head_hidden")
        self._non_negative("rgb_hidden", "audio_hidden")
        self._fraction("dropout")
        self._fraction("input_dropout")


@dataclasses.dataclass(frozen=True)
class BiLSTMSpec(_Spec):
    """Frame level: per-frame [rgb, audio], stacked bidirectional LSTM, masked mean pooling, head."""

    hidden: int = 256  # per direction; the pooled feature is 2 * hidden
    layers: int = 2  # stacked bidirectional layers
    dropout: float = 0.2  # before the output layer, training only

    def __post_init__(self):
        self._positive("num_classes", "hidden", "layers")
        self._fraction("dropout")


@dataclasses.dataclass(frozen=True)
class StreamLSTMSpec(_Spec):
    """Frame level, two streams: an RGB LSTM and an audio LSTM, each with its own classifier.

    The streams' class probabilities are averaged (fusion "average", as the research describes):
    each stream stays a complete classifier of its modality, so an audio-only class is not diluted
    by a shared head that must also fit RGB. The fused output is returned as the logit of the
    averaged probability.
    """

    rgb_hidden: int = 256  # RGB stream LSTM width
    audio_hidden: int = 64  # audio stream LSTM width
    layers: int = 1  # stacked unidirectional layers per stream; the last real step's output is used
    fusion: str = AVERAGE  # only "average" exists; named so a learned fusion can be added explicitly

    def __post_init__(self):
        self._positive("num_classes", "rgb_hidden", "audio_hidden", "layers")
        if self.fusion != AVERAGE:
            raise ConfigError(f"{type(self).__name__}.fusion={self.fusion!r}: only {AVERAGE!r} is implemented")


@dataclasses.dataclass(frozen=True)
class FCStreamLSTMSpec(_Spec):
    """Video + frame level: the `fc` classifier on the frames' masked mean, plus `stream_lstm`.

    The three classifiers (fc, RGB stream, audio stream) are fused by averaging probabilities.
    """

    fc: FCSpec = FCSpec()
    streams: StreamLSTMSpec = StreamLSTMSpec()

    def __post_init__(self):
        self._positive("num_classes")
        for name, part in (("fc", self.fc), ("streams", self.streams)):
            if part.num_classes != self.num_classes or part.encoder != self.encoder:
                raise ConfigError(f"FCStreamLSTMSpec.{name}: num_classes and encoder must match the outer spec")


PARTS = {"fc": FCSpec, "streams": StreamLSTMSpec}  # the nested specs of FCStreamLSTMSpec


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A registry entry: what the architecture is and which data level it reads."""

    spec: type
    level: str
    summary: str


ARCHITECTURES: dict[str, Architecture] = {
    "logistic": Architecture(LogisticSpec, VIDEO, "starter baseline: logistic regression on [rgb, audio] means"),
    "moe": Architecture(MoeSpec, VIDEO, "starter baseline: mixture of logistic experts with softmax gating"),
    "fc": Architecture(FCSpec, VIDEO, "RGB and audio towers, concatenated, MLP head"),
    "bilstm": Architecture(BiLSTMSpec, FRAME, "stacked bidirectional LSTM over [rgb, audio] frames, masked mean"),
    "stream_lstm": Architecture(StreamLSTMSpec, FRAME, "RGB and audio LSTM streams, probabilities averaged"),
    "fc_stream_lstm": Architecture(FCStreamLSTMSpec, FRAME, "fc on frame means + stream_lstm, probabilities averaged"),
}


def make_spec(arch: str, **fields) -> _Spec:
    """The spec of `arch` with `fields` overridden; unknown architectures and fields are named."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    spec_type = ARCHITECTURES[arch].spec
    known = {field.name for field in dataclasses.fields(spec_type)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"{arch}: unknown setting(s) {unknown}; known: {sorted(known)}")
    if arch == "fc_stream_lstm":
        # The parts take their overrides as dicts (model.fc.head_hidden=...) and the outer label space
        # and encoder, which they must share.
        shared = {key: fields[key] for key in ("num_classes", "encoder") if key in fields}
        for name, part_type in PARTS.items():
            part = fields.get(name, {})
            if isinstance(part, dict):
                unknown = sorted(set(part) - {field.name for field in dataclasses.fields(part_type)})
                if unknown:
                    raise ConfigError(f"{arch}.{name}: unknown setting(s) {unknown}")
                fields[name] = part_type(**{**part, **shared})
    return spec_type(**fields)


def settable_fields(arch: str) -> dict[str, type]:
    """`arch`'s settable spec fields by dotted name (`model.<name>=` in a config), with their declared types:
    fc_stream_lstm's parts flattened (`fc.head_hidden`). The encoder comes from `encoder=`, and a part shares
    the outer label space, so neither is listed."""
    return _fields(ARCHITECTURES[arch].spec)


def _fields(spec_type: type, prefix: str = "") -> dict[str, type]:
    settings: dict[str, type] = {}
    for field in dataclasses.fields(spec_type):
        if field.name == "encoder" or (prefix and field.name == "num_classes"):
            continue
        if field.name in PARTS and not prefix:
            settings.update(_fields(PARTS[field.name], f"{field.name}."))
        else:
            settings[prefix + field.name] = field.type  # type: ignore[assignment]
    return settings
