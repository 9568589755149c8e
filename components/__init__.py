"""KFP v2 components, one folder per pipeline stage. Each parses its artifacts, calls one function of
`ytlabel.pipeline`, and logs what it returns."""

from ytlabel.platform.images import PIPELINE as BASE_IMAGE  # noqa: F401  images/Dockerfile.pipeline
