# One-command set-up: every target bootstraps .venv first (idempotent).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: install run test test-unit lab lint notebooks clean dashboard

install: $(STAMP)

# torch is pinned exactly (constraints.txt): on a CPU machine torch==2.13.0 resolves to the
# local CPU build, while an unpinned torch would pull several GB of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,lab]"
	@# notebook 50 lays graphs out with Graphviz's dot (a built-in layout is the fallback, said in the notebook)
	@command -v dot >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq graphviz >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null); \
	  else echo "note: Graphviz is missing (apt-get install graphviz); graphs use the built-in layout"; fi; }
	touch $(STAMP)

run: install                 ## execute the whole suite: make run ARGS="--profile default -p data=../shared/data/sst2"
	$(BIN)/python -m nbutils run $(ARGS)

test: install                ## unit tests + every notebook in smoke mode
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: install           ## unit tests only (fast)
	$(BIN)/python -m pytest -q -m "not notebooks" $(PYTEST_ARGS)

lab: install
	$(BIN)/jupyter lab notebooks/

PORT ?= 8866
dashboard: install           ## notebook 90 as an app (Voila, localhost only): make dashboard PORT=8866
	$(BIN)/python -m nbutils dashboard --serve --port $(PORT)

lint: install
	$(BIN)/ruff check nbutils tests tools

notebooks: install           ## rebuild notebooks/*.ipynb from notebooks/src/*.py (outputs empty)
	$(BIN)/python tools/py2nb.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
