#!/usr/bin/env bash
# dp-scaling.sh [CONFIG] [STEPS] — data-parallel scaling on this machine: the same global batch (8 windows)
# trained by 1 process x 1 thread, 1 process x 2 threads, and 2 processes x 1 thread over Gloo (2 x 4 rows),
# and the same 2 x 1 under torchrun (the checkout's .venv). Prints bytes/s (the mean of the
# logged intervals after the first, which holds start-up) and the efficiency of 2 x 1 against 1 x 1.
# Needs build/bytelm and data/corpus (scripts/data/fetch-corpus.sh). Default: tf_demo, 20 steps
# (about 3 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
config="${1:-tf_demo}"
steps="${2:-20}"
bin=build/bytelm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --model transformer --config "$config" --data data/corpus --steps "$steps" --log-every $((steps / 4))
        --eval-every 0 --eval-batches 1 --ckpt-every 0 --peak-flops 1e11 --lr 1e-3 --warmup 10)
rate() {  # mean bytes_per_s of the logged lines after the first
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
r = [x["bytes_per_s"] for x in rows[1:]] or [rows[-1]["bytes_per_s"]]
print(f"{sum(r) / len(r):.0f}")
PY
}
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

$bin "${common[@]}" --batch 8 --threads 1 --out "$tmp/p1t1" 2>/dev/null
one_one=$(rate "$tmp/p1t1/metrics.jsonl")
$bin "${common[@]}" --batch 8 --threads 2 --out "$tmp/p1t2" 2>/dev/null
one_two=$(rate "$tmp/p1t2/metrics.jsonl")
p=$(port)
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p \
    $bin "${common[@]}" --batch 4 --threads 1 --out "$tmp/p2t1" 2>/dev/null &
done
wait
two_one=$(rate "$tmp/p2t1/metrics.jsonl")
echo "config $config, global batch 8 windows, $steps steps, $(nproc) cores"
echo "1 process  x 1 thread : $one_one bytes/s"
echo "1 process  x 2 threads: $one_two bytes/s  (speed-up $(/usr/bin/python3 -c "print(f'{$one_two/$one_one:.2f}')"))"
echo "2 processes x 1 thread: $two_one bytes/s  (speed-up $(/usr/bin/python3 -c "print(f'{$two_one/$one_one:.2f}')"), efficiency $(/usr/bin/python3 -c "print(f'{$two_one/$one_one/2:.0%}')"))"
if [[ -x .venv/bin/torchrun ]]; then
  .venv/bin/torchrun --standalone --nproc-per-node 2 --no-python \
    $bin "${common[@]}" --batch 4 --threads 1 --out "$tmp/torchrun" >/dev/null 2>&1
  echo "2 processes x 1 thread under torchrun --standalone: $(rate "$tmp/torchrun/metrics.jsonl") bytes/s"
fi
