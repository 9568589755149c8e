"""KFP v2 components, one folder per pipeline stage. Each calls ytlabel library functions only."""

import ytlabel

# The pipeline image (images/Dockerfile.pipeline), pinned to this package's version.
BASE_IMAGE = f"ghcr.io/ytlabel/ytlabel-pipeline:{ytlabel.__version__}"
