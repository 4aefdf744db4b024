# groundup: every target sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
CORE   := $(VENV)/.installed-core
STAMP  := $(VENV)/.installed-dev

ESLINT := node_modules/.bin/eslint

.PHONY: demo test bench bench-gpu accuracy lint system-deps clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' Makefile | sed 's/:.*##/\t/'

# The package and what it needs to run (all `make demo` needs) ...
$(CORE): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# torch is pinned through constraints.txt: 2.13.0 is the CPU build on this disk,
	@# whereas an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install --quiet -c constraints.txt -e .
	touch $(CORE)

# ... and the test, benchmark and lint tools on top.
$(STAMP): $(CORE)
	$(PIP) install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

# Debian packages the tests use: Chromium for the browser tests and the real
# Fashion-MNIST IDX files. Installed when missing and we are root; otherwise the tests
# that need them say why they skip (and fail under CI=true).
system-deps:
	@if [ -x /usr/bin/chromium ] && [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium dataset-fashion-mnist; \
	else echo "note: install Debian's chromium and dataset-fashion-mnist for the full suite"; fi

demo: $(CORE)  ## train the article's two models on the bundled digits
	$(BIN)/groundup train --model linear --out runs/demo-linear
	$(BIN)/groundup train --model net --out runs/demo-net
	@echo; echo "== the two saved models, side by side, on the 200 validation digits =="
	$(BIN)/groundup evaluate runs/demo-linear
	$(BIN)/groundup evaluate runs/demo-net

test: $(STAMP) system-deps  ## run the whole test suite
	$(BIN)/python -m pytest -q

bench: $(STAMP) system-deps  ## the speed suite: ratios measured side by side
	@# fastai for the comparison, without its torchvision/spacy requirements; if it
	@# cannot be installed, the suite says so in its table and goes on
	@$(BIN)/python -c "import fastai" 2>/dev/null || $(PIP) install --quiet --no-deps \
		-c constraints.txt fastai==2.8.12 || echo "note: fastai not installed; its figures are skipped"
	$(BIN)/python bench/run.py

# A GPU machine brings its own CUDA build of torch: this target uses the venv's Python
# when there is one, else the system's, and never installs torch (whose pin is the CPU build)
bench-gpu:  ## GPU speed: s/epoch, time to accuracy, kernel share (without a GPU: says so, exits 0)
	PYTHONPATH=src $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) bench/gpu.py

accuracy: $(STAMP) system-deps  ## check the default settings reach the accuracy goals
	$(BIN)/python bench/accuracy.py

# ESLint for the page's JavaScript, from npm, pinned by package-lock.json, into a local
# node_modules (no global install; node and npm come from Debian).
$(ESLINT): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(ESLINT)

lint: $(STAMP) $(ESLINT)  ## ruff on the Python, eslint on the page's JavaScript
	$(BIN)/ruff check src tests bench
	$(ESLINT) src/groundup/web/static

clean:
	rm -rf $(VENV) node_modules runs/demo-linear runs/demo-net build src/*.egg-info  # never your own runs
