"""The torch trainer image's extras (`[torch,s3]`, images/Dockerfile.trainer-torch) in a fresh venv, installed
with the lock as constraints as the image does: its own verbs work, and every verb that needs another extra
says which one in one line instead of a traceback."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.slow
def test_the_torch_trainer_extras_alone(tmp_path, synth_dir):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "-c",
            os.path.join(ROOT, "requirements", "dev.lock"),
            f"{os.path.abspath(ROOT)}[torch,s3]",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    video, run = os.path.join(synth_dir, "video"), str(tmp_path / "run")

    def ytlabel(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "ytlabel"), *argv], capture_output=True, text=True, timeout=300)

    trained = ytlabel(
        "train",
        "--arch",
        "fc",
        "--framework",
        "torch",
        "--data",
        video,
        "--out",
        run,
        "epochs=1",
        "batch_size=8",
        "model.head_hidden=8",
        "validation_fraction=0",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert ytlabel("evaluate", "--model", run, "--data", video).returncode == 0
    for argv, extra in (
        (["report", run, "--out", str(tmp_path / "report")], "report"),
        (["train", "--arch", "fc", "--framework", "keras", "--data", video, "--out", run + "-k"], "keras"),
        (["serve", "--model", run], "serve"),
        (["platform", "render", "--arch", "fc", "--framework", "torch"], "pipeline"),
    ):
        done = ytlabel(*argv)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].endswith(f"pip install 'ytlabel[{extra}]'"), done.stderr
