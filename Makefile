# Parcours developer commands. `make test` installs what it needs into .venv on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck pytest demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# constraints.txt pins every dependency to the versions the suite was run with (the worker's
# adapter is written against faust-streaming 0.15.3 and aiokafka 0.14); refresh it deliberately.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,chdb]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff format --check schemas streams tests
	$(BIN)/ruff check schemas streams tests

typecheck: install
	$(BIN)/mypy schemas streams/core streams/worker tests/core

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: install
	$(BIN)/parcours demo

clean:
	rm -rf $(VENV) .parcours .pytest_cache .mypy_cache .ruff_cache
