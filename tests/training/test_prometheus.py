"""A real Prometheus server scrapes a training run; the series are read back through its HTTP API."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from ytlabel.processes import free_port, stop_processes

pytestmark = pytest.mark.slow


def _query(port: int, expression: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def test_prometheus_scrapes_the_trainer(synth_dir, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is needed: `make test` installs it (apt-get install prometheus)"
    metrics_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n"
        f"scrape_configs:\n  - job_name: ytlabel\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trainer = None
    try:
        _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=1).status == 200)
        trainer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ytlabel",
                "train",
                "--arch",
                "fc",
                "--framework",
                "torch",
                "--data",
                os.path.join(synth_dir, "video"),
                "--out",
                str(tmp_path / "run"),
                "epochs=400",
                "batch_size=4",
                "model.rgb_hidden=8",
                "model.head_hidden=8",
                "validation_fraction=0",
                f"metrics_port={metrics_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        series = _wait(lambda: _query(prometheus_port, 'ytlabel_train_videos_total{rank="0"} > 40'), timeout=90)
        assert series[0]["metric"]["job"] == "ytlabel" and float(series[0]["value"][1]) > 40
        assert float(_query(prometheus_port, "ytlabel_process_resident_memory_bytes")[0]["value"][1]) > 50e6
        assert _query(prometheus_port, "ytlabel_train_step_seconds_count > 0")
        assert _query(prometheus_port, "ytlabel_train_loss")[0]["metric"]["rank"] == "0"
    finally:
        stop_processes([trainer, server], grace_s=30)


def _wait(probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s")


def test_a_taken_metrics_port_is_a_clear_error(synth_dir, tmp_path):
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ytlabel",
                "train",
                "--arch",
                "fc",
                "--framework",
                "torch",
                "--data",
                os.path.join(synth_dir, "video"),
                "--out",
                str(tmp_path / "run"),
                "epochs=1",
                "model.head_hidden=8",
                f"metrics_port={port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert f"metrics_port: cannot serve metrics on 127.0.0.1:{port} (Address already in use)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "result.json").exists()
