#!/usr/bin/env bash
# update-presets.sh [BUILD_DIR] — rewrites configs/presets.tsv (preset name, parameters) from the models
# themselves (`bytelm info --json`). `--help`, the unknown-preset error and `bytelm info --presets` read it;
# the test test_presets fails when it is out of date, and test_readme when the README's table is.
# After changing a config: scripts/setup/update-presets.sh && build/bytelm info --presets --markdown (into README).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-build}/bytelm"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in configs/*.json; do
  name=$(basename "$f" .json)
  params=$("$bin" info --config "$f" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])')
  printf '%s\t%s\n' "$name" "$params" >>"$tmp"
done
mv "$tmp" configs/presets.tsv
trap - EXIT
echo "wrote configs/presets.tsv ($(wc -l <configs/presets.tsv) presets)"
