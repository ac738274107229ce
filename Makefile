# Named tasks. Every target creates the virtual environment it needs on first use.
# Needs: Python 3.11+, Java 17+ and Maven (for the local Kafka broker); apt-get and dpkg-deb
# (Debian's prometheus package, for promtool and the Prometheus the tests run).

PYTHON ?= python3
# Options for `hub bench`, e.g. make bench BENCH_ARGS="--families 100 --skip state"
BENCH_ARGS ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Prometheus 2.42 and promtool from Debian's package, unpacked without root: the tests check
# deploy/prometheus/ with promtool and scrape a real worker with the real server.
PROMETHEUS := .hub/prometheus
PROMTOOL   := $(PROMETHEUS)/usr/bin/promtool
# pytest processes (pytest-xdist) sharing the one test broker. The tiers mostly wait on
# Kafka, SMTP and worker processes, so more processes than cores pays, even on two cores.
TEST_WORKERS ?= 4

.PHONY: help venv lint format typecheck test test-unit test-integration test-e2e demo bench chaos \
        chaos-short check-schemas \
        prometheus lint-rules kafka-start kafka-stop kafka-status clean

help:
	@echo "make demo        run the hub on a local Kafka broker; alerts land in .hub/mailbox/"
	@echo "make test        lint, type-check and run every test tier against a real broker"
	@echo "make test-unit   only the pure unit tests (no broker, seconds)"
	@echo "make bench       measure the hub against raw baselines (BENCH_ARGS=... for options)"
	@echo "make chaos       the fault harness, long mode (every fault, 200 families: about an hour)"
	@echo "make chaos-short the fault harness as CI runs it (a few minutes)"
	@echo "make lint        ruff check and ruff format --check"
	@echo "make typecheck   mypy --strict on the hub and the producer library"
	@echo "make check-schemas  every schema version fully compatible with the ones before it"
	@echo "make lint-rules  promtool: check the Prometheus config and rules, run the rules' unit tests"
	@echo "make kafka-start | kafka-stop | kafka-status   the local broker on its own"
	@echo "make clean       remove the virtual environment and .hub/ (jars, data, mailbox)"

$(STAMP): pyproject.toml producers/pyproject.toml devtools/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,rocksdb]' -e ./devtools
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

# The compatibility gate on the repository's schemas/, whatever HUB_SCHEMA_DIR says.
check-schemas: $(STAMP)
	$(BIN)/hub schemas check schemas

test: lint typecheck check-schemas $(PROMTOOL)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Fetched and unpacked beside its place and moved there whole, so an interrupted fetch is
# simply done again. `apt-get download` needs no root, only apt's package lists.
$(PROMTOOL):
	rm -rf $(PROMETHEUS).download && mkdir -p $(PROMETHEUS).download
	cd $(PROMETHEUS).download && apt-get download prometheus
	dpkg-deb -x $(PROMETHEUS).download/prometheus_*.deb $(PROMETHEUS).download/root
	rm -rf $(PROMETHEUS) && mv $(PROMETHEUS).download/root $(PROMETHEUS)
	rm -rf $(PROMETHEUS).download
	touch $@

prometheus: $(PROMTOOL)

lint-rules: $(PROMTOOL)
	$(PROMTOOL) check config deploy/prometheus/prometheus.yml
	$(PROMTOOL) test rules deploy/prometheus/rules.test.yml

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP) $(PROMTOOL)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

demo: $(STAMP)
	$(BIN)/hub demo

bench: $(STAMP)
	$(BIN)/hub bench $(BENCH_ARGS)

chaos: $(STAMP)
	$(BIN)/hub chaos --long

chaos-short: $(STAMP)
	$(BIN)/hub chaos --short

kafka-start: $(STAMP)
	$(BIN)/hub kafka start

kafka-stop: $(STAMP)
	$(BIN)/hub kafka stop

kafka-status: $(STAMP)
	$(BIN)/hub kafka status

clean:
	-test -x $(BIN)/hub && $(BIN)/hub kafka stop
	rm -rf $(VENV) .hub .pytest_cache .mypy_cache .ruff_cache .hypothesis
