"""Genres two ways on real YT8M data: a model trained on the 25 Vertical1 genres against genres derived
from a class model's 3,862 scores (the maximum class probability per genre), in both frameworks.

Trains `fc` with `target=genres` through the real CLI on the training shards (default: the 164 of the
development split) and evaluates it on shards 64:80. The derived side is a class run's own evaluation
(`genre_gap`, `genre_hit_at_1`, `per_genre_ap` in its metrics.json): pass finished class runs with
`--class-runs FRAMEWORK=RUN_DIR ...` (e.g. the learning-curve runs at 164 shards), or the script trains
them with the fc preset. Genre GAP is over every genre (GAP@25) on both sides.

Prints progress to stderr and, as its last stdout line, a JSON object {rows, per_genre}.

Usage: python benchmarks/genres.py --data DIR [--class-runs torch=RUN keras=RUN] [--work DIR]
"""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

from common import link_shards, run_metrics, run_ytlabel, shard_slice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--train-shards", default="0:64,80:180")
    parser.add_argument("--eval-shards", default="64:80")
    parser.add_argument(
        "--class-runs", nargs="*", default=[], help="FRAMEWORK=RUN_DIR of finished, evaluated class runs"
    )
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    shards = sorted(glob.glob(os.path.join(args.data, "*.tfrecord")))
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-genres-")
    train_dir = link_shards(
        [s for part in args.train_shards.split(",") for s in shards[shard_slice(part)]], os.path.join(work, "train")
    )
    eval_dir = link_shards(shards[shard_slice(args.eval_shards)], os.path.join(work, "eval"))
    class_runs = dict(item.split("=", 1) for item in args.class_runs)
    rows, per_genre = [], {}
    for framework in ("torch", "keras"):
        for target in ("genres", "classes"):
            out = class_runs.get(framework) if target == "classes" else None
            started = time.perf_counter()
            if out is None:
                out = os.path.join(work, f"fc-{framework}-{target}")
                shutil.rmtree(out, ignore_errors=True)
                run_ytlabel(
                    "train",
                    "--arch",
                    "fc",
                    "--framework",
                    framework,
                    "--data",
                    train_dir,
                    "--out",
                    out,
                    "--config",
                    "fc",
                    "validation_fraction=0",
                    f"target={target}",
                )
                run_ytlabel("evaluate", "--model", out, "--data", eval_dir, "--batch-size", "256")
            metrics = run_metrics(out)
            label = f"{framework}/{'trained on genres' if target == 'genres' else 'derived from classes'}"
            rows.append(
                {
                    "framework": framework,
                    "genres_from": target,
                    "genre_gap": round(metrics["genre_gap"], 4),
                    "genre_hit_at_1": round(metrics["genre_hit_at_1"], 4),
                    "videos": metrics["videos"],
                    "wall_s": round(time.perf_counter() - started, 1),
                }
            )
            per_genre[label] = {genre: round(ap, 4) for genre, ap in metrics["per_genre_ap"].items()}
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"rows": rows, "per_genre": per_genre}))


if __name__ == "__main__":
    main()
