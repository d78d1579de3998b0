#!/usr/bin/env bash
# The GPU measurements the open issues owe, as device calls that fit a session (15 minutes of device time in all,
# 10 minutes and 64 MiB of carried files a call). What this machine keeps for them, ignored by git
# (.git/info/exclude), made by `bash benchmarks/gpu_carry.sh` (seconds; a new checkout has none of them):
#   .whl/        av==18.1.0 jsonschema jsonschema-specifications referencing rpds-py   (cp312 manylinux wheels)
#   .whl-nvdec/  pynvvideocodec==2.2.4
#   .vt/         vtest.avi (from ~/.cache/foldedcnn)
#   .fonts/      the game generator's fonts (data/_fonts.GAME_FONTS) under their /usr/share/fonts/truetype paths
#   .whl-acc/    jsonschema's wheels alone (training needs no PyAV, and .fm leaves no room for it)
#   .fm/         Fashion-MNIST's four .gz files (Debian's dataset-fashion-mnist; the device image has none)
# Calls, from the repo root here:
#   run(command="bash benchmarks/gpu_session.sh engine", carry=[".whl", ".vt"], timeout_s=600)
#       #14: benchmarks/gpu.sh at a 400 s budget, then benchmarks/upload_speed.py (the host's ceiling on
#       end-to-end, 30 s at most); #15: benchmarks/video_gpu.sh, CPU decoder pool (about 90 s)
#   run(command="bash benchmarks/gpu_session.sh nvdec", carry=[".whl", ".whl-nvdec"], timeout_s=290)
#       #15: video_gpu.sh with the CPU pool, NVDEC and the two at once (--decoder both; 4 and 7 sessions) side by
#       side, and decode-only in 16 processes at once; benchmarks/damaged_recording.py with the CPU pool and NVDEC
#       (45 s at most: what NVDEC makes of damaged packets); right after another call that carried .vt, on the machine
#       still warm (vtest.avi is in its cache: .vt does not fit beside both wheel folders; these two and the repo
#       came to 63.6 of the 64 MiB on 2026-11-28); then benchmarks/train_speed.py (about 40 s; the fonts
#       `accuracy` installed); 255 s at most
#   run(command="bash benchmarks/gpu_session.sh accuracy", carry=[".whl-acc", ".vt", ".fonts", ".fm"], timeout_s=600)
#       #16: benchmarks/accuracy.py --device cuda, 5 jobs at once (each task's original and control, then its other
#       runs each in its own; the H200 ran the 40-epoch recipe's four other tasks, a task per job, in 518 s,
#       Fashion-MNIST alone in 215); also runs-<task>.tgz, each task's runs without their last.safetensors. Then
#       `nvdec` fits the same session (about 70 s), `engine` does not.
#   run(command="bash benchmarks/gpu_session.sh kernels", timeout_s=320)
#       #14: tests/test_infer_triton_cuda.py (the compiled kernels' logits, 60 s at most), then
#       benchmarks/triton_kernels.py on noscope-coral and game-lol-gold-int, f = 1 and 4: the feature kernel
#       specialised to the network against the generic one, torch eager, and the peer (max-autotune, f = 1), side by
#       side, and the specialised kernel at four other tilings (BLOCK_P x warps x programs per SM); carries nothing
#       (290 s at most)
# Each writes $OUT/<mode>.tgz (results folders, to unpack under benchmarks/results/) and $OUT/<mode>.log, and
# prints the benchmarks' own short tables last.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?OUT is unset: this script runs on the device machine, where OUT is the folder that comes back}"
mode=${1:-engine}
[[ $mode == engine || $mode == nvdec || $mode == accuracy || $mode == kernels ]] || {
  echo "usage: bash benchmarks/gpu_session.sh engine|nvdec|accuracy|kernels"; exit 2; }
