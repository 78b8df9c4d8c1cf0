#!/usr/bin/env bash
# One-GPU benchmark of rlt (see benchmarks/gpu.py): one table on stdout, the same as JSON in --out.
#   benchmarks/gpu.sh [--out gpu-benchmark.json]   # one H100/H200, no network, about 6 minutes at most
#   benchmarks/gpu.sh --smoke                      # the same code on CPU with tiny shapes
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" benchmarks/gpu.py "$@"
