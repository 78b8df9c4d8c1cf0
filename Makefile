# rlt: `make demo` runs the whole method on the embedded default; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt

.PHONY: install test test-unit test-e2e test-gpu test-cluster cluster-up cluster-down demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,serve,deepspeed,gguf]"
	# DeepSpeed on CPU compiles one op at first use (about 2 minutes): once here, not inside a timed run
	$(BIN)/python -c "from stages.training.launch import build_cpu_ops; build_cpu_ops()"
	touch $(STAMP)

# Two workers, one torch thread each: the tiny models are overhead-bound, and
# two-thread processes side by side oversubscribe a 2-core machine.
# `make test CLUSTER=up` (what CI runs, as root with apt) first brings up a Slurm
# cluster on this machine (scripts/slurm-cluster.sh: this machine as one node, and two
# more in network namespaces for multi-node jobs), so tests/cluster runs on a
# real Slurm; without one those tests are skipped and -rs prints one line saying how
# to enable them. Each node advertises RLT_SLURM_CPUS (default 8) CPUs: tiny test jobs
# run side by side.
CLUSTER ?=
export RLT_SLURM_CPUS ?= 8
test: install
ifeq ($(CLUSTER),up)
	bash scripts/slurm-cluster.sh up
endif
	# The fast lane first: tests/unit trains no model (about a minute on 2 cores), so a broken rule fails in a minute,
	# not after the runs of tests/e2e, faults and cluster.
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -x -n 2 tests/unit
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -x -n 2 -rs tests --ignore=tests/unit

test-cluster: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -rs tests/cluster

cluster-up:
	bash scripts/slurm-cluster.sh up

cluster-down:
	bash scripts/slurm-cluster.sh down

test-unit: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 tests/unit

test-e2e: install
	$(BIN)/python -m pytest -q tests/e2e

test-gpu: install
	$(BIN)/python -m pytest -q -m gpu tests/gpu

# glibc hands freed memory back to the system and faults it in again at every training step (millions of
# page faults in a demo); keeping it in the process runs the demo faster and computes the same numbers
# (docs/demo.md, "Wall time"). It also keeps the peak resident memory (about 1 GB here) in use.
demo: install
	MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 $(BIN)/rlt run demo
	$(BIN)/rlt report runs/demo --out runs/demo/report

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check rltcli stages tests benchmarks

clean:
	rm -rf runs .pytest_cache
