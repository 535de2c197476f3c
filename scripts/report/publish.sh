#!/bin/bash
# publish.sh EXPERIMENT_DIR OUT_DIR [experiment report options: --title T --note N ...]
# Makes an experiment's results committable: copies every run's record (plan, configs, entries, record.json,
# metrics.jsonl, trainer.json; compressor and robustness rows; no checkpoints) to OUT_DIR/records, then
# writes the report (index.html, README.md, plots) into OUT_DIR from those copies, so every number in it
# traces to a file committed beside it. BYTELM names the binary (default build/bytelm).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 EXPERIMENT_DIR OUT_DIR [--title T] [--note N]" >&2
  exit 2
fi
src=$1 out=$2
shift 2
bytelm=${BYTELM:-build/bytelm}
[ -f "$src/plan.json" ] || { echo "error: $src is not an experiment directory (no plan.json)" >&2; exit 2; }
[ -x "$bytelm" ] || { echo "error: no bytelm binary at $bytelm (set BYTELM)" >&2; exit 2; }
mkdir -p "$out/records"
(cd "$src" && find . -type f \( -name '*.json' -o -name '*.jsonl' \) -print0) |
  while IFS= read -r -d '' f; do
    mkdir -p "$out/records/$(dirname "$f")"
    cp "$src/$f" "$out/records/$f"
  done
"$bytelm" experiment report "$out/records" --out "$out" "$@"
echo "published: $out (records: $(du -sh "$out/records" | cut -f1))"
