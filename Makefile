# dbd_lightning — every target installs what it needs into .venv first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
# the exact versions every target installs (pyproject.toml declares ranges; `make lock` regenerates this)
LOCK    := requirements/lock.txt
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml Makefile $(LOCK) | cksum | cut -d' ' -f1)
OPENCV_CONTRIB := $(shell grep -m1 '^opencv-contrib-python-headless==' $(LOCK))
# `make lock`: pip-compile in its own venv (pip reads this machine's pip config, so torch's metadata
# comes from the local wheel store; uv would not look there)
LOCK_VENV ?= .venv-lock
# every extra but [app]: Gradio needs Pillow < 13, so the web app installs on demand (pip install -e '.[app]')
LOCK_EXTRAS := test export hf sweep slurm
PIP_TOOLS ?= pip-tools==7.7.0
# `make test-lowest`: a separate venv with every runtime dependency at its declared lower bound
LOWEST_VENV  ?= .venv-lowest
LOWEST_TESTS ?= tests/test_api.py tests/test_zoo.py tests/test_inference_backends.py tests/test_dffnet.py \
                tests/test_task.py tests/test_metrics.py tests/test_configs.py
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: help setup demo train test test-full test-lowest lock bench lint format clean wandb-sync

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile $(LOCK)
	$(PY) -m venv $(VENV)
	@# the lock (every extra but [app], exact versions; torch from the local wheel store), then the project itself
	$(BIN)/pip install -r $(LOCK)
	$(BIN)/pip install --no-deps -e .
	@# opencv-python-headless (for albumentations) and the contrib build both install `cv2`: put the
	@# contrib build (same version, a superset with cv2.ximgproc) last so the result never depends on order
	$(BIN)/pip install --no-deps --force-reinstall '$(OPENCV_CONTRIB)'
	$(PYTHON) -c "import cv2; assert hasattr(cv2, 'ximgproc'), 'cv2 without ximgproc'"
	@# the released models' ONNX graphs (not committed: 16 MB each), so their first photo needs no export
	$(PYTHON) -m dbd_lightning.zoo --build-graphs
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)  ## create .venv and install requirements/lock.txt (torch from the local wheel store)

lock:  ## regenerate requirements/lock.txt from pyproject.toml, every extra but [app] (ARGS=--upgrade: newest releases)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q '$(PIP_TOOLS)'
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(addprefix --extra ,$(LOCK_EXTRAS)) --strip-extras --quiet \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o $(LOCK) $(ARGS) pyproject.toml
	@c=$$(sed -n 's/^opencv-contrib-python-headless==//p' $(LOCK)); h=$$(sed -n 's/^opencv-python-headless==//p' $(LOCK)); \
	[ "$$c" = "$$h" ] || { echo "lock: opencv-contrib-python-headless $$c != opencv-python-headless $$h; pin both to one release in pyproject.toml"; exit 2; }

demo: $(STAMP)  ## train DFFNet (resnet18, 128 px) on synthetic data on the CPU, test, print the table
	$(PYTHON) -m dbd_lightning.train experiment=demo

train: $(STAMP)  ## python -m dbd_lightning.train $(ARGS), e.g. make train ARGS="model=dffnet data=synthetic"
	$(PYTHON) -m dbd_lightning.train $(ARGS)

test: $(STAMP)  ## fast offline CPU test suite (slow tests excluded)
	$(PYTHON) -m pytest -n 2 -q $(ARGS)

test-full: $(STAMP)  ## every test, slow ones included
	$(PYTHON) -m pytest -n 2 -q -m "" $(ARGS)

test-lowest:  ## fast subset (LOWEST_TESTS) against the lowest declared versions, in its own .venv-lowest
	$(PY) -m venv $(LOWEST_VENV)
	$(PY) requirements/lowest.py pyproject.toml > $(LOWEST_VENV)/lowest.txt
	$(LOWEST_VENV)/bin/pip install -c $(LOWEST_VENV)/lowest.txt -e . $$(grep -E '^(pytest|pytest-xdist)==' $(LOCK))
	$(LOWEST_VENV)/bin/pip freeze --exclude-editable > $(LOWEST_VENV)/installed.txt
	$(LOWEST_VENV)/bin/python -m pytest -n 2 -q -p no:cacheprovider $(LOWEST_TESTS) $(ARGS)

bench: $(STAMP)  ## benchmarks -> bench/results.json (ms/image, images/s, peak memory)
	$(PYTHON) -m dbd_lightning.bench --out bench/results.json $(ARGS)

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests

wandb-sync: $(STAMP)  ## upload offline W&B runs found under DBD_LOG_DIR or outputs/ (ARGS=--dry-run, RUNS="dirs")
	@runs="$(RUNS)"; [ -n "$$runs" ] || runs=$$(find "$${DBD_LOG_DIR:-outputs}" -type d -path '*/wandb/offline-run-*' -prune 2>/dev/null | sort); \
	if [ -z "$$runs" ]; then echo "no offline W&B runs under $${DBD_LOG_DIR:-outputs}"; exit 0; fi; \
	echo "syncing $$(echo $$runs | wc -w) run(s)"; WANDB_MODE=online $(BIN)/wandb sync --yes $(ARGS) $$runs

clean:
	rm -rf outputs multirun bench/*.json .pytest_cache
