"""The README: its file map matches the tree (every module is named, or its folder is, and every path it
names exists), and its quick start runs as written."""

import glob
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _file_map() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("```", text.index("## Files"))
    return text[start + 3 : text.index("```", start + 3)]


def test_every_module_is_in_the_file_map():
    block = _file_map()
    missing = []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "ytlabel", "**", "*.py"), recursive=True)):
        relative = os.path.relpath(path, ROOT)
        if os.path.basename(path) in ("__init__.py", "__main__.py"):
            continue
        if relative not in block and os.path.dirname(relative) + "/" not in block:
            missing.append(relative)
    assert missing == []


def test_every_path_in_the_file_map_exists():
    named = re.findall(r"^(\S+)\s", _file_map(), flags=re.MULTILINE)
    assert len(named) > 40
    gone = [name for name in named if not glob.glob(os.path.join(ROOT, name.replace("<stage>", "*")))]
    assert gone == []


def _quick_start() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("```bash", text.index("## Quick start"))
    return text[start + 7 : text.index("```", start + 7)]


@pytest.mark.slow
def test_the_quick_start_runs_from_shards_to_a_served_answer(tmp_path):
    """The quick start's lines, run by bash as written, on the package's two real shards (one to train on, one
    held out), with only the port chosen free; the server started in the background is stopped after."""
    import json
    import subprocess
    import sys

    from ytlabel.processes import free_port

    block = _quick_start()
    assert len(block.strip().splitlines()) <= 10  # "ten lines"
    port = free_port()
    sample = os.path.join(ROOT, "src", "ytlabel", "data", "assets", "sample")
    (tmp_path / "my-shards").mkdir()
    (tmp_path / "my-held-out-shards").mkdir()
    os.symlink(os.path.join(sample, "validate0000.tfrecord"), tmp_path / "my-shards" / "validate0000.tfrecord")
    os.symlink(os.path.join(sample, "validate0001.tfrecord"), tmp_path / "my-held-out-shards" / "validate0001.tfrecord")
    script = block.replace("make setup && . .venv/bin/activate", f"export PATH={os.path.dirname(sys.executable)}:$PATH")
    script = script.replace("8080", str(port)).replace("localhost:", "127.0.0.1:")
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\ntrap 'kill %1 2>/dev/null; wait' EXIT\n" + script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # curl adds no newline: the metadata and the answer share the last line
    last = done.stdout.strip().splitlines()[-1]
    metadata, end = json.JSONDecoder().raw_decode(last)
    answer = json.loads(last[end:])
    assert metadata["name"] == "yt8m-fc" and {tensor["name"] for tensor in metadata["inputs"]} == {
        "mean_rgb",
        "mean_audio",
    }
    assert answer["model_name"] == "yt8m-fc" and answer["model_version"] == "1"
    assert len(answer["predictions"]) == 2 and len(answer["predictions"][0]["labels"]) == 20
    assert json.load(open(tmp_path / "runs" / "fc-torch" / "metrics.json"))["videos"] > 250
