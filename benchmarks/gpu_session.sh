#!/usr/bin/env bash
# The GPU measurements the open issues owe, as one call of a device session (15 minutes of device time in all,
# 10 minutes a call). From this machine's repo root, with the wheels of benchmarks/video_gpu.sh in .whl/ and
# vtest.avi in .vt/ (both ignored by git, so carried):
#   run(command="bash benchmarks/gpu_session.sh engine", carry=[".whl", ".vt"], timeout_s=600)    # #14 + #15
#   run(command="bash benchmarks/gpu_session.sh accuracy", carry=[".whl", ".vt"], timeout_s=600)  # #16
# engine: benchmarks/gpu.sh with a 400 s budget (#14), then benchmarks/video_gpu.sh with one repeat (#15, about
# 100 s); accuracy: benchmarks/accuracy.py --device cuda (#16, at most 10 minutes: needs a call of its own).
# Writes $OUT/<what>.tgz (the results folders, to unpack under benchmarks/results/) and $OUT/<what>.log, and
# prints each benchmark's own short table last.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?OUT is unset: this script runs on the device machine, where OUT is the folder that comes back}"
what=${1:-engine}
[[ $what == engine || $what == accuracy ]] || { echo "usage: bash benchmarks/gpu_session.sh engine|accuracy"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "installing the carried wheels failed: carry .whl (see benchmarks/video_gpu.sh)"; exit 1; }
export PYTHONPATH=src:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p ~/.cache/foldedcnn && cp .vt/vtest.avi ~/.cache/foldedcnn/ \
  || { echo "no .vt/vtest.avi: carry .vt"; exit 1; }
results=/tmp/gpu-results
mkdir -p "$results"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" || true
case "$what" in
  engine)
    timeout 420 bash benchmarks/gpu.sh --budget 400 --out "$results/engine" > "$OUT/engine.log" 2>&1
    echo "gpu.sh exit $?" | tee -a "$OUT/engine.log"
    MACHINE=video RESULTS=$results REPEATS=1 timeout 120 bash benchmarks/video_gpu.sh > "$OUT/video.log" 2>&1
    echo "video_gpu.sh exit $?" | tee -a "$OUT/video.log"
    tar -czf "$OUT/engine.tgz" -C "$results" engine
    tar -czf "$OUT/video.tgz" -C "$results" video
    tail -n 25 "$OUT/engine.log"
    tail -n 8 "$OUT/video.log"
    ;;
  accuracy)
    timeout 560 python3 benchmarks/accuracy.py --device cuda > "$OUT/accuracy.log" 2>&1
    echo "accuracy.py exit $?" | tee -a "$OUT/accuracy.log"
    tar -czf "$OUT/accuracy.tgz" benchmarks/results/accuracy-cuda.* 2>/dev/null
    tail -n 30 "$OUT/accuracy.log"
    ;;
esac
