"""Training configuration: one dataclass, YAML presets per architecture, `key=value` overrides.

Precedence: dataclass defaults < preset file (`--config`) < `key=value` overrides on the command line.
Every field documents why it exists; unknown keys are rejected by name, values are converted to the
field's type and validated in `__post_init__`. Model widths go under `model.` (e.g. `model.hidden=128`)
and are checked against the architecture's spec.
"""

import dataclasses
import difflib
import importlib.resources
import os
import types
import typing

import yaml

from ytlabel.errors import ConfigError, YtlabelError
from ytlabel.kinds import FRAMEWORKS, KERAS
from ytlabel.models.spec import ARCHITECTURES, settable_fields

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "exponential")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    arch: str  # an ARCHITECTURES key
    framework: str  # torch or keras: the same run in either framework gives a comparable result.json
    data: str  # training shards: file, directory, glob or s3://bucket/prefix
    out: str  # run directory, local or s3://; rerunning with the same `out` resumes
    validation_data: str | None = None  # held-out shards; None: split `data` by shard (validation_fraction)
    validation_fraction: float = 0.1  # share of `data`'s shards held out when validation_data is None
    epochs: int = 3  # passes over the training data
    batch_size: int = 64  # per rank (per replica): global batch = batch_size * world size
    optimizer: str = "adam"  # adam or sgd (with momentum 0.9), the same in both frameworks
    learning_rate: float = 1e-3  # peak learning rate
    schedule: str = "constant"  # constant, cosine (to 0 over all steps) or exponential (decay_rate per epoch)
    decay_rate: float = 0.95  # exponential schedule: factor per epoch
    seed: int = 0  # initial weights, data order and dropout
    target: str = "classes"  # what the model outputs: the 3,862 classes, or the 25 genres (Vertical1)
    max_frames: int = 300  # frame level: frames kept per video after striding
    stride: int = 1  # frame level: keep every stride-th frame
    min_frames: int = 0  # frame level: drop videos shorter than this (the research kept >= 100 s)
    l2_normalize: bool = False  # unit-length [rgb, audio] per frame/video, as the starter code
    shuffle_buffer: int = 256  # records mixed across shards; 0 reads in (permuted) shard order
    loader_workers: int | None = None  # reader processes (PyTorch DataLoader workers, the Keras feed's readers),
    # which also fix the batch order; None ("auto"): from the cores the trainer may use (ytlabel/cores.py)
    read_ahead: int = 4  # batches a background thread keeps ready while the step runs (0: read synchronously)
    encoder: str | None = None  # an `ytlabel expand` artifact used as the input layer
    finetune_encoder: bool = False  # train the encoder too (default: frozen)
    teacher: str | None = None  # distillation: a finished run or registry version whose probabilities soften the labels
    distill_weight: float = 0.5  # with a teacher: target = (1 - w) * labels + w * the teacher's probabilities
    amp: bool = False  # mixed precision (GPU only; ignored with a warning on CPU)
    checkpoint_every_steps: int = 0  # extra checkpoints within an epoch (PyTorch only); 0: once per epoch
    max_steps_per_epoch: int = 0  # cap on steps per epoch, for smoke runs and benchmarks; 0: no cap
    metrics_port: int = 0  # Prometheus exporter port (+ local rank when processes share a host); 0: none
    metrics_host: str = "127.0.0.1"  # bind address of the exporter; 0.0.0.0 inside a cluster pod
    skip_corrupt: bool = False  # count corrupt records instead of failing
    model: dict = dataclasses.field(default_factory=dict)  # spec overrides for the architecture

    def __post_init__(self):
        def fail(name, rule):
            raise ConfigError(f"{name}={getattr(self, name)!r}: {rule}")

        if self.arch not in ARCHITECTURES:
            fail("arch", f"choose one of {sorted(ARCHITECTURES)}{did_you_mean(self.arch, ARCHITECTURES)}")
        if self.framework not in FRAMEWORKS:
            fail("framework", f"choose one of {FRAMEWORKS}{did_you_mean(self.framework, FRAMEWORKS)}")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"choose one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"choose one of {SCHEDULES}")
        if self.target not in ("classes", "genres"):
            fail("target", "choose classes (the 3,862 labels) or genres (the 25 Vertical1 genres)")
        for name in ("epochs", "batch_size", "stride", "max_frames"):
            if getattr(self, name) < 1:
                fail(name, "must be >= 1")
        for name in (
            "min_frames",
            "shuffle_buffer",
            "loader_workers",
            "read_ahead",
            "checkpoint_every_steps",
            "max_steps_per_epoch",
            "metrics_port",
        ):
            if (getattr(self, name) or 0) < 0:
                fail(name, "must be >= 0")
        if self.learning_rate <= 0:
            fail("learning_rate", "must be > 0")
        if not 0.0 < self.decay_rate <= 1.0:
            fail("decay_rate", "must be in (0, 1]")
        if not 0.0 <= self.validation_fraction < 1.0:
            fail("validation_fraction", "must be in [0, 1)")
        if not 0.0 < self.distill_weight <= 1.0:
            fail("distill_weight", "must be in (0, 1]")
        if self.framework == KERAS and self.checkpoint_every_steps:  # refused, never ignored
            fail(
                "checkpoint_every_steps",
                "checkpoints within an epoch are the PyTorch loop's (Keras's fit resumes "
                "only at an epoch's start); remove it for framework=keras",
            )
        self.spec()  # validates `model` against the architecture

    @property
    def level(self) -> str:
        return ARCHITECTURES[self.arch].level

    def exporter_port(self, place) -> int:
        """This process's exporter port: one per pod in a cluster, port + local rank on a shared host."""
        return self.metrics_port + place.local_rank if self.metrics_port else 0

    def input_options(self):
        """How the run's inputs are prepared (data.examples.InputOptions)."""
        from ytlabel.data.examples import InputOptions

        return InputOptions(
            level=self.level,
            max_frames=self.max_frames,
            stride=self.stride,
            min_frames=self.min_frames,
            l2_normalize=self.l2_normalize,
            target=self.target,
        )

    def run_spec(self):
        """What the run is for everything after training (models.runspec.RunSpec; spec.json is its record)."""
        from ytlabel.models.runspec import RunSpec

        return RunSpec(self.arch, self.framework, self.spec(), self.input_options())

    def spec(self):
        """The architecture spec with `model` overrides and the encoder applied."""
        from ytlabel.models.spec import EncoderRef, make_spec

        fields = dict(self.model)
        if self.target == "genres":
            from ytlabel.data.vocabulary import load_vocabulary

            fields["num_classes"] = len(load_vocabulary().genres)
        if self.encoder:
            fields["encoder"] = EncoderRef(self.encoder, finetune=self.finetune_encoder)
        return make_spec(self.arch, **fields)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_CLI_ONLY = ("arch", "framework", "data", "out")
