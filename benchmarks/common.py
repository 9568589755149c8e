"""What the benchmark scripts share. They run as `python benchmarks/<name>.py`, so this imports as `common`."""

import json
import os
import subprocess
import sys


def run_ytlabel(*args: str) -> None:
    """Runs `ytlabel ARGS` in a fresh process (as a user would); stops the benchmark with its stderr if it fails."""
    done = subprocess.run([sys.executable, "-m", "ytlabel", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ytlabel {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def shard_slice(text: str) -> slice:
    """ "64:80" -> slice(64, 80): a Python slice over the sorted shard list, as the CLI flags write it."""
    start, _, stop = text.partition(":")
    return slice(int(start) if start else None, int(stop) if stop else None)


def link_shards(shards: list[str], directory: str) -> str:
    """A directory of symlinks to `shards` (a training or evaluation set without copying data)."""
    os.makedirs(directory, exist_ok=True)
    for shard in shards:
        target = os.path.join(directory, os.path.basename(shard))
        if not os.path.exists(target):
            os.symlink(os.path.abspath(shard), target)
    return directory


def run_metrics(run: str) -> dict:
    """The metrics.json `ytlabel evaluate` wrote into a run directory."""
    with open(os.path.join(run, "metrics.json")) as file:
        return json.load(file)
