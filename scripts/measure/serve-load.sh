#!/usr/bin/env bash
# serve-load.sh [CKPT] — the load test of `bytelm serve` behind docs/serving.md's figures: serves CKPT (default: a
# MEGABYTE of the mb_demo preset trained for 1 step, made here; throughput does not depend on the weights)
# on 127.0.0.1 with 16 rows, and runs scripts/measure/serve-load.mjs with 1, 4, 8 and 16 concurrent streams.
# Environment: BIN (default build/bytelm), REQUESTS per stream (4), MAX_TOKENS (256), THREADS (1), SERVE_FLAGS
# (more serve flags, e.g. --no-prefix-reuse).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${BIN:-build/bytelm}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
ckpt="${1:-}"
if [[ -z "$ckpt" ]]; then
  mkdir -p "$work/corpus"
  for i in $(seq 200); do echo "Call me Ishmael. Some years ago - never mind how long precisely - having little money."; done > "$work/corpus/a.txt"
  "$bin" train --model megabyte --config demo --data "$work/corpus" --out "$work/ckpt" --steps 1 --batch 1 \
    --threads "${THREADS:-1}" --peak-flops 1e11 > "$work/train.log" 2>&1
  ckpt="$work/ckpt"
fi
"$bin" serve --ckpt "$ckpt" --port 0 --parallel 16 --max-queue 16 --threads "${THREADS:-1}" ${SERVE_FLAGS:-} > "$work/server.out" 2>&1 &
pid=$!
for _ in $(seq 600); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/server.out" | grep -o '[0-9]*$' || true)
  [[ -n "$port" ]] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
node scripts/measure/serve-load.mjs --url "http://127.0.0.1:$port" --streams 1,4,8,16 --requests "${REQUESTS:-4}" \
  --max-tokens "${MAX_TOKENS:-256}"
kill -TERM "$pid"
wait "$pid"
