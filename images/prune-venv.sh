#!/bin/sh
# Removes from a built venv what no image runs: C/C++ headers (no compiler is in any image, so no extension is
# ever built against them), packages' own test suites, and any pip cache. Sizes before and after are in
# docs/platform.md. Run in each Dockerfile's build stage: the final stage copies the pruned venv.
set -eu
venv="$1"
site="$venv/lib/python3.11/site-packages"
rm -rf "$site/torch/include" "$site/tensorflow/include" "$site"/nvidia/*/include
find "$site" -depth -type d -name tests -prune -exec rm -rf {} +
rm -rf /root/.cache
