"""Learning curves on real YT8M video-level data: GAP@20 against training-set size, per model and framework.

The training shards (default: the 164 of ../shared's development split, indices 0:64 and 80:180 of the
sorted folder) are put in one seeded random order, and each size trains on a prefix of that order, so
every larger set contains every smaller one. Sizes double: 5, 10, 20, 41, 82 and 164 shards (about 1.5k
to 47.7k videos). Every run is evaluated on shards 64:80 through the real CLI (`ytlabel train`, `evaluate`).

Budget: each architecture's preset epochs, but never fewer than `--min-steps` optimiser steps, so the
smallest sets are not judged on a few dozen steps. With `--expansion`, fc is also trained on the
autoencoder expansion, the encoder learnt on the same prefix (no extra unlabelled data).

Prints progress to stderr and, as its last stdout line, a JSON object {rows, fits, settings}; `--out FILE`
also writes it there (`ytlabel report --learning-curves FILE` plots it). A fit is GAP@20 = a + b·log2(videos)
by least squares over the sizes: `b` is the gain per doubling of data.

Usage: python benchmarks/learning_curves.py --data DIR [--archs fc,logistic,moe] [--shards 5,10,20,41,82,164]
       [--frameworks torch,keras] [--expansion] [--min-steps 300] [--work DIR] [--out FILE]
"""

import argparse
import glob
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

from common import link_shards, run_metrics, run_ytlabel, shard_slice

PRESET_EPOCHS = {"logistic": 5, "moe": 5, "fc": 8}
FULL_TRAIN_VIDEOS = 3_888_919  # the YT8M v2 (2018) video-level training partition
BATCH = 256


