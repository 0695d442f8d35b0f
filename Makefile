# The two commands a newcomer needs: `make serve` and `make test` (see README.md).
# The interpreter .venv is made from: Debian's /usr/bin/python3 when it can make one (python3-venv
# installed, Python >= 3.11), else python3 from the PATH.  Debian's executable has libpython linked
# in; pyenv's default build (--enable-shared, no --enable-optimizations) took 8 % more CPU a
# search at a million articles, and served 5 % fewer requests a second (docs/scaling-log.md, stop 40).
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve test lint bench-relevance bench-latency bench-indexing bench-load clean-index

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

serve: setup
	$(BIN)/vnsearch serve --bootstrap samples --host $(HOST) --port $(PORT)

test: setup
	scripts/ensure-debian-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

bench-relevance: setup
	$(BIN)/python -m bench.relevance

bench-latency: setup
	$(BIN)/python -m bench.latency

bench-indexing: setup
	$(BIN)/python -m bench.indexing

bench-load: setup
	$(BIN)/python -m bench.load

clean-index:
	find index -mindepth 1 ! -name README.md -delete
