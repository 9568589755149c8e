"""`make demo`: the real pipeline function under kfp.local on embedded defaults.

Real YT8M videos for the video level (the 2,950 of samples/yt8m-video and the package's sample) and
synthetic videos for the frame level (no real frame-level data ships) -> expand -> every architecture x
both frameworks (+ the logistic and MoE baselines, + fc on the expansion) as local jobs with the
PyTorchJob/TFJob env contract -> evaluate -> report -> register the best model on real videos in a
file:// registry -> serve it with KServe on 127.0.0.1, ask about three real videos it never trained on,
print their true labels beside the predicted ones, stop the server. Prints where the report is.

Usage: python pipelines/run_local.py [--out .demo/pipeline] [--epochs 2] [--architectures a,b]
"""

import argparse
import builtins
import glob
import io
import os
import sys
import time

from kfp import local

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ytlabel_pipeline import ytlabel_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_SAMPLE = [
    os.path.join(ROOT, "src", "ytlabel", "data", "assets", "sample"),
    os.path.join(ROOT, "samples", "yt8m-video"),
]
ARCHITECTURES = "logistic,moe,fc,bilstm,stream_lstm,fc_stream_lstm"
# Video level (real, ~1,950 training videos): batches of 64 for 10 epochs, ~300 optimiser steps, which is
# where fc's learning curve stops being starved of steps (docs/benchmarks.md). Frame level (synthetic):
# small widths and short clips keep the trainings within minutes on 2 CPU cores; the clips are 20-40 s
# long, so the presets' min_frames=30 would drop videos: keep them all.
# moe keeps its preset's 5 epochs: its 2 x 3 x 3862 x 1152 weights make it the slowest video-level model.
VIDEO_LEVEL = ["batch_size=64", "epochs=10"]
DEMO_SETTINGS = {
    "all": ["batch_size=16"],
    "logistic": VIDEO_LEVEL,
    "moe": ["batch_size=64", "epochs=5"],
    "fc": VIDEO_LEVEL,
    "bilstm": ["model.hidden=32", "model.layers=1", "min_frames=0"],
    "stream_lstm": ["model.rgb_hidden=32", "model.audio_hidden=16", "min_frames=0"],
    "fc_stream_lstm": [
        "model.fc.head_hidden=512",
        "model.streams.rgb_hidden=32",
        "model.streams.audio_hidden=16",
        "min_frames=0",
    ],
}


NOISE = (
    "[KFP Executor",
    "{",
    "}",
    '"',
    "[",
    "]",
    "I0000",
    "W0000",
    "E0000",
    "WARNING: All log messages",
    "To enable the following instructions",
    "Traceback (most recent call last)",
)


class _Quiet(io.TextIOBase):
    """Drops the executor's JSON echo and TensorFlow's start-up lines from the streamed task logs,
    keeping the stages' own progress lines (ingest:, plan:, select:, ...) and everything else."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if not line.strip().startswith(NOISE) or line.strip().startswith("[rank"):
                self.stream.write(line + "\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".demo/pipeline")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--videos", type=int, default=600, help="synthetic (frame-level) videos")
    parser.add_argument("--architectures", default=ARCHITECTURES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="keep the executors' full logs")
    args = parser.parse_args()
    if not args.verbose:
        sys.stdout = _Quiet(sys.stdout)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=os.path.join(out, "kfp"), raise_on_error=True
    )
    started = time.monotonic()
    original_print = builtins.print  # kfp.local's ParallelFor can leave its indenting print behind
    print(
        "video-level models train on real YouTube-8M videos (samples/); frame-level models on synthetic videos,"
        " because no real frame-level data ships with the demo"
    )
    ytlabel_pipeline(
        data_source=",".join([*REAL_SAMPLE, "synthetic"]),
        synthetic_videos=args.videos,
        shard_fraction=1.0,
        eval_fraction=0.34,
        architectures=args.architectures.split(","),
        frameworks=["torch", "keras"],
        expansion_archs=["fc"],
        epochs=args.epochs,
        workers=args.workers,
        gpus_per_worker=0,
        train_settings=DEMO_SETTINGS,
        threshold=0.01,
        registry=f"file://{out}/registry",
        model_name="yt8m",
        run_root=os.path.join(out, "runs"),
        backend="local",
        encoder_rgb_dim=1536,
        encoder_audio_dim=192,
        encoder_epochs=3,
    )
    builtins.print = original_print
    reports = sorted(
        glob.glob(os.path.join(out, "kfp", "**", "comparison", "report.md"), recursive=True), key=os.path.getmtime
    )
    print(f"\npipeline finished in {time.monotonic() - started:.0f} s")
    print(
        f"comparison report: {reports[-1] if reports else '(none)'}"
        + (f" (and {reports[-1][:-3]}.html, plots inline)" if reports else "")
    )
    print(f"registry: file://{out}/registry")


if __name__ == "__main__":
    main()
