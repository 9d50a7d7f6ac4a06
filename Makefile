# desivoids: two commands on a fresh clone (Python 3.11 and nothing else installed):
#   make book   venv + install, mock sky, every stage notebook via papermill, Jupyter Book
#   make test   venv + install + what the tests need (PostgreSQL), then the whole suite
# and, while working: make check   ruff and the fast tier (tests not marked slow or postgres)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PARAMS ?= params/mock.yml

.PHONY: book test check run install postgres browser lab bench sync clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# PostgreSQL binaries for the load tests (Debian packages, installed only where missing).
postgres:
	bash tests/pg_server.sh install

run: $(STAMP)
	$(BIN)/desivoids run --params $(PARAMS)

book: $(STAMP)
	$(BIN)/desivoids run --params $(PARAMS)
	$(BIN)/desivoids book

# Debian's headless Chromium for the browser test of the built book (installed only where missing).
browser:
	bash tests/browser.sh install

# PostgreSQL is required here: a test that cannot reach the server it started fails, not skips.
# The suite runs on every core (pytest-xdist; WORKERS=0 runs it in this process), a test file's
# tests on one worker and in order: several share a module fixture (a finished run) that some
# of them change in turn. (--dist loadgroup would group files further, but xdist 3.8 marks the
# groups in item._nodeid, which pytest 9 no longer reads: every test became its own group.)
# Files go out longest first (tests/conftest.py LONGEST_FIRST), not by xdist's test count.
WORKERS ?= auto
XDIST   := -n $(WORKERS) --dist loadfile --no-loadscope-reorder
test: $(STAMP) postgres browser
	DESIVOIDS_REQUIRE_PG=1 $(BIN)/python -m pytest $(XDIST)

# The fast tier, under 3 minutes on 2 cores: the linter (pyproject's [tool.ruff]) and every test
# not marked slow or postgres. `make test` runs everything, as CI does.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow and not postgres" -q $(XDIST)

# JupyterLab on 127.0.0.1:$(LAB_PORT) (the URL with its token is printed): notebooks/NN_stage.py
# opens as a notebook and saving writes its paired .ipynb (jupytext.toml).
LAB_PORT ?= 8888
lab: $(STAMP)
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.root_dir=. \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Every benchmark at DR1 scale into benchmarks/REPORT.md and REPORT.json (BENCH="environment
# load" runs some). Generates the DR1-scale mock once under data/bench/dr1 (~10 GB disk).
bench: $(STAMP) postgres
	$(BIN)/python benchmarks/run.py $(BENCH)

# Regenerate every paired .ipynb from its .py source (the .py is the source of truth).
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/*.py

clean:
	rm -rf _build book/executed book/_mathjax
