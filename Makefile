# Endcap: `make run` serves the demo on :8080; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PORT ?= 8080

.PHONY: run test lint bench bench-kernel demo-data clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(PY) -m exchange serve --port $(PORT) --demo-if-empty

demo-data: $(STAMP)
	$(PY) -m exchange demo-data

test: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) loadtest/bench_kernel.py
	$(PY) loadtest/bench.py
	$(PY) loadtest/bench_reports.py

bench-kernel: $(STAMP)
	$(PY) loadtest/bench_kernel.py

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
