# desivoids: two commands on a fresh clone (Python 3.11 and nothing else installed):
#   make book   venv + install, mock sky, every stage notebook via papermill, Jupyter Book
#   make test   venv + install + what the tests need (PostgreSQL, MathJax), then the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PARAMS ?= params/mock.yml
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_mathjax/mathjax/tex-mml-chtml.js

.PHONY: book test run install mathjax postgres sync clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# Local MathJax for the book (the default would load it from a CDN at read time).
$(MATHJAX):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	mkdir -p .cache/npm book/_mathjax
	cd .cache/npm && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	rm -rf .cache/npm/package && tar -xzf .cache/npm/mathjax-$(MATHJAX_VERSION).tgz -C .cache/npm
	rm -rf book/_mathjax/mathjax && cp -r .cache/npm/package/es5 book/_mathjax/mathjax

mathjax: $(MATHJAX)

# PostgreSQL binaries for the load tests (Debian packages, installed only where missing).
postgres:
	bash tests/pg_server.sh install

run: $(STAMP)
	$(BIN)/desivoids run --params $(PARAMS)

book: $(STAMP) $(MATHJAX)
	$(BIN)/desivoids run --params $(PARAMS)
	$(BIN)/desivoids book

test: $(STAMP) $(MATHJAX) postgres
	$(BIN)/python -m pytest

# Regenerate every paired .ipynb from its .py source (the .py is the source of truth).
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/*.py

clean:
	rm -rf _build book/executed
