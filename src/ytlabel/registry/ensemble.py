"""`ytlabel ensemble`: several finished runs packed as one run directory that averages their probabilities.

An ensemble is an ordinary run directory to every later stage (evaluate, report, registry push and pull,
serve), so it is evaluated, published and served as one model:

    spec.json     {"arch": "ensemble", "spec": {"members": [...], "combine": "mean_probability"}, ...}
    config.yaml   where each member came from
    result.json   the members' training figures
    model/members/<NN>-<run name>/   each member as a registry version holds it (spec, config, result,
                                     metrics, model/ and its encoder/), so the ensemble travels whole

The members are packed with the registry's own `collected_run`, so a member gets every check a pushed run
gets (finished, regular files only, finite figures, its encoder carried along). They must read their
inputs the same way (level, frames, stride, normalisation) and output the same labels (target): the ensemble
prepares one batch for all.
"""

import json
import os
import shutil

from ytlabel import runs, storage
from ytlabel.models.predictor import COMBINE, MEMBERS_DIR
from ytlabel.models.runspec import ENSEMBLE, RECORDED_OPTIONS, RunSpec
from ytlabel.registry.contents import collected_run
from ytlabel.registry.store import RegistryError

# How a member reads inputs and what it outputs: must agree, since the ensemble feeds one batch to all.
OPTIONS = ("level", *RECORDED_OPTIONS, "target")


def _pack_member(member: str, number: int, staging: str) -> tuple[str, dict, dict]:
    """Copies the finished run `member` into `staging`'s members folder; returns that folder (relative), the
    member's spec record as packed (its encoder path inside) and its line of the ensemble's result."""
    with collected_run(member) as (files, record):
        spec = json.loads(files[runs.SPEC])
        name = runs.run_name(spec["arch"], spec["framework"], bool(record["encoder"]))
        folder = f"{runs.MODEL_DIR}/{MEMBERS_DIR}/{number:02d}-{name}"
        for relative, source in files.items():
            target = os.path.join(staging, *folder.split("/"), *relative.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(source, bytes):
                storage.atomic_write(target, source)
            else:
                shutil.copyfile(source, target)
    result = {
        "run": member,
        "arch": spec["arch"],
        "framework": spec["framework"],
        "metrics": record["metrics"],
        **record["training"],
    }
    return folder, spec, result


def build_ensemble(members: list[str], out: str) -> dict:
    """Packs the finished runs `members` (local or s3://) into the new local run directory `out`; returns
    its spec record."""
    if len(members) < 2:
        raise RegistryError(f"an ensemble needs two or more runs, got {len(members)}")
    if os.path.exists(out) and os.listdir(out):
        raise RegistryError(f"{out}: not empty; an ensemble is written into a new directory")
    packed, records, results = [], [], []
    with storage.AtomicTarget(out, directory=True) as staging:  # the ensemble appears whole or not at all
        for number, member in enumerate(members):
            folder, spec, result = _pack_member(member, number, staging)
            packed.append(folder)
            records.append(spec)
            results.append(result)
        specs = [RunSpec.from_record(record) for record in records]
        disagree = [key for key in OPTIONS if len({getattr(spec.options, key) for spec in specs}) > 1]
        if disagree:
            raise RegistryError(
                f"the runs read their inputs differently ({', '.join(disagree)}: "
                f"{[getattr(spec.options, disagree[0]) for spec in specs]}); an ensemble feeds one batch to all"
            )
        frameworks = sorted({spec.framework for spec in specs})
        framework = frameworks[0] if len(frameworks) == 1 else "+".join(frameworks)
        spec_record = RunSpec(
            ENSEMBLE, framework, {"members": packed, "combine": COMBINE}, specs[0].options
        ).to_record()
        writer = runs.RunDir(staging)
        writer.write_json(runs.SPEC, spec_record)
        writer.write_yaml(runs.CONFIG, {"members": list(members), "combine": COMBINE})
        writer.write_json(
            runs.RESULT,
            {
                "arch": ENSEMBLE,
                "framework": spec_record["framework"],
                "members": results,
                "epochs": None,
                "train_loss": None,
                "videos_per_s": None,
                "usage": {},
                "train_s": round(sum(result.get("train_s") or 0 for result in results), 1),
                "params": sum(result.get("params") or 0 for result in results),
            },
        )
    return spec_record
