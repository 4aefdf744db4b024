# groundup: every target sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
CORE   := $(VENV)/.installed-core
STAMP  := $(VENV)/.installed-dev
NOTEBOOK_STAMP := $(VENV)/.installed-notebook

ESLINT := node_modules/.bin/eslint

.PHONY: demo test bench bench-gpu accuracy bench-publish readme-tables notebook lint system-deps clean help

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

# Debian packages the tests use: Chromium for the browser tests, the real Fashion-MNIST
# IDX files, and tmux for the test of the training display in a terminal. Installed
# when missing and we are root; otherwise the tests that need them say why they skip
# (and fail under CI=true).
system-deps:
	@if [ -x /usr/bin/chromium ] && [ -d /usr/share/datasets/fashion-mnist ] \
		&& command -v tmux >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium dataset-fashion-mnist tmux; \
	else echo "note: install Debian's chromium, dataset-fashion-mnist and tmux for the full suite"; fi

demo: $(CORE)  ## train the article's two models on the bundled digits
	$(BIN)/groundup train --model linear --out runs/demo-linear
	$(BIN)/groundup train --model net --out runs/demo-net
	@echo; echo "== the two saved models, side by side, on the 200 validation digits =="
	$(BIN)/groundup evaluate runs/demo-linear
	$(BIN)/groundup evaluate runs/demo-net
	@echo; echo "next: type 'source .venv/bin/activate' (then 'groundup --help'), or run .venv/bin/groundup"

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

# `make bench` and `make accuracy` write to bench/out/, which git ignores. The results
# committed beside the scripts (and quoted by the README) change only here, on purpose.
# A smoke run (--smoke: tiny sizes) checks the harness and is never published.
PUBLISHED := results accuracy distributed
bench-publish: $(CORE)  ## make bench/out/*.json the committed results, then the README's tables
	@ls bench/out/*.json >/dev/null 2>&1 || { echo "nothing in bench/out/: run make bench or make accuracy first"; exit 1; }
	@for f in $(PUBLISHED); do \
		if [ -f bench/out/$$f.json ]; then \
			if grep -q '"smoke": true' bench/out/$$f.json; then \
				echo "bench/out/$$f.json is a smoke run: not published"; exit 1; fi; \
			cp bench/out/$$f.json bench/$$f.json && echo "published bench/$$f.json"; \
		fi; \
	done
	$(MAKE) readme-tables

readme-tables: $(CORE)  ## write the README's accuracy and speed tables from bench/*.json
	$(BIN)/python bench/readme_tables.py

$(NOTEBOOK_STAMP): $(CORE)
	$(PIP) install --quiet -c constraints.txt -e '.[notebook]'
	touch $(NOTEBOOK_STAMP)

# JupyterLab on 127.0.0.1, in docs/. It prints the address (with its token) to open;
# it starts no browser, since a machine without a screen has none. Ctrl-C stops it.
# Jupyter refuses root unless told (containers often run as root).
notebook: $(NOTEBOOK_STAMP)  ## open docs/ in JupyterLab (prints the URL to open)
	$(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=docs \
		$(if $(filter 0,$(shell id -u)),--allow-root)


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
