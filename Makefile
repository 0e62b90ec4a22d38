# Two commands: `make dev` runs the system, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

CHROMIUM := /usr/bin/chromium

.PHONY: dev test lint bench clean chromium

dev: $(READY)
	$(BIN)/quickdapp dev

test: $(READY) chromium
	$(BIN)/pytest

# The browser tests drive Debian's Chromium (Playwright's own browser downloads are not used).
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "NOTE: $(CHROMIUM) missing: install it (apt-get install chromium) or the browser tests skip"; \
	  fi; }

lint: $(READY)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(READY)
	$(BIN)/python bench/noop_throughput.py

# Installs once, and again only when the dependencies change.
$(READY): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .data
