"""The CLI-wide rule for expected mistakes, checked on the real console script in a fresh process: exit code
2, exactly one `ytlabel: error:` line, no traceback. Plus: a verb whose extra is missing names the extra, and
a server removes the model copy it pulled when it is stopped."""

import os
import re
import subprocess
import sys

import pytest

from ytlabel.registry import Registry

SCRIPT = os.path.join(os.path.dirname(sys.executable), "ytlabel")


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *argv], capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})}
    )


def _assert_one_line(done: subprocess.CompletedProcess, expected: str) -> None:
    errors = [line for line in done.stderr.splitlines() if line.startswith("ytlabel: error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(expected, errors[0]), errors[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["train", "--arch", "nope", "--framework", "torch", "--data", "x", "--out", "y"],
            "arch=.nope.: choose one of",
        ),
        (["train", "--arch", "fcc", "--framework", "torch", "--data", "x", "--out", "y"], "; did you mean 'fc'\\?$"),
        (
            ["train", "--arch", "fc", "--framework", "pytorch", "--data", "x", "--out", "y"],
            "framework='pytorch': choose one of \\('torch', 'keras'\\); did you mean 'torch'\\?$",
        ),
        (
            ["train", "--arch", "fc", "--framework", "torch", "--data", "/no/such/dir", "--out", "{tmp}/run"],
            "/no/such/dir: no such file or directory",
        ),
        (
            ["train", "--arch", "fc", "--framework", "torch", "--data", "{video}", "--out", "{tmp}/run", "epochs=many"],
            "epochs",
        ),
        (["evaluate", "--model", "{tmp}", "--data", "{video}"], "not a training run \\(no spec.json\\)"),
        (["data", "inspect", "{tmp}"], "no .tfrecord shards found"),
        (["registry", "list", "--registry", "gs://bucket"], "only file:// and s3:// registries exist"),
        (["registry", "show", "yt8m:0", "--registry", "{tmp}"], "the version after ':' must be a positive integer"),
        (["serve", "--model", "yt8m@champion"], "is not a directory; to serve a registry reference"),
        (["data", "peek", "{video}", "--batch-size", "1000"], "fewer videos than one batch"),
    ],
)
def test_expected_mistakes_are_one_line(synth_dir, tmp_path, argv, expected):
    values = {"tmp": str(tmp_path), "video": os.path.join(synth_dir, "video")}
    _assert_one_line(_run(*[arg.format(**values) for arg in argv], env={"YTLABEL_REGISTRY": ""}), expected)


@pytest.mark.slow
def test_a_missing_extra_is_named_with_its_install_command(fc_run, tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None; from ytlabel.cli import main; "
        f"sys.exit(main(['report', {fc_run!r}, '--out', {str(tmp_path / 'report')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    _assert_one_line(
        done,
        re.escape(
            "`ytlabel report` needs the 'report' extra (no module named 'matplotlib'): pip install 'ytlabel[report]'"
        ),
    )
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_a_server_removes_its_pulled_model_when_stopped(fc_run, tmp_path):
    from ytlabel.serving.server import running

    Registry(str(tmp_path / "reg")).push(fc_run, "yt8m")
    log = tmp_path / "serve.log"
    with running("--model", "yt8m:1", "--registry", str(tmp_path / "reg"), log_path=str(log)):
        [target] = re.findall(r"pulled yt8m:1 from \S+ into (\S+)", log.read_text())
        assert os.path.isfile(os.path.join(target, "manifest.json"))
    assert not os.path.exists(os.path.dirname(target))  # stopped with SIGTERM: the scratch directory is gone
