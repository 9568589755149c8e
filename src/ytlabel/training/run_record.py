"""What a run is, and whether a rerun is the same run.

A run directory says what it holds in three files: spec.json (the model: models.runspec.RunSpec's record),
config.yaml (every setting: the resolved TrainConfig) and data.json (the shards it reads, with their record
counts and a digest). `RunRecord` is the three as one value: training writes it before its first step, and a
rerun into the same directory builds its own and is refused at the first difference (`check_same_run`).
"""

import dataclasses
import json
import os

from ytlabel import runs
from ytlabel.config import TrainConfig
from ytlabel.errors import TrainingError
from ytlabel.runs import RunDir
from ytlabel.training import inputs

# Settings that say where a run's files are and how it is watched, not what it trains: a rerun may change them
# (a restarted pod, the same shards copied elsewhere). The data itself is compared through data.json.
OPERATIONAL = ("out", "data", "validation_data", "metrics_port", "metrics_host", "read_ahead")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """spec.json, config.yaml and data.json as one value. A part is None when a run directory does not hold it
    (a start that failed early, a run from before data.json)."""

    spec: dict | None
    settings: dict | None
    data: dict | None

    def write(self, run: RunDir) -> None:
        run.write_yaml(runs.CONFIG, self.settings)
        run.write_json(runs.SPEC, self.spec)
        run.write_json(runs.DATA, self.data)

    @classmethod
    def read(cls, run: RunDir) -> "RunRecord":
        return cls(
            spec=run.read_json(runs.SPEC) if run.exists(runs.SPEC) else None,
            settings=runs.read_config(run.local) if run.exists(runs.CONFIG) else None,
            data=run.read_json(runs.DATA) if run.exists(runs.DATA) else None,
        )

    def first_difference(self, wanted: "RunRecord", ignored_settings: tuple[str, ...] = ()) -> str | None:
        """The first way `wanted` is another run than this stored one, as `field: stored -> wanted`; None when
        they are the same run. Compared in order: the model, the settings but `ignored_settings`, the data (as
        one line of shards, videos and digest, then the validation shards). Parts this record lacks are skipped."""

        def settings(record: RunRecord) -> dict:
            return {key: value for key, value in _plain(record.settings).items() if key not in ignored_settings}

        pairs = (
            (self.spec, _plain(self.spec), _plain(wanted.spec)),
            (self.settings, settings(self), settings(wanted)),
            (self.data, _data_summary(self.data), _data_summary(wanted.data)),
        )
        for held, stored, new in pairs:
            changed = differences(stored, new) if held is not None else []
            if changed:
                return changed[0]
        return None


def _plain(record: dict | None) -> dict:
    """`record` as it reads back from its file (tuples become lists, dataclasses dicts)."""
    return json.loads(json.dumps(record or {}, default=runs.jsonable))


def _data_summary(record: dict | None) -> dict:
    """What data.json compares on: the training shards and counts in one line, then the validation shards."""
    record = record or {}
    train = record.get("train", [])
    validation = record.get("validation", [])
    return {
        "training data": f"{len(train)} shards, {sum(item['videos'] for item in train)} videos, "
        f"sha256 {record.get('sha256', '?')[:12]}",
        "validation data": f"{len(validation)} shards {', '.join(validation[:3])}".strip(),
    }


def differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Fields where two records disagree, as `field: stored -> wanted` (nested fields dotted)."""
    found = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return found


def run_record(config: TrainConfig, data: inputs.RunData) -> RunRecord:
    """What this run is: its spec, its settings and its data."""
    return RunRecord(spec=config.run_spec().to_record(), settings=config.to_dict(), data=data_record(data))


def data_record(data: inputs.RunData) -> dict:
    """data.json: the shards a run reads (names and record counts for training, names for validation)."""
    return {
        "train": [
            {"shard": os.path.basename(shard), "videos": count}
            for shard, count in zip(data.train_shards, data.train_counts)
        ],
        "validation": [os.path.basename(shard) for shard in data.validation_shards],
        **data.fingerprint(),
    }


def check_same_run(run: RunDir, config: TrainConfig, data: inputs.RunData) -> None:
    """A run directory holds one run: rerunning into it continues that run, so a rerun that would train another
    model, with other settings or on other data is refused, naming the first difference.

    Raises:
        TrainingError: what differs, and the two ways out (--force, a new --out).
    """
    stored = RunRecord.read(run)
    ignored: tuple[str, ...] = OPERATIONAL
    recorded_epochs = (stored.settings or {}).get("epochs", config.epochs)
    if config.schedule != "cosine" and isinstance(recorded_epochs, int) and recorded_epochs <= config.epochs:
        # More epochs continue the same run: with no schedule over the whole run, epoch k's batches and
        # learning rates do not depend on how many epochs there are in all.
        ignored = (*OPERATIONAL, "epochs")
    changed = stored.first_difference(run_record(config, data), ignored_settings=ignored)
    if changed:
        raise TrainingError(
            f"{config.out} holds another run ({changed}); nothing was changed: pass --force "
            f"to start over in it, or a new --out"
        )
