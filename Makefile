# Two commands: `make dev` runs the system, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# anvil (local chain) and solc (test contracts) from npm, pinned in package-lock.json.
NODE_READY := node_modules/.ready

CHROMIUM := /usr/bin/chromium

.PHONY: dev test lint bench bench-chain bench-audit soak clean contracts chromium

dev: $(READY) $(NODE_READY) .env
	$(BIN)/quickdapp dev

# First run: the development settings (a local anvil chain included); edit .env afterwards.
.env:
	cp .env.example .env

test: $(READY) $(NODE_READY) chromium
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
	$(BIN)/lint-imports

# This system (audit on PostgreSQL, on SQLite, off) beside the stock Python bullmq Worker, Node
# BullMQ, dramatiq and a database-polling queue: drains, 50 ms jobs, latency, delays, enqueue,
# memory, audit lag; medians of 3 runs (8-11 minutes). Writes bench/results/bench.json,
# docs/benchmark.md and docs/benchmark.png. `--quick` for a 2-minute smoke run.
bench: $(READY) $(NODE_READY)
	$(BIN)/python -m bench.compare

# Installs once, and again only when the dependencies change.
$(READY): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Chaos soak: 100,000 mixed jobs through 2x50 while worker processes are SIGKILLed every ~2 s,
# Redis restarts twice and the database goes away three times for 10 s; every job is then
# checked against its audit rows (tests/soak/test_chaos.py; `make test` runs a short form).
soak: $(READY) $(NODE_READY)
	SOAK_JOBS=100000 SOAK_SECONDS=240 SOAK_KILL_EVERY=2 SOAK_REDIS_RESTARTS=2 SOAK_DB_OUTAGES=3 \
	  SOAK_DB_OUTAGE_SECONDS=10 SOAK_TIMEOUT=1500 SOAK_REPORT=bench/results/soak.json \
	  $(BIN)/pytest tests/soak -s -p no:cacheprovider

# The audit trail at production size: 3M rows in a throwaway PostgreSQL database (by COPY) and
# 1M in a SQLite file, every dashboard and CLI query timed, cleanupAuditLog beside an inserter.
# Writes bench/results/audit_scale.json and .md (the README's table). About 10 minutes.
bench-audit: $(READY)
	PYTHONPATH=. timeout 3600 $(BIN)/python bench/audit_scale.py

bench-chain: $(READY) $(NODE_READY)
	$(BIN)/python -m bench.watch_chain_throughput --transfers 1000 --rounds 5

# Reinstalls only when package-lock.json changes (or node_modules is gone).
$(NODE_READY): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

contracts: $(NODE_READY)
	node scripts/compile_contracts.js

clean:
	rm -rf $(VENV) .data
