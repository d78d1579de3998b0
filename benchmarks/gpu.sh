#!/usr/bin/env bash
# Everything a GPU must show (issue #14) in at most 8 minutes; installs nothing. Writes
# benchmarks/results/gpu-<device name>/ (stages/*, throughput.csv, summary.md) and prints a short
# table last. Stages, budget and goals: benchmarks/gpu.py. Options: --budget S, --dry-run,
# --tiny --device cpu (the script's plumbing at test size), --out DIR.
# On the device machine: bash benchmarks/gpu.sh   (python3 there has torch, Triton, onnxruntime)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu.py "$@"
