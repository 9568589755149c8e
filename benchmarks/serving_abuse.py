"""Serving under load and abuse: 10,000 requests at concurrency 32 against `ytlabel serve` (fc, PyTorch, on
127.0.0.1), 70 % valid and 30 % hostile or mistaken bodies (truncated JSON, wrong types and widths, NaN,
257 videos, binary junk, empty, a truncated V2 binary body). Records status counts, server errors (goal: 0),
p50/p99 latency of valid and invalid requests, and the server's RSS after a warm-up and at the end (goal:
growth <= 10 %). The traffic mix is tests/serving/abuse.py's.

Prints one JSON line. Usage: python benchmarks/serving_abuse.py [--requests 10000] [--concurrency 32]
"""

import argparse
import json
import os
import sys
import tempfile

from common import run_ytlabel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serving"))

from abuse import hammer

from ytlabel.registry import Registry
from ytlabel.serving.server import running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ytlabel-abuse-")
    data = os.path.join(work, "data")
    run_ytlabel("data", "synth", "--out", data, "--videos", "64", "--shards", "2", "--frames", "10")
    run = os.path.join(work, "fc-torch")
    run_ytlabel(
        "train",
        "--arch",
        "fc",
        "--framework",
        "torch",
        "--data",
        os.path.join(data, "video"),
        "--out",
        run,
        "epochs=1",
        "batch_size=16",
        "validation_fraction=0",
    )
    Registry(os.path.join(work, "registry")).push(run, "yt8m")
    with running(
        "--model", "yt8m:1", "--registry", os.path.join(work, "registry"), log_path=os.path.join(work, "serve.log")
    ) as url:
        figures = hammer(url, "yt8m", args.requests, args.concurrency)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
