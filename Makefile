# rlt: `make demo` runs the whole method on the embedded default; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt

.PHONY: install test test-unit test-e2e test-gpu demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,serve,deepspeed]"
	touch $(STAMP)

# Two workers, one torch thread each: the tiny models are overhead-bound, and
# two-thread processes side by side oversubscribe a 2-core machine.
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -x -n 2 tests

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-e2e: install
	$(BIN)/python -m pytest -q tests/e2e

test-gpu: install
	$(BIN)/python -m pytest -q -m gpu tests/gpu

demo: install
	$(BIN)/rlt run demo
	$(BIN)/rlt report runs/demo --out runs/demo/report

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check rltcli stages tests benchmarks

clean:
	rm -rf runs .pytest_cache
