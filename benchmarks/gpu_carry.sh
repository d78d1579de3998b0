#!/usr/bin/env bash
# Make, on this machine, the folders benchmarks/gpu_session.sh's device calls carry (its header lists them), and
# keep them out of git (.git/info/exclude): a new checkout has none of them, and a session lent a GPU should not
# spend its time rebuilding them by hand.
#   .whl/        PyAV and jsonschema's wheels for the device image (CPython 3.12, manylinux x86_64)
#   .whl-nvdec/  PyNvVideoCodec's wheel, the same way
#   .vt/         vtest.avi (make system-deps puts it in ~/.cache/foldedcnn)
#   .fonts/      the game generator's fonts (data/_fonts.GAME_FONTS) under their /usr/share/fonts/truetype paths
#   .whl-acc/    jsonschema's wheels alone, for the accuracy call
#   .fm/         Fashion-MNIST's .gz files (make system-deps installs them under /usr/share/datasets)
# Usage, from the repo root: bash benchmarks/gpu_carry.sh   (needs PyPI, and `make system-deps` done)
set -euo pipefail
cd "$(dirname "$0")/.."
fetch() {  # fetch DIR PACKAGE...: the device image's wheels of PACKAGE..., no dependencies beyond those named
  local dir=$1; shift
  rm -rf "$dir" && mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "$@"
}
fetch .whl av==18.1.0 jsonschema jsonschema-specifications referencing rpds-py
fetch .whl-nvdec pynvvideocodec==2.2.4
rm -rf .whl-acc && mkdir -p .whl-acc && cp .whl/*.whl .whl-acc/ && rm .whl-acc/av-*.whl
rm -rf .fm && mkdir -p .fm && cp /usr/share/datasets/fashion-mnist/*.gz .fm/
mkdir -p .vt && cp "${FOLDEDCNN_CACHE:-$HOME/.cache/foldedcnn}/vtest.avi" .vt/
rm -rf .fonts && mkdir -p .fonts
fonts=$(python3 -c "import ast  # the tuple as written in the source: no torch needed here
tree = ast.parse(open('src/foldedcnn/data/_fonts.py').read())
print(' '.join(next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], 'id', '') == 'GAME_FONTS')))")
for font in $fonts; do
  mkdir -p ".fonts/$(dirname "$font")" && cp "/usr/share/fonts/truetype/$font" ".fonts/$font"
done
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")" && touch "$exclude"
for dir in .whl .whl-nvdec .whl-acc .fm .vt .fonts; do grep -qxF "/$dir/" "$exclude" || echo "/$dir/" >> "$exclude"; done
du -sh .whl .whl-nvdec .whl-acc .fm .vt .fonts
