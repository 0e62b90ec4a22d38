# Two commands: `make dev` runs the system, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: dev test lint bench bench-workers clean

dev: $(READY)
	$(BIN)/quickdapp dev

test: $(READY)
	$(BIN)/pytest

lint: $(READY)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(READY)
	$(BIN)/python bench/noop_throughput.py

# The supervisor's processes x concurrency: no-op jobs/s and 2,000 jobs of 50 ms, medians of 3.
bench-workers: $(READY)
	$(BIN)/python bench/throughput.py

# Installs once, and again only when the dependencies change.
$(READY): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .data
