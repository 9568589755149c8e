"""Real multi-process runs through the CLI: 2-rank DDP, 2-worker MultiWorkerMirroredStrategy, kill + resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ytlabel.data import synth

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "ytlabel", "train"]


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> str:
    """120 frame-level videos of 8-16 frames in 4 shards: enough steps to interrupt a run."""
    out = str(tmp_path_factory.mktemp("frames"))
    synth.generate(synth.SynthConfig(videos=120, shards=4, seed=11, frames=16), out)
    return os.path.join(out, "frame")


def _train(framework, data, out, *extra, workers=1):
    command = [
        *CLI,
        "--arch",
        "bilstm",
        "--framework",
        framework,
        "--data",
        data,
        "--out",
        out,
        "--workers",
        str(workers),
        "--config",
        "none",
        "epochs=3",
        "batch_size=4",
        "model.hidden=6",
        "model.dropout=0",
        "max_frames=16",
        "validation_fraction=0",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _digests(output: str) -> dict[int, str]:
    return {int(rank): digest for rank, digest in re.findall(r"rank (\d+) final weights sha256 (\w+)", output)}


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_two_processes_agree_and_report_world_size_2(frames_dir, tmp_path, framework):
    out = str(tmp_path / "run")
    done = _train(framework, frames_dir, out, workers=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    digests = _digests(done.stdout)
    assert set(digests) == {0, 1} and digests[0] == digests[1]
    result = json.load(open(os.path.join(out, "result.json")))
    assert result["world_size"] == 2 and result["epochs"] == 3
    # 120 videos in 4 shards of 30: each rank holds 2 shards, 60 videos, 15 batches of 4.
    assert result["steps_per_epoch"] == 15 and result["videos"] == 3 * 15 * 4 * 2


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_batch_norm_statistics_are_averaged_across_ranks(frames_dir, tmp_path, framework):
    # fc normalises its inputs and hidden layer; each rank's moving statistics see only its own batches
    # until the epoch end averages them, so the digests (every weight and statistic) agree only then.
    videos = os.path.join(os.path.dirname(frames_dir), "video")
    command = [
        *CLI,
        "--arch",
        "fc",
        "--framework",
        framework,
        "--data",
        videos,
        "--out",
        str(tmp_path / "run"),
        "--workers",
        "2",
        "epochs=2",
        "batch_size=4",
        "model.head_hidden=8",
        "validation_fraction=0",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    digests = _digests(done.stdout)
    assert set(digests) == {0, 1} and digests[0] == digests[1]


# The marker is each checkpoint's state file, written after its tensors: killed once it exists, the run has a
# whole checkpoint to resume from (killed between last.pt and state.json, it would rightly start over).
@pytest.mark.parametrize("framework, marker", [("torch", "state.json"), ("keras", os.path.join("keras", "state.json"))])
def test_killed_run_resumes_to_the_same_weights(frames_dir, tmp_path, framework, marker):
    extra = ["checkpoint_every_steps=10"] if framework == "torch" else []
    reference = _train(framework, frames_dir, str(tmp_path / "reference"), *extra)
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = str(tmp_path / "interrupted")
    command = [
        *CLI,
        "--arch",
        "bilstm",
        "--framework",
        framework,
        "--data",
        frames_dir,
        "--out",
        out,
        "--config",
        "none",
        "epochs=3",
        "batch_size=4",
        "model.hidden=6",
        "model.dropout=0",
        "max_frames=16",
        "validation_fraction=0",
        *extra,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = os.path.join(out, "checkpoints", marker)
    deadline = time.monotonic() + 120
    while not os.path.exists(checkpoint) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(out, "result.json")), "the run finished before it could be killed"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from epoch" in resumed.stderr
    result = json.load(open(os.path.join(out, "result.json")))
    assert result["epochs"] == 3
    rows = open(os.path.join(out, "curves.csv")).read().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0", "1", "2"]
    assert _digests(resumed.stderr) == _digests(reference.stderr)
