# Entry points. `make run` and `make test` are all a new machine needs (see README).
SHELL := /bin/bash
PY := .venv/bin/python
DEFAULT_MODEL := models/yolov8n/int8/yolov8n.xml
PYTEST_ARGS ?=
APP_ARGS ?=

.PHONY: run test lint bench clean

## run: set up, build the default INT8 model if missing, start the app
run:
	bash scripts/setup.sh run
	@test -f $(DEFAULT_MODEL) || .venv/bin/yolovino-quantize build-default
	.venv/bin/yolovino $(APP_ARGS)

## test: set up (incl. test deps), lint, and run the test suite; "no tests collected" (exit 5) counts as success
test:
	bash scripts/setup.sh test
	$(MAKE) --no-print-directory lint
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected (ok)"; exit 0; fi; exit $$rc

## lint: ruff (lint + format check), mypy (package strictly; tests and bench at mypy's default), import contracts
lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy yolovino app.py
	$(PY) -m mypy --no-check-untyped-defs tests
	$(PY) -m mypy --no-check-untyped-defs bench
	.venv/bin/lint-imports

## bench: the headline benchmarks (each prints a table and writes bench/results/*.json); see bench/README.md
bench:
	bash scripts/setup.sh test
	@test -f $(DEFAULT_MODEL) || .venv/bin/yolovino-quantize build-default
	$(PY) -m bench.engine_bench
	$(PY) -m bench.quantize_bench

## clean: remove the venv, generated models (keeps models/README.md) and caches
clean:
	rm -rf .venv .pytest_cache artifacts build *.egg-info
	find models -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