shift $(($# > 0))  # the rest: accuracy's extra arguments to accuracy.py (e.g. --tasks fashion-mnist)
wheels=(.whl/*.whl)
[[ $mode == nvdec ]] && wheels+=(.whl-nvdec/*.whl)
[[ $mode == accuracy ]] && wheels=(.whl-acc/*.whl)
export PYTHONPATH=src:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [[ $mode != kernels ]]; then  # the kernels need torch and Triton alone, which the image has
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}" \
    || { echo "installing ${wheels[*]} failed: carry the folders this script's header names"; exit 1; }
  mkdir -p ~/.cache/foldedcnn
  if [[ -d .fm ]]; then mkdir -p /usr/share/datasets/fashion-mnist && cp .fm/*.gz /usr/share/datasets/fashion-mnist/; fi
  if [[ -f .vt/vtest.avi ]]; then
    cp .vt/vtest.avi ~/.cache/foldedcnn/
  elif [[ ! -f ~/.cache/foldedcnn/vtest.avi ]]; then
    echo "no vtest.avi: carry .vt, or run 'nvdec' right after 'engine' while the machine is warm"; exit 1
  fi
fi
results=/tmp/gpu-results
mkdir -p "$results"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" || true
case "$mode" in
  engine)
    timeout 420 bash benchmarks/gpu.sh --budget 400 --out "$results/engine" > "$OUT/engine.log" 2>&1
    echo "gpu.sh exit $?" | tee -a "$OUT/engine.log"
    DECODERS=cpu MACHINE=video-cpu RESULTS=$results REPEATS=1 timeout 120 bash benchmarks/video_gpu.sh \
      > "$OUT/video-cpu.log" 2>&1
    echo "video_gpu.sh exit $?" | tee -a "$OUT/video-cpu.log"
    # the host's ceiling on end-to-end: uint8 batches into the GPU through the engine's pipeline memory, no model
    timeout 30 python3 benchmarks/upload_speed.py > "$OUT/upload_speed.log" 2>&1
    echo "upload_speed.py exit $?" | tee -a "$OUT/upload_speed.log"
    tar -czf "$OUT/engine.tgz" -C "$results" engine video-cpu
    tail -n 25 "$OUT/engine.log"
    tail -n 8 "$OUT/video-cpu.log"
    tail -n 9 "$OUT/upload_speed.log"
    ;;
  nvdec)
    MACHINE=video-nvdec RESULTS=$results REPEATS=1 NVDEC_SESSIONS="4 7" timeout 150 bash benchmarks/video_gpu.sh \
      > "$OUT/nvdec.log" 2>&1
    echo "video_gpu.sh exit $?" | tee -a "$OUT/nvdec.log"
    # what NVDEC makes of damaged packets, beside the CPU pool (rows, undecodable ones, or the video's error)
    timeout 45 python3 benchmarks/damaged_recording.py --device cuda --backend torch --decoders cpu gpu --workers 16 --long 5 \
      --share 0.005 --repeats 1 --out "$results/video-nvdec/damaged" > "$OUT/damaged.log" 2>&1
    echo "damaged_recording.py exit $?" | tee -a "$OUT/damaged.log"
    tar -czf "$OUT/nvdec.tgz" -C "$results" video-nvdec
    # the trainer with and without a wait for the GPU every step (the game generator's fonts: from `accuracy`)
    timeout 60 python3 benchmarks/train_speed.py --device cuda > "$OUT/train_speed.log" 2>&1
    echo "train_speed.py exit $?" | tee -a "$OUT/train_speed.log"
    tail -n 10 "$OUT/nvdec.log"
    tail -n 12 "$OUT/damaged.log"
    grep -v "^epoch=" "$OUT/train_speed.log" | tail -n 7
    ;;
  accuracy)
    if [[ -d .fonts ]]; then mkdir -p /usr/share/fonts/truetype && cp -rn .fonts/* /usr/share/fonts/truetype/; fi
    # ACC_SECONDS: the training's share of the call (less where the session has less device time left)
    timeout "${ACC_SECONDS:-560}" python3 benchmarks/accuracy.py --device cuda --jobs 5 "$@" > "$OUT/accuracy.log" 2>&1
    echo "accuracy.py exit $?" | tee -a "$OUT/accuracy.log"
    tar -czf "$OUT/accuracy.tgz" benchmarks/results/accuracy-cuda.*
    # each task's runs (best checkpoints, metrics, narrow stages) so that a table cut by the timeout can be
    # finished here: accuracy.py --device cuda --finished-only --runs <these> (not vtest's: its coral checkpoints,
    # 77 MB for its runs, do not fit the 16 MiB a returned file holds)
    for task in runs/accuracy-cuda/game-*/ runs/accuracy-cuda/fashion-mnist/; do
      find "$task" -type f ! -path '*/narrow/best.safetensors' ! \( -name last.safetensors ! -path '*/narrow/*' \) -print0 |
        tar -czf "$OUT/runs-$(basename "$task").tgz" --null -T -
    done
    tail -n 30 "$OUT/accuracy.log"
    ;;
  kernels)
    mkdir -p "$results/kernels"
    # the compiled kernels' logits against fp32 torch, every specialized model at f = 1..4 (as on 2026-11-27)
    parallel=(); python3 -c "import xdist" 2>/dev/null && parallel=(-n 8)  # the image had pytest-xdist on 11-27
    TRITON_INTERPRET=0 timeout 60 python3 -m pytest -q "${parallel[@]}" -p no:cacheprovider \
      tests/test_infer_triton_cuda.py > "$results/kernels/pytest-cuda.txt" 2>&1
    echo "pytest exit $?" | tee -a "$results/kernels/pytest-cuda.txt"
    timeout 230 python3 benchmarks/triton_kernels.py --models noscope-coral game-lol-gold-int --folds 1 4 \
      --tilings 128x4x2 64x4x4 64x8x2 128x8x1 --csv "$results/kernels/triton_kernels.csv" > "$OUT/kernels.log" 2>&1
    echo "triton_kernels.py exit $?" | tee -a "$OUT/kernels.log"
    cp "$OUT/kernels.log" "$results/kernels/"
    tar -czf "$OUT/kernels.tgz" -C "$results" kernels
    tail -n 2 "$results/kernels/pytest-cuda.txt"
    tail -n 42 "$OUT/kernels.log"
    ;;
esac
