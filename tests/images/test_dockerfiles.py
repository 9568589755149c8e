"""What can be checked of the Dockerfiles by reading them (tests/containers builds and runs them)."""

import json
import os
import re
import tomllib

import pytest

from ytlabel.cli import _parser

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGES = {  # Dockerfile -> the extras its stage needs (and no others), per FLAVOUR where it has one
    "Dockerfile.trainer-torch": [{"torch", "s3"}],
    "Dockerfile.trainer-keras": [{"keras", "s3"}, {"keras-cuda", "s3"}],
    "Dockerfile.serving": [{"serve", "torch", "keras"}],
    "Dockerfile.pipeline": [{"pipeline", "s3", "torch", "keras", "report", "serve"}],  # serve: local deploy
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
    assert sorted(name for name in os.listdir(os.path.join(ROOT, "images")) if name.startswith("Dockerfile")) == sorted(
        IMAGES
    )


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_shape(name):
    from ytlabel.platform import images

    steps = _instructions(name)
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2, "multi-stage: install into a venv in one stage, copy the venv into the final one"
    assert set(bases) == {"${BASE}"}, "every stage builds FROM our own base (make images), no external image"
    assert steps[0] == ("ARG", f"BASE={images.BASE}"), "the base defaults to the one make images builds"
    assert [args for op, args in steps if op == "USER"] == ["10001"]
    entrypoints = [json.loads(args) for op, args in steps if op == "ENTRYPOINT"]
    commands = [json.loads(args) for op, args in steps if op == "CMD"]
    if name == "Dockerfile.pipeline":  # a KFP base image: each step brings its whole command
        assert entrypoints == [] and commands == [["ytlabel", "--help"]]
        return
    assert entrypoints == [["ytlabel"]]
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
    [install] = re.findall(r'pip" install [^"]*"ytlabel\[([^\]]+)\]"', runs)
    if install == "${EXTRAS}":  # chosen by FLAVOUR
        choices = [set(extras.split(",")) for extras in re.findall(r"\) EXTRAS=([\w,-]+) ;;", runs)]
    else:
        choices = [set(install.split(","))]
    assert sorted(map(sorted, choices)) == sorted(map(sorted, IMAGES[name]))
    declared = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]["optional-dependencies"]
    for extras in choices:
        assert extras <= set(declared), f"undeclared extras {extras - set(declared)}"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_images_install_the_tested_versions(name):
    # The wheelhouse (tools/images.py) is the build context: the lock as constraints.txt, no index reached.
    runs = " ".join(args for op, args in _instructions(name) if op == "RUN")
    assert re.search(r'pip" install --no-index [^"]*-c /wheelhouse/constraints\.txt "ytlabel\[', runs), runs


def test_every_image_referenced_is_one_a_dockerfile_builds():
    import yaml

    import ytlabel
    from ytlabel.platform import images

    assert sorted(images.DOCKERFILES.values()) == sorted(IMAGES)
    built = {images.image(name) for name in images.DOCKERFILES}
    # the pipeline's component image and its trainer defaults
    compiled = next(iter(yaml.safe_load_all(open(os.path.join(ROOT, "pipelines", "ytlabel_pipeline.yaml")))))
    executors = compiled["deploymentSpec"]["executors"].values()
    assert {executor["container"]["image"] for executor in executors} == {images.PIPELINE}
    # kfp is in the image: no step pip-installs anything when it starts (a cluster may reach no index)
    assert not [e for e in executors if "pip install" in " ".join(e["container"]["command"])]
    defaults = compiled["root"]["inputDefinitions"]["parameters"]
    assert {defaults[f"trainer_image_{f}"]["defaultValue"] for f in ("torch", "keras")} <= built
    # `platform render`'s default image
    for framework in ("torch", "keras"):
        args = _parser().parse_args(["platform", "render", "--arch", "fc", "--framework", framework])
        assert args.image is None and images.trainer(framework) in built
    # the chart: same repository, names the Dockerfiles build, appVersion = the package version
    values = yaml.safe_load(open(os.path.join(ROOT, "charts", "ytlabel", "values.yaml")))["image"]
    chart = yaml.safe_load(open(os.path.join(ROOT, "charts", "ytlabel", "Chart.yaml")))
    assert values["registry"] == images.REPOSITORY and chart["appVersion"] == ytlabel.__version__
    assert {values["serving"], values["pipeline"]} <= set(images.DOCKERFILES)
    # the docs
    docs = [
        os.path.join(ROOT, "README.md"),
        os.path.join(ROOT, "images", "README.md"),
        *(os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md")),
    ]
    mentioned = {match for path in docs for match in re.findall(r"ghcr\.io/ytlabel/([a-z0-9-]+)", open(path).read())}
    known = {reference.split("/")[-1].split(":")[0] for reference in images.references()}  # the base too
    assert mentioned and mentioned <= known, mentioned - known
