# Everything a fresh clone needs: `make demo` and `make test` create the virtualenv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint typecheck unit integration reliability bench schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/guidepost demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m unit

integration: $(STAMP)
	$(BIN)/pytest -m integration

reliability: $(STAMP)
	$(BIN)/pytest -m reliability

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.pipeline --json
	$(BIN)/python -m bench.forecast --json
	$(BIN)/python -m bench.scale --json

schemas: $(STAMP)
	$(BIN)/guidepost schemas export schemas/json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
