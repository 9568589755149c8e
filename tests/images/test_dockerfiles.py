"""What can be checked of the Dockerfiles without a Docker engine."""

import json
import os
import re
import tomllib

import pytest

from ytlabel.cli import _parser

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGES = {  # Dockerfile -> the extras its stage needs (and no others)
    "Dockerfile.trainer-torch": {"torch", "s3"},
    "Dockerfile.trainer-keras": {"keras-cuda", "s3"},
    "Dockerfile.serving": {"serve", "torch", "keras"},
    "Dockerfile.pipeline": {"pipeline", "s3", "torch", "keras", "report"},
}


def _instructions(name: str) -> list[tuple[str, str]]:
    text = open(os.path.join(ROOT, "images", name)).read().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def _verbs(parser) -> dict:
    """The CLI's command tree: stage -> {verb: {}} (empty dict for stages without verbs)."""
    tree = {}
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            tree[name] = _verbs(sub) if sub._subparsers else {}
    return tree


def test_every_image_is_listed():
    assert sorted(name for name in os.listdir(os.path.join(ROOT, "images")) if name.startswith("Dockerfile")) == sorted(IMAGES)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_shape(name):
    steps = _instructions(name)
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2, "multi-stage: build the wheel in one stage, install it in another"
    for base in bases:
        assert re.match(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$", base), f"{base}: pin an exact version tag"
    assert [args for op, args in steps if op == "USER"] == ["10001"]
    [entrypoint] = [json.loads(args) for op, args in steps if op == "ENTRYPOINT"]
    assert entrypoint == ["ytlabel"]
    commands = [json.loads(args) for op, args in steps if op == "CMD"]
    tree = _verbs(_parser())
    for command in commands:
        if command[0].startswith("-"):
            continue
        assert command[0] in tree, f"CMD {command}: `ytlabel {command[0]}` does not exist"
        if tree[command[0]]:
            assert command[1] in tree[command[0]], f"CMD {command}: `ytlabel {command[0]} {command[1]}` does not exist"
        if "--help" not in command:
            _parser().parse_args(command)  # the flags exist and the required ones are given


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_images_install_the_extras_their_stage_needs(name):
    runs = " ".join(args for op, args in _instructions(name) if op == "RUN")
    installs = re.findall(r'ytlabel-\*\.whl\).*?pip install[^"]*"\$\{WHEEL\}\[([^\]]+)\]"', runs)
    assert len(installs) == 1, runs
    extras = set(installs[0].split(","))
    assert extras == IMAGES[name]
    declared = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]["optional-dependencies"]
    assert extras <= set(declared), f"undeclared extras {extras - set(declared)}"
