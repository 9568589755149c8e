"""Ensembles of finished runs, evaluated as one model: how GAP@20 grows as members are added.

Each member must already be evaluated on the same shards (its metrics.json); the script packs the first
k members for k = 2..n with `ytlabel ensemble` and evaluates each pack with `ytlabel evaluate`, so the
figures come from the same path a user would push and serve.

Prints progress to stderr and, as its last stdout line, a JSON object {members, ensembles}.

Usage: python benchmarks/ensemble.py --data EVAL_DIR RUN_DIR RUN_DIR... [--work DIR]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from common import run_metrics, run_ytlabel


def _gap(run: str) -> dict:
    metrics = run_metrics(run)
    return {key: round(metrics[key], 4) for key in ("gap_at_20", "hit_at_1", "genre_gap")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished, evaluated run directories, in the order to add them")
    parser.add_argument("--data", required=True, help="the evaluation shards the members were evaluated on")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-ensembles-")
    members = [{"run": os.path.basename(os.path.normpath(run)), **_gap(run)} for run in args.runs]
    ensembles = []
    for count in range(2, len(args.runs) + 1):
        out = os.path.join(work, f"ensemble-{count}")
        shutil.rmtree(out, ignore_errors=True)
        run_ytlabel("ensemble", *args.runs[:count], "--out", out)
        run_ytlabel("evaluate", "--model", out, "--data", args.data, "--batch-size", "256")
        ensembles.append({"members": [member["run"] for member in members[:count]], **_gap(out)})
        print(json.dumps(ensembles[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"members": members, "ensembles": ensembles}))


if __name__ == "__main__":
    main()
