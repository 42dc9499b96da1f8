# dbd_lightning — every target installs what it needs into .venv first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
OPENCV_CONTRIB := $(shell sed -n 's/.*"\(opencv-contrib-python-headless==[^"]*\)".*/\1/p' pyproject.toml)
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: help setup demo train test test-full bench lint format clean wandb-sync

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade-strategy only-if-needed -e '.[test]'
	@# opencv-python-headless (for albumentations) and the contrib build both install `cv2`: put the
	@# contrib build (same version, a superset with cv2.ximgproc) last so the result never depends on order
	$(BIN)/pip install --no-deps --force-reinstall '$(OPENCV_CONTRIB)'
	$(PYTHON) -c "import cv2; assert hasattr(cv2, 'ximgproc'), 'cv2 without ximgproc'"
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)  ## create .venv and install pinned dependencies (torch from the local wheel store)

demo: $(STAMP)  ## train DFFNet (resnet18, 128 px) on synthetic data on the CPU, test, print the table
	$(PYTHON) -m dbd_lightning.train experiment=demo

train: $(STAMP)  ## python -m dbd_lightning.train $(ARGS), e.g. make train ARGS="model=dffnet data=synthetic"
	$(PYTHON) -m dbd_lightning.train $(ARGS)

test: $(STAMP)  ## fast offline CPU test suite (slow tests excluded)
	$(PYTHON) -m pytest -n 2 -q $(ARGS)

test-full: $(STAMP)  ## every test, slow ones included
	$(PYTHON) -m pytest -n 2 -q -m "" $(ARGS)

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
