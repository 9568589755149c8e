"""What the benchmark scripts share. They run as `python benchmarks/<name>.py`, so this imports as `common`."""

import subprocess
import sys


def run_ytlabel(*args: str) -> None:
    """Runs `ytlabel ARGS` in a fresh process (as a user would); stops the benchmark with its stderr if it fails."""
    done = subprocess.run([sys.executable, "-m", "ytlabel", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ytlabel {' '.join(args)} failed:\n{done.stderr[-3000:]}")
