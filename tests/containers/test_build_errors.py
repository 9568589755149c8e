"""What `make images` says when it cannot build: one line without an engine, the image and the step when a
Dockerfile step fails. And what a rebuild leaves behind: nothing but the new image."""

import os
import subprocess
import sys

import pytest

from tools.engine import EngineError
from tools.images import build_image, remove_dangling
from ytlabel.platform import images

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _build(engine, tmp_path, dockerfile: str, reference: str) -> str:
    """Builds `dockerfile` (its text) from the base as the serving image would be, tagged `reference`."""
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return build_image(
        engine,
        "ytlabel-serving",
        str(tmp_path),
        engine.image_id(images.BASE),
        "cpu",
        dockerfile=str(tmp_path / "Dockerfile"),
        reference=reference,
    )


def test_a_failed_step_names_the_image_and_the_step(engine, tmp_path):
    with pytest.raises(EngineError) as failed:
        _build(
            engine, tmp_path, "ARG BASE\nFROM ${BASE}\nRUN echo preparing && exit 3\n", "localhost/ytlabel-broken:test"
        )
    message = str(failed.value)
    assert message.startswith("building ytlabel-serving failed at Step 3/")
    assert "RUN echo preparing && exit 3" in message.splitlines()[0] and "preparing" in message
    assert engine.image_id("localhost/ytlabel-broken:test") is None


def test_a_rebuild_deletes_the_image_it_replaced_and_a_failed_build_leaves_nothing(engine, tmp_path):
    reference = "localhost/ytlabel-rebuilt:test"
    built = []
    for content in ("first", "second"):
        built.append(_build(engine, tmp_path, f"ARG BASE\nFROM ${{BASE}}\nRUN echo {content} > /made\n", reference))
    try:
        assert built[0] != built[1] and engine.image_id(reference) == built[1]
        assert engine.image_id(built[0]) is None  # untagged by the rebuild, then deleted
        with pytest.raises(EngineError):
            _build(
                engine,
                tmp_path,
                "ARG BASE\nFROM ${BASE}\nRUN echo kept > /step\nRUN exit 3\n",
                "localhost/ytlabel-broken:test",
            )
        if engine.own:  # our own daemon: the failed build's finished step goes too
            remove_dangling(engine)
            assert engine.run("images", "--quiet", "--filter", "dangling=true").stdout.split() == []
    finally:
        engine.run("rmi", reference, check=False)


def test_no_engine_is_one_line_saying_what_to_install(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    os.symlink(sys.executable, bare / "python3")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "images.py")],
        capture_output=True,
        text=True,
        env={"PATH": str(bare), "HOME": str(tmp_path)},
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "make images: no container engine found: apt-get install docker.io (or podman)\n"
