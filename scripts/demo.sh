#!/usr/bin/env bash
# demo.sh — the main job on a fresh machine: install, build (Release), fetch the default corpus, train the
# demo MEGABYTE on the CPU for a few minutes, print validation bits per byte and a generated sample.
# About 15 minutes on 2 cores, build included. STEPS=N shortens or lengthens the training.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_TARGET=bytelm scripts/build.sh build   # the tool only; the tests are built by test.sh
scripts/fetch-corpus.sh data/corpus
steps="${STEPS:-600}"
out=runs/demo
rm -rf "$out"
build/bytelm train --model megabyte --config demo --data data/corpus --out "$out" \
  --steps "$steps" --batch 16 --lr 2e-3 --warmup 50 --eval-every 100 --log-every 50
echo
echo "== validation bits per byte (the held-out tail of every file) =="
python3 - "$out/metrics.jsonl" <<'PY' 2>/dev/null || grep val_bpb "$out/metrics.jsonl" | tail -1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if "val_bpb" in l]
print(f"step {rows[-1]['step']}: validation {rows[-1]['val_bpb']:.4f} bits per byte")
PY
echo
echo "== sample (prompt: 'The whale') =="
build/bytelm generate --ckpt "$out" --prompt "The whale" --max-bytes 400 --temperature 0.8 --top-k 40 --seed 7
echo