def fit_per_doubling(points: list[tuple[int, float]]) -> dict:
    """Least squares of gap = a + b * log2(videos); returns b (per doubling), a, and the largest residual."""
    xs = [math.log2(videos) for videos, _ in points]
    ys = [gap for _, gap in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    intercept = mean_y - slope * mean_x
    residual = max(abs(y - intercept - slope * x) for x, y in zip(xs, ys))
    return {"per_doubling": round(slope, 4), "intercept": round(intercept, 4), "max_residual": round(residual, 4)}


def fit_saturating(points: list[tuple[int, float]]) -> dict:
    """GAP@20 = ceiling - a * videos^(-alpha), by a grid over the ceiling and least squares on the logs.

    Returns the ceiling, alpha, the prediction at the full 3.9M-video training set, and a back-test: the
    same fit on every size but the largest, and its error in predicting the largest. That error is what
    an extrapolation over one doubling can be trusted to; 3.9M is 6.3 doublings past 47.7k.
    """

    def fit(pairs: list[tuple[int, float]]) -> tuple[float, float, float]:
        best = None
        top = max(gap for _, gap in pairs)
        for step in range(1, 1000):
            ceiling = top + step * (1.0 - top) / 1000
            xs = [math.log(videos) for videos, _ in pairs]
            ys = [math.log(ceiling - gap) for _, gap in pairs]
            mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
            scale = math.exp(mean_y - slope * mean_x)
            error = sum((gap - (ceiling - scale * videos**slope)) ** 2 for videos, gap in pairs)
            if best is None or error < best[0]:
                best = (error, ceiling, scale, slope)
        return best[1], best[2], best[3]

    ceiling, scale, slope = fit(points)
    held_ceiling, held_scale, held_slope = fit(points[:-1])
    largest, measured = points[-1]
    return {
        "ceiling": round(ceiling, 4),
        "alpha": round(-slope, 4),
        "at_3_9m_videos": round(ceiling - scale * FULL_TRAIN_VIDEOS**slope, 4),
        "backtest_predicted_largest": round(held_ceiling - held_scale * largest**held_slope, 4),
        "backtest_measured_largest": measured,
    }


def count_videos(shards: list[str]) -> int:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    from ytlabel.data import stream

    return sum(stream.count_records(shards))


def _key(row: dict) -> tuple:
    return row["arch"], row["framework"], row["expansion"], row["shards"]


def _done(path: str | None) -> list[dict]:
    if path and os.path.exists(path):
        return json.load(open(path))["rows"]
    return []


def _write(path: str | None, result: dict) -> None:
    if path:
        with open(path + ".partial", "w") as file:
            json.dump(result, file, indent=1)
        os.replace(path + ".partial", path)


def _train_and_evaluate(
    arch: str, framework: str, expansion: bool, shards: list[str], work: str, eval_dir: str, args: argparse.Namespace
) -> dict:
    size = len(shards)
    train_dir = link_shards(shards, os.path.join(work, f"train-{size}"))
    videos = count_videos(shards)
    encoder = os.path.join(work, f"encoder-{size}")
    if expansion and not os.path.exists(os.path.join(encoder, "encoder.json")):
        run_ytlabel("expand", "--data", train_dir, "--out", encoder, "--epochs", "5", "--l2-normalize")
    epochs = max(PRESET_EPOCHS[arch], math.ceil(args.min_steps * BATCH / videos))
    out = os.path.join(work, "runs", f"{arch}-{framework}-{'expanded' if expansion else 'raw'}-{size}")
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    run_ytlabel(
        "train",
        "--arch",
        arch,
        "--framework",
        framework,
        "--data",
        train_dir,
        "--out",
        out,
        "--config",
        arch,
        "validation_fraction=0",
        f"seed={args.seed}",
        f"epochs={epochs}",
        *([f"encoder={encoder}"] if expansion else []),
    )
    wall = time.perf_counter() - started
    run_ytlabel("evaluate", "--model", out, "--data", eval_dir, "--batch-size", "256")
    metrics = run_metrics(out)
    return {
        "arch": arch,
        "framework": framework,
        "expansion": expansion,
        "shards": size,
        "videos": videos,
        "epochs": epochs,
        "steps": epochs * math.ceil(videos / BATCH),
        **{
            key: round(metrics[key], 4)
            for key in ("gap_at_20", "hit_at_1", "perr", "map", "genre_gap", "genre_hit_at_1")
        },
        "train_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of *.tfrecord video-level shards")
    parser.add_argument("--train-shards", default="0:64,80:180", help="comma-separated slices over the sorted shards")
    parser.add_argument("--eval-shards", default="64:80")
    parser.add_argument("--shards", default="5,10,20,41,82,164", help="training-set sizes in shards (prefixes)")
    parser.add_argument("--archs", default="fc,logistic,moe")
    parser.add_argument("--frameworks", default="torch,keras")
    parser.add_argument("--expansion", action="store_true", help="also train fc on the expansion at every size")
    parser.add_argument("--min-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="the shard order and every training's seed")
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    shards = sorted(glob.glob(os.path.join(args.data, "*.tfrecord")))
    train = [shard for part in args.train_shards.split(",") for shard in shards[shard_slice(part)]]
    evaluation = shards[shard_slice(args.eval_shards)]
    sizes = [int(size) for size in args.shards.split(",")]
    if not train or not evaluation or set(train) & set(evaluation) or max(sizes) > len(train):
        raise SystemExit(f"need disjoint train/eval shards and at most {len(train)} training shards per size")
    random.Random(args.seed).shuffle(train)
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-curves-")
    eval_dir = link_shards(evaluation, os.path.join(work, "eval"))
    runs = [
        (arch, framework, expansion)
        for arch in args.archs.split(",")
        for expansion in ((False, True) if args.expansion and arch == "fc" else (False,))
        for framework in args.frameworks.split(",")
    ]
    rows = _done(args.out)  # a rerun with the same --out resumes: finished rows are kept, not trained again
    for arch, framework, expansion in runs:  # whole curves first: an interrupted run leaves complete models
        for size in sizes:
            if any(_key(row) == (arch, framework, expansion, size) for row in rows):
                continue
            rows.append(_train_and_evaluate(arch, framework, expansion, train[:size], work, eval_dir, args))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            _write(args.out, {"rows": rows})
    fits = []
    for arch, framework, expansion in runs:
        points = [
            (row["videos"], row["gap_at_20"])
            for row in rows
            if (row["arch"], row["framework"], row["expansion"]) == (arch, framework, expansion)
        ]
        if len(points) >= 2:
            fits.append(
                {
                    "arch": arch,
                    "framework": framework,
                    "expansion": expansion,
                    **fit_per_doubling(points),
                    **(fit_saturating(sorted(points)) if len(points) >= 4 else {}),
                }
            )
    result = {
        "rows": rows,
        "fits": fits,
        "settings": {
            "train_shards": args.train_shards,
            "eval_shards": args.eval_shards,
            "seed": args.seed,
            "min_steps": args.min_steps,
            "eval_videos": count_videos(evaluation),
            "date": time.strftime("%Y-%m-%d"),
        },
    }
    _write(args.out, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
