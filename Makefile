.PHONY: demo test test-unit services services-down migrate stop bench bench-queries venv clean dashboards

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

# The project's Python environment, rebuilt when pyproject.toml changes.
venv: $(STAMP)
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# Local PostgreSQL 15 + pg_cron (127.0.0.1:55432) and a one-node Kafka 4.x KRaft
# broker (127.0.0.1:59092), no Docker; writes .local/env. See scripts/services.sh.
services:
	bash scripts/services.sh up

# Stop both; data under .local/ is kept.
services-down: stop
	bash scripts/services.sh down

migrate: venv services
	. .local/env && $(BIN)/userflow migrate

# Everything running, 50,000 simulated events, a summary; the stack stays up.
demo: venv services migrate
	bash scripts/demo.sh

# Stop the demo's ingest and consumer.
stop:
	@for p in .local/demo/*.pid; do \
	  [ -f "$$p" ] || continue; \
	  kill -TERM -"$$(cat $$p)" 2>/dev/null || kill -TERM "$$(cat $$p)" 2>/dev/null || true; \
	  rm -f "$$p"; \
	done

test: venv services
	. .local/env && $(BIN)/python -m pytest tests -q

test-unit: venv
	$(BIN)/python -m pytest tests/unit -q

# The chart's copy of the Grafana dashboards (deploy/helm/userflow/files/dashboards/)
# made equal to dashboards/, their one source; run after editing a dashboard.
dashboards:
	bash scripts/sync-dashboards.sh

bench: venv services migrate
	. .local/env && $(BIN)/python -m bench.run

# The query API on 10 million simulated events (bench/queries.py); ARGS="--reuse" keeps them.
bench-queries: venv services
	. .local/env && $(BIN)/python -m bench.queries $(ARGS)

clean: services-down
	rm -rf .local $(VENV)
