# The two commands a newcomer needs: `make serve` and `make test` (see README.md).
PYTHON ?= python3
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
