#!/usr/bin/env bash
# The video job on a GPU machine (about 4 minutes on 16 cores): the CPU decoder pool on vtest.avi as it is
# (msmpeg4, which NVDEC cannot decode), then the same workloads transcoded to H.264 with the CPU pool and
# with NVDEC. 16 videos and one long video (vtest x 20). Results: ${RESULTS:-benchmarks/results}/$MACHINE/video-*/.
#
# Needs PyAV and PyNvVideoCodec. The GPU image has neither: carry them as wheels (README, "Label videos"):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0 pynvvideocodec==2.2.4
# and install them there first:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:src
set -euo pipefail
MACHINE=${MACHINE:-gpu}
DEST=${RESULTS:-benchmarks/results}/$MACHINE  # on the device machine: RESULTS=$OUT (6 files come back)
COMMON=(--device cuda --backend torch --videos 16 --long 20 --repeats 2 --workers 16)
python benchmarks/video.py "${COMMON[@]}" --decoder cpu --codec copy --out "$DEST/video-cpu-msmpeg4"
python benchmarks/video.py "${COMMON[@]}" --decoder cpu --codec h264 --out "$DEST/video-cpu-h264"
python benchmarks/video.py "${COMMON[@]}" --decoder gpu --codec h264 --out "$DEST/video-nvdec-h264"
