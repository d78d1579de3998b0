#!/usr/bin/env bash
# Reproduces benchmarks/results/cpu-2core/ (throughput.csv, throughput.md, plots, machine.json).
# Every zoo model, f = 1..4 (ResNets: f = 1, 4 at batch 64), torch / compile / onnxruntime plus the
# eager fp32 NCHW baseline; 5 interleaved trials of one batch each. About 20 minutes on 2 cores.
# The lock keeps other heavy jobs of this project off the CPU while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python -m foldedcnn bench \
  --folds 1 2 3 4 --batch 1024 --batch-for resnet18-cifar10=64 resnet18-cifar100=64 \
  --backends torch compile onnxruntime --trials 5 --iterations 1 --warmup 1 --reprobe --machine cpu-2core "$@"
