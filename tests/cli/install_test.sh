#!/usr/bin/env bash
# install_test.sh BUILD_DIR — `cmake --install` gives a working bytelm: installed into a fresh prefix and run
# from another directory, it lists the presets, trains a tiny preset (configs found beside the binary, not
# in the sources) and writes an experiment report with the installed report package (without plots).
set -euo pipefail
build="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
bin="$tmp/prefix/bin/bytelm"
cd "$tmp"
"$bin" info --presets | grep -q " mb_tiny " || { echo "installed bytelm lists no presets"; exit 1; }
mkdir corpus
for i in $(seq 200); do printf 'it is a truth universally acknowledged. '; done >corpus/a.txt
"$bin" train --model megabyte --config tiny --data corpus --out run --steps 2 --batch 2 --threads 1 \
  --peak-flops 1e11 --eval-every 0 2>/dev/null
[[ -f run/model.safetensors ]] || { echo "installed bytelm did not train"; exit 1; }
[[ -d "$tmp/prefix/share/bytelm/scripts/report" ]] || { echo "report package not installed"; exit 1; }
echo "installed bytelm works from $tmp/prefix"