_AUTO = {"loader_workers": ("auto",)}  # settings whose None is chosen at run time, also written "auto"
_ALIASES = {"pytorch": "torch", "tf": "keras", "tensorflow": "keras"}  # what people type for our names


def did_you_mean(value: str, known) -> str:
    """'; did you mean X?' for a near miss (a typo, or another name for a framework), else ''."""
    close = (
        [_ALIASES[value.lower()]] if value.lower() in _ALIASES else difflib.get_close_matches(value, list(known), n=1)
    )
    return f"; did you mean {close[0]!r}?" if close else ""


def load_config(
    arch: str, framework: str, data: str, out: str, preset: str | None = None, overrides: typing.Sequence[str] = ()
) -> TrainConfig:
    """Resolves defaults < preset < overrides into a validated TrainConfig.

    Raises:
        YtlabelError: unreadable preset, unknown key (named, with the file or flag it came from).
        ValueError: a value of the wrong type or out of range (named).
    """
    values: dict = {}
    if preset:
        path = preset_path(preset)
        try:
            with open(path) as handle:
                loaded = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as error:
            raise YtlabelError(f"cannot read config {path}: {error}") from error
        if not isinstance(loaded, dict):
            raise YtlabelError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        for key, value in loaded.items():
            _set(values, arch, key, value, source=path)
    for override in overrides:
        key, separator, raw = override.partition("=")
        if not separator or not key:
            raise YtlabelError(f"override {override!r}: expected key=value")
        _set(values, arch, key.strip(), raw, source="command line")
    return TrainConfig(arch=arch, framework=framework, data=data, out=out, **values)


def default_preset(arch: str, chosen: str | None) -> str | None:
    """The preset a run uses: the one named (`none`: the bare defaults), else the architecture's own shipped one,
    the same in `ytlabel train`, the pipeline's pods and `platform render`."""
    if chosen is not None:
        return None if chosen.strip().lower() == "none" else chosen
    if arch not in ARCHITECTURES:  # TrainConfig names the mistake
        return None
    shipped = importlib.resources.files("ytlabel") / "presets" / f"{arch}.yaml"
    return arch if shipped.is_file() else None


def preset_path(name_or_path: str) -> str:
    """A YAML file path, or the name of a shipped preset (e.g. "fc" -> ytlabel/presets/fc.yaml)."""
    if os.path.exists(name_or_path):
        return name_or_path
    shipped = importlib.resources.files("ytlabel") / "presets" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return str(shipped)
    raise YtlabelError(f"config {name_or_path!r}: no such file, and no shipped preset of that name")


def _set(values: dict, arch: str, key: str, value, source: str) -> None:
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    if (key == "model" or key.startswith("model.")) and isinstance(value, dict):  # YAML nesting
        for sub_key, sub_value in value.items():
            _set(values, arch, f"{key}.{sub_key}", sub_value, source)
        return
    if key.startswith("model."):
        path = key.removeprefix("model.").split(".")
        settings = settable_fields(arch)
        if ".".join(path) not in settings:
            known = sorted(f"model.{name}" for name in settings)
            raise YtlabelError(f"unknown setting {key!r} ({source}) for {arch}; known: {known}")
        target = values.setdefault("model", {})
        for part in path[:-1]:  # fc_stream_lstm's parts: model.fc.head_hidden
            target = target.setdefault(part, {})
        target[path[-1]] = _convert(key, value, settings[".".join(path)])
        return
    if key not in fields or key in _CLI_ONLY or key == "model":
        if key in _CLI_ONLY:
            hint = "; set it with its --flag"
        else:
            close = difflib.get_close_matches(key, [n for n in fields if n not in _CLI_ONLY], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        raise YtlabelError(f"unknown setting {key!r} ({source}){hint}")
    values[key] = _convert(key, value, fields[key].type)


def _convert(key: str, value, annotation):
    """Converts a YAML value or a command-line string to the field's declared type."""
    optional = isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)
    target = (
        next((t for t in typing.get_args(annotation) if t is not type(None)), annotation) if optional else annotation
    )
    if isinstance(value, str) and optional and value.strip().lower() in ("none", "null", "", *_AUTO.get(key, ())):
        return None
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if target is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if target is float:
            return float(value)
        if target is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: expected {target.__name__}") from None
    return value
