# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv from the pinned lock; `make setup` run twice installs nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ytlabel-installed
DEMO_DIR ?= .demo

.PHONY: setup test demo benchmark lock clean

setup: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(BIN)/python -m pytest -q

# Grows with each stage of the platform; today: synthetic data -> inspect -> load in both frameworks.
demo: setup
	rm -rf $(DEMO_DIR)
	@echo "== 1/4 synthetic YT8M v2 data (video, frame and oracle shards)"
	$(BIN)/ytlabel data synth --out $(DEMO_DIR)/synth --videos 200 --shards 4 --seed 7
	@echo "== 2/4 inspect: synthetic frame level, then the real YT8M sample shards"
	$(BIN)/ytlabel data inspect $(DEMO_DIR)/synth/frame
	$(BIN)/ytlabel data inspect src/ytlabel/data/assets/sample
	@echo "== 3/4 load a batch with the PyTorch loader (videos >= 100 s, every 2nd frame)"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework torch --min-frames 100 --stride 2 --max-frames 150
	@echo "== 4/4 the same batch through tf.data for Keras"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework keras --min-frames 100 --stride 2 --max-frames 150

benchmark: setup
	$(BIN)/python benchmarks/reader.py

# Re-pin after editing pyproject.toml's dependencies.
lock:
	rm -rf /tmp/ytlabel-lock-venv && $(PYTHON) -m venv /tmp/ytlabel-lock-venv
	/tmp/ytlabel-lock-venv/bin/pip install --quiet ".[dev]" setuptools wheel
	{ echo "# Pinned versions of everything the dev/test venv holds (all extras). Regenerate with 'make lock'."; \
	  /tmp/ytlabel-lock-venv/bin/pip freeze --exclude ytlabel | sed -e 's/+cpu$$//'; } > requirements/dev.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
