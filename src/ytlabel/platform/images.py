"""The images this project builds, named once: repository, name and tag (the package version).

Every image the pipeline, `ytlabel platform render`, the Helm chart and the docs refer to comes from
here, and each is built by the Dockerfile named beside it (tests/images holds both to that).
"""

import ytlabel

REPOSITORY = "ghcr.io/ytlabel"
DOCKERFILES = {  # image name -> the Dockerfile in images/ that builds it
    "ytlabel-trainer-torch": "Dockerfile.trainer-torch",
    "ytlabel-trainer-keras": "Dockerfile.trainer-keras",
    "ytlabel-serving": "Dockerfile.serving",
    "ytlabel-pipeline": "Dockerfile.pipeline",
}


def image(name: str, tag: str = ytlabel.__version__) -> str:
    """e.g. image("ytlabel-serving") -> ghcr.io/ytlabel/ytlabel-serving:<version>."""
    if name not in DOCKERFILES:
        raise KeyError(f"{name!r} is not an image this project builds; choose from {sorted(DOCKERFILES)}")
    return f"{REPOSITORY}/{name}:{tag}"


def trainer(framework: str) -> str:
    """The trainer image of a framework (torch -> ytlabel-trainer-torch, keras -> ytlabel-trainer-keras)."""
    return image(f"ytlabel-trainer-{framework}")


PIPELINE = image("ytlabel-pipeline")
SERVING = image("ytlabel-serving")
# The base every Dockerfile builds FROM: Debian bookworm + Debian's python3, made by `make images`
# (tools/images.py, mmdebstrap), so no image depends on a registry.
BASE = f"{REPOSITORY}/ytlabel-base:{ytlabel.__version__}"


def references() -> list[str]:
    """Every image `make images` builds, base first, as the pods, the pipeline and the chart name them."""
    return [BASE, *(image(name) for name in DOCKERFILES)]
