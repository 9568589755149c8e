"""What a run is, for everything after training: one `RunSpec`, and spec.json as its record.

Training writes it (`TrainConfig.run_spec().to_record()`); a rerun compares it; the predictor, the registry
and ensembles read it back (`RunSpec.from_record`). The architecture spec, the framework and the way inputs
are read travel together, so a new architecture, or a new input setting, changes this module only.
"""

import dataclasses
from typing import Any

from ytlabel.data.examples import CLASSES, InputOptions
from ytlabel.models.spec import EncoderRef, make_spec

ENSEMBLE = "ensemble"  # spec.json's arch of a run that averages other runs (registry/ensemble.py packs one)
RECORDED_OPTIONS = ("max_frames", "stride", "l2_normalize")  # with level and target: how the run reads inputs


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A run's model and inputs.

    Attributes:
        arch: an architecture of `models.spec.ARCHITECTURES`, or ENSEMBLE.
        framework: torch or keras (an ensemble's: its members', joined with "+" when they differ).
        spec: the architecture's spec; an ensemble's is its {"members": [...], "combine": ...} record.
        options: how the model's inputs are prepared (level, frames, stride, normalisation, target).
    """

    arch: str
    framework: str
    spec: Any
    options: InputOptions

    @property
    def level(self) -> str:
        return self.options.level

    def to_record(self) -> dict:
        """spec.json: plain JSON values only, target left out when it is the default (older records have none)."""
        is_spec = dataclasses.is_dataclass(self.spec) and not isinstance(self.spec, type)
        spec = dataclasses.asdict(self.spec) if is_spec else dict(self.spec)
        return {
            "arch": self.arch,
            "framework": self.framework,
            "level": self.options.level,
            "spec": spec,
            **{name: getattr(self.options, name) for name in RECORDED_OPTIONS},
            **({"target": self.options.target} if self.options.target != CLASSES else {}),
        }

    @classmethod
    def from_record(cls, record: dict, encoder_path=lambda path: path) -> "RunSpec":
        """The RunSpec of a spec.json; `encoder_path(path)` says where the spec's encoder lies now (a registry
        version carries it beside the model). An ensemble's spec stays its record.

        Raises:
            ConfigError: an unknown architecture or setting (a record from another version of ytlabel).
        """
        options = InputOptions(
            level=record["level"],
            max_frames=record["max_frames"],
            stride=record["stride"],
            l2_normalize=record["l2_normalize"],
            target=record.get("target", CLASSES),
        )
        if record["arch"] == ENSEMBLE:
            return cls(ENSEMBLE, record["framework"], dict(record["spec"]), options)
        fields = dict(record["spec"])
        encoder = fields.pop("encoder", None)
        if encoder:
            encoder = EncoderRef(**{**encoder, "path": encoder_path(encoder["path"])})
        return cls(record["arch"], record["framework"], make_spec(record["arch"], encoder=encoder, **fields), options)
