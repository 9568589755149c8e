"""Frame-level vs video-level on synthetic data where the ceiling is known (prints JSON, writes a report).

Generates synthetic v2 data at a noise level where the generator's oracle is imperfect (default 3:
oracle Hit@1 ~0.85), trains fc (video level) and bilstm, stream_lstm, fc_stream_lstm (frame level)
in both frameworks on all shards but the last, evaluates each on the last shard with the oracle
ceiling and the per-kind breakdown (temporal / audio / rgb / both classes), and builds the
comparison report (`ytlabel report`) into --report. bilstm and stream_lstm run with 64-unit LSTMs
so the grid fits 2 CPU cores; fc_stream_lstm ran at its default widths (256/64-unit streams, a
2048-unit fc head) when docs/results/synthetic_frame_level.json was recorded, a larger model than the
others; its parts can now be narrowed (model.fc.*, model.streams.*). It compares architectures at a small, fixed budget, not
their best possible scores.

Usage: python benchmarks/synthetic_frame_level.py [--videos 2400] [--noise 3] [--report docs/synthetic-report]
"""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

from common import run_metrics, run_ytlabel

from ytlabel.data import synth

RUNS = {  # arch -> (level, settings on top of the shipped preset)
    "fc": ("video", ["epochs=8", "batch_size=64"]),
    "bilstm": ("frame", ["epochs=6", "batch_size=32", "model.hidden=64", "model.layers=1"]),
    "stream_lstm": ("frame", ["epochs=6", "batch_size=32", "model.rgb_hidden=64", "model.audio_hidden=32"]),
    "fc_stream_lstm": ("frame", ["epochs=6", "batch_size=32"]),  # default widths, as recorded
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2400)
    parser.add_argument("--shards", type=int, default=6, help="the last shard is the evaluation set")
    parser.add_argument("--noise", type=float, default=3.0)
    parser.add_argument("--frames", type=int, default=60, help="longest video; shorter keeps LSTMs affordable")
    parser.add_argument("--archs", default=",".join(RUNS))
    parser.add_argument("--work", default=None)
    parser.add_argument("--report", default=None, help="directory for `ytlabel report` (e.g. docs/synthetic-report)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-synth-bench-")
    data = os.path.join(work, "synth")
    if not os.path.exists(os.path.join(data, synth.TRUTH)):
        synth.generate(
            synth.SynthConfig(videos=args.videos, shards=args.shards, seed=11, frames=args.frames, noise=args.noise),
            data,
        )
    rows, runs = [], []
    for arch in args.archs.split(","):
        level, settings = RUNS[arch]
        shards = sorted(glob.glob(os.path.join(data, level, "*.tfrecord")))
        eval_shard, train_dir = shards[-1], os.path.join(work, "train", level)
        os.makedirs(train_dir, exist_ok=True)
        for shard in shards[:-1]:
            if not os.path.exists(os.path.join(train_dir, os.path.basename(shard))):
                os.symlink(shard, os.path.join(train_dir, os.path.basename(shard)))
        for framework in ("torch", "keras"):
            out = os.path.join(work, "runs", f"{arch}-{framework}")
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
                *settings,
            )
            run_ytlabel("evaluate", "--model", out, "--data", eval_shard, "--batch-size", "64")
            metrics = run_metrics(out)
            row = {
                "arch": arch,
                "framework": framework,
                "level": level,
                "gap_at_20": round(metrics["gap_at_20"], 4),
                "hit_at_1": round(metrics["hit_at_1"], 4),
                "oracle_gap_at_20": round(metrics["oracle"]["gap_at_20"], 4),
                "map_by_kind": {
                    kind: None if value["map"] is None else round(value["map"], 4)
                    for kind, value in metrics["by_kind"].items()
                },
                "wall_s": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            runs.append(out)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.report:
        run_ytlabel("report", *runs, "--out", args.report)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
