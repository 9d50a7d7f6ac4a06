# desivoids: two commands on a fresh clone (Python 3.11 and nothing else installed):
#   make book   venv + install, mock sky, every stage notebook via papermill, Jupyter Book
#   make test   venv + install + what the tests need (PostgreSQL), then the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PARAMS ?= params/mock.yml

.PHONY: book test run install postgres sync clean

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

# PostgreSQL is required here: a test that cannot reach the server it started fails, not skips.
test: $(STAMP) postgres
	DESIVOIDS_REQUIRE_PG=1 $(BIN)/python -m pytest

# Regenerate every paired .ipynb from its .py source (the .py is the source of truth).
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/*.py

clean:
	rm -rf _build book/executed book/_mathjax
