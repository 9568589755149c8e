"""What `make images` says when it cannot build: one line without an engine, the image and the step when a
Dockerfile step fails."""

import os
import subprocess
import sys

import pytest

from tools.engine import EngineError
from tools.images import build_image
from ytlabel.platform import images

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_a_failed_step_names_the_image_and_the_step(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN echo preparing && exit 3\n")
    with pytest.raises(EngineError) as failed:
        build_image(engine, "ytlabel-serving", str(tmp_path), engine.image_id(images.BASE), "cpu",
                    dockerfile=str(tmp_path / "Dockerfile"), reference="localhost/ytlabel-broken:test")
    message = str(failed.value)
    assert message.startswith("building ytlabel-serving failed at Step 3/")
    assert "RUN echo preparing && exit 3" in message.splitlines()[0] and "preparing" in message
    assert engine.image_id("localhost/ytlabel-broken:test") is None


def test_no_engine_is_one_line_saying_what_to_install(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    os.symlink(sys.executable, bare / "python3")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "images.py")], capture_output=True, text=True,
                          env={"PATH": str(bare), "HOME": str(tmp_path)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "make images: no container engine found: apt-get install docker.io (or podman)\n"
