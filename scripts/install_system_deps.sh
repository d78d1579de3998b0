#!/usr/bin/env bash
# Installs the offline data foldedcnn uses, from Debian packages, when missing:
# fonts for the game-HUD generator, Fashion-MNIST, and vtest.avi from opencv-doc
# (only the video is extracted; the package is not installed); and chromium, in which the
# tests render the HTML page of `foldedcnn report` (headless).
set -euo pipefail

DATA_DIR="${FOLDEDCNN_CACHE:-$HOME/.cache/foldedcnn}"
FONTS=(fonts-dejavu-core fonts-dseg fonts-liberation2 fonts-hack)
need=()
for pkg in "${FONTS[@]}" dataset-fashion-mnist chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
VTEST="$DATA_DIR/vtest.avi"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

updated=0
apt_update() { [ "$updated" -eq 1 ] || { as_root apt-get update -qq; updated=1; }; }

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -s "$VTEST" ]; then
  mkdir -p "$DATA_DIR"
  if [ -s /usr/share/doc/opencv-doc/examples/data/vtest.avi ]; then
    cp /usr/share/doc/opencv-doc/examples/data/vtest.avi "$VTEST"
  else
    echo "extracting vtest.avi from Debian opencv-doc into $VTEST"
    tmp=$(mktemp -d)
    # apt-get download fetches as user _apt, which must be able to write here (else it warns and runs unsandboxed)
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    trap 'rm -rf "$tmp"' EXIT
    apt_update
    (cd "$tmp" && apt-get download -qq opencv-doc >/dev/null)
    dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb \
      | tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
    mv "$tmp/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$VTEST"
  fi
fi
echo "system data ready (vtest.avi at $VTEST)"
