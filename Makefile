# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-dev run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# A developer's loopback server answers without credentials unless CHECKER_AUTH is set;
# the service itself refuses CHECKER_AUTH=off on any non-loopback bind.
run: install
	CHECKER_AUTH=$${CHECKER_AUTH:-off} $(BIN)/mailpreflight serve

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -q

# Each benchmark stops by itself in under two minutes; they print ratios (see README: Benchmarks).
# bench.http uses wrk when it is installed (apt-get install wrk), else a Python load generator.
bench: install-dev
	$(BIN)/python -m bench.audit --recipients 10000 --domains 500 --mx 20
	$(BIN)/python -m bench.http --compare
	$(BIN)/python -m bench.cold
	$(BIN)/python -m bench.memory

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
