#!/usr/bin/env bash
# The video job on a GPU machine (about 2 minutes on 16 cores): vtest.avi transcoded to H.264 (NVDEC cannot
# decode its msmpeg4), 16 videos and one long video (vtest x 20), end-to-end with the CPU decoder pool and with
# NVDEC side by side in one run, and decode-only in 16 processes at once (the cores' decode capacity). Results:
# ${RESULTS:-benchmarks/results}/$MACHINE/video-h264/ (video.json, video.md).
#
# Needs PyAV and PyNvVideoCodec; the GPU image has neither (nor jsonschema): carry them as wheels, made so
# (benchmarks/gpu_carry.sh does; benchmarks/gpu_session.sh runs this script on the device in calls that fit):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0 pynvvideocodec==2.2.4 \
#     jsonschema jsonschema-specifications referencing rpds-py
# and install them there first:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
MACHINE=${MACHINE:-gpu}
DEST=${RESULTS:-benchmarks/results}/$MACHINE  # on the device machine: RESULTS=$OUT
mkdir -p "$DEST/video-h264"
lscpu > "$DEST/video-h264/lscpu.txt" || true  # cores against hardware threads: what "16 x decode-only" can mean
# DECODERS: which decoders run end to end (default cpu gpu both: the CPU pool, NVDEC, the two at once; cpu alone
# where PyNvVideoCodec was not carried);
# NVDEC_SESSIONS: NVDEC session counts to run --decoder gpu with, e.g. "4 7" (default: the job's)
python3 benchmarks/video.py --device cuda --backend torch --codec h264 --decoders ${DECODERS:-cpu gpu both} --workers 16 \
  --videos 16 --long 20 --workloads many long --repeats "${REPEATS:-2}" --yardstick-frames 3000 --decode-together \
  ${NVDEC_SESSIONS:+--nvdec-sessions $NVDEC_SESSIONS} \
  --out "$DEST/video-h264"
