"""Training throughput, data wait and memory for every architecture x framework (prints JSON).

Every run is a real `ytlabel train` process reading real TFRecords written by the synthetic
generator; figures come from each run's result.json (rank 0):

  base      one epoch over the base dataset: videos/s, data-wait share of step time, peak RSS
  10x       one epoch over a dataset 10x larger: peak RSS growth (streaming loaders: goal <= 10 %)
  frames    frame-level archs at max_frames 75 / 150 / 300 (stride 1): videos/s
  workers   1 vs 2 local processes (DDP / MultiWorker on this machine's cores): videos/s

Frame-level models use smaller widths than their defaults (hidden 64) so that the whole grid runs on
2 CPU cores in minutes; video-level models use their defaults. The last stdout line is the JSON.
Usage: python benchmarks/training.py [--videos 512] [--work DIR] [--quick]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ytlabel.data import synth
from ytlabel.models.spec import ARCHITECTURES

FRAME_WIDTHS = {
    "bilstm": ["model.hidden=64", "model.layers=1"],
    "stream_lstm": ["model.rgb_hidden=64", "model.audio_hidden=32"],
    "fc_stream_lstm": [],
}


def run(arch: str, framework: str, data: str, out: str, *settings: str, workers: int = 1) -> dict:
    shutil.rmtree(out, ignore_errors=True)  # a leftover run directory would be resumed, not measured
    command = [
        sys.executable,
        "-m",
        "ytlabel",
        "train",
        "--arch",
        arch,
        "--framework",
        framework,
        "--data",
        data,
        "--out",
        out,
        "--workers",
        str(workers),
        "epochs=1",
        "batch_size=32",
        "validation_fraction=0",
        *FRAME_WIDTHS.get(arch, []),
        *settings,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    with open(os.path.join(out, "result.json")) as handle:
        result = json.load(handle)
    row = {
        "arch": arch,
        "framework": framework,
        "videos_per_s": result["videos_per_s"],
        "data_wait_share": result["usage"]["data_wait_share"],
        "rss_mb_max": result["usage"]["rss_mb_max"],
        "cpu_percent_mean": result["usage"]["cpu_percent_mean"],
        "videos": result["videos"],
        "world_size": result["world_size"],
        "process_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=512)
    parser.add_argument("--work", default=None)
    parser.add_argument("--quick", action="store_true", help="2 archs only, for a smoke test of the script")
    parser.add_argument("--sections", default="base,frames,workers", help="which grids to run (comma-separated)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-train-bench-")
    datasets = {}
    for name, videos in (("base", args.videos), ("10x", 10 * args.videos)):
        path = os.path.join(work, name)
        if not os.path.exists(os.path.join(path, "synth.json")):
            synth.generate(synth.SynthConfig(videos=videos, shards=8, seed=1, frames=300), path)
        datasets[name] = path
    archs = ["fc", "bilstm"] if args.quick else list(ARCHITECTURES)
    report = {
        "base": [],
        "10x": [],
        "frames": [],
        "workers": [],
        "cores": os.cpu_count(),
        "videos_base": args.videos,
        "batch_size": 32,
        "gpu": None,
    }
    for arch in archs:
        level = ARCHITECTURES[arch].level
        for framework in ("torch", "keras"):
            tag = f"{arch}-{framework}"
            frames = [] if level == "video" else ["max_frames=150", "stride=2"]
            sections = args.sections.split(",")
            for name in ("base", "10x") if "base" in sections else ():
                report[name].append(
                    run(
                        arch,
                        framework,
                        os.path.join(datasets[name], level),
                        os.path.join(work, "runs", name, tag),
                        *frames,
                    )
                )
            if level == "frame" and "frames" in sections:
                for max_frames in (75, 150, 300):
                    row = run(
                        arch,
                        framework,
                        os.path.join(datasets["base"], level),
                        os.path.join(work, "runs", f"frames{max_frames}", tag),
                        f"max_frames={max_frames}",
                        "max_steps_per_epoch=6",
                    )
                    report["frames"].append({**row, "max_frames": max_frames})
            for workers in (1, 2) if "workers" in sections else ():
                row = run(
                    arch,
                    framework,
                    os.path.join(datasets["base"], level),
                    os.path.join(work, "runs", f"workers{workers}", tag),
                    *frames,
                    "max_steps_per_epoch=8",
                    workers=workers,
                )
                report["workers"].append({**row, "workers": workers})
    for base, large in zip(report["base"], report["10x"]):
        base["rss_growth_10x"] = round(large["rss_mb_max"] / base["rss_mb_max"] - 1.0, 4)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
