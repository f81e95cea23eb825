# The two commands of the README, plus benchmarks. Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test bench fuzz chaos lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## make run: start seismo on http://127.0.0.1:8765 (store in ./seismo-data, host collector on)
run: $(VENV)/.installed
	$(BIN)/seismo serve --data-dir ./seismo-data $(ARGS)

## make test: lint, type-check and the whole test suite
test: $(VENV)/.installed-test
	@test -x /usr/bin/chromium || (command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "note: chromium not installed; browser tests will be skipped")
	@command -v prometheus >/dev/null || (command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus \
		|| echo "note: prometheus not installed; PromQL comparison tests will be skipped")
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## make bench: the benchmarks of docs/benchmarks.md (by hand, not in CI)
bench: $(VENV)/.installed-test
	@command -v victoria-metrics >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics)
	$(BIN)/python bench/ingest.py $(ARGS)
	$(BIN)/python bench/fanout.py $(FANOUT_ARGS)
	@command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		prometheus prometheus-alertmanager)
	$(BIN)/python bench/alert_latency.py $(ALERT_ARGS)
	$(BIN)/python bench/rule_eval.py
	$(BIN)/python bench/predictions.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/detect_throughput.py
	$(BIN)/python bench/nab.py
	$(BIN)/python bench/forecast.py

## make fuzz: tests/fuzz with many random examples (FUZZ_ARGS="--examples 20000"); not CI
fuzz: $(VENV)/.installed-test
	$(BIN)/python bench/fuzz.py $(FUZZ_ARGS)

## make chaos: bench/chaos at full size (crash, overload, consumers, diskfull, clock); not CI
chaos: $(VENV)/.installed-test
	$(BIN)/python bench/chaos/run.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
