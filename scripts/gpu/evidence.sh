#!/usr/bin/env bash
# evidence.sh — the GPU plan in one device call of about 8 minutes, everything logged under $OUT:
#   1. builds the bytelm tool against python3's LibTorch (CUDA) with check.sh (its build stage only);
#   2. runs configs/experiments/evidence-gpu.json one run at a time under a deadline (DEADLINE_S seconds
#      from the start, default 430): a run starts only while MIN_RUN_S (default 45) seconds are left, and
#      is interrupted with SIGINT at the deadline, which saves a checkpoint (a later call resumes it);
#   3. publishes what is done: records (no checkpoints) and the report in $OUT/published
#      (scripts/report/publish.sh), the experiment's log in $OUT/experiment.log.
# Carry to the device: .deps (scripts/gpu/fetch-deps.sh) and data/corpus (the machine fetches nothing).
# Checkpoints stay in EXP_DIR (default /tmp/bytelm-evidence-gpu), outside $OUT, so nothing large comes back.
# Environment: OUT, BUILD_DIR (default build-cuda), DEVICE (default cuda), PLAN, EXP_DIR, DEADLINE_S,
# MIN_RUN_S, PYTHON (the torch to build against), QUICK=1 (budgets / 100), SKIP_BUILD=1 (use BUILD_DIR as is).
# Dry run on a CPU machine (the quick plan, small models):
#   SKIP_BUILD=1 BUILD_DIR=build DEVICE=cpu PLAN=configs/experiments/quick.json OUT=/tmp/ev-out scripts/gpu/evidence.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-$PWD/gpu-evidence-out}"
plan="${PLAN:-configs/experiments/evidence-gpu.json}"
exp="${EXP_DIR:-/tmp/bytelm-evidence-gpu}"
build="${BUILD_DIR:-build-cuda}"
device="${DEVICE:-cuda}"
deadline="${DEADLINE_S:-430}"
min_run="${MIN_RUN_S:-45}"
python="${PYTHON:-$(command -v python3)}"
mkdir -p "$out"
t0=$SECONDS
log() { echo "== [$((SECONDS - t0))s] $*" | tee -a "$out/summary.txt"; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "build ($build)"
  OUT="$out/build" BUILD_DIR="$build" BUILD_TARGET=bytelm SKIP_TESTS=1 SKIP_BENCH=1 PYTHON="$python" \
    scripts/gpu/check.sh >"$out/build.txt" 2>&1
  tail -4 "$out/build.txt"
fi
[[ -x "$build/bytelm" ]] || { log "no bytelm binary in $build: stopping"; exit 1; }
[[ -d data/corpus ]] || { log "data/corpus is missing (carry it)"; exit 1; }

mapfile -t names < <("$python" -c 'import json, sys; [print(r["name"]) for r in json.load(open(sys.argv[1]))["runs"]]' "$plan")
quick=()
[[ "${QUICK:-0}" == 1 ]] && quick=(--quick)
for name in "${names[@]}"; do
  left=$((deadline - (SECONDS - t0)))
  if ((left < min_run)); then
    log "run $name: not started ($left s left)"
    continue
  fi
  log "run $name (at most $left s)"
  timeout -s INT -k 30 "$left" "$build/bytelm" experiment run "$plan" --out "$exp" --only "$name" \
    --device "$device" "${quick[@]}" >>"$out/experiment.log" 2>&1
  rc=$?
  grep -E "experiment: run $name" "$out/experiment.log" | tail -1 | tee -a "$out/summary.txt"
  log "run $name: exit $rc$( ((rc == 124 || rc == 130)) && echo ' (deadline: interrupted, checkpoint saved)')"
done

log "publish"
BYTELM="$build/bytelm" scripts/report/publish.sh "$exp" "$out/published" --title "bytelm on one GPU: $(basename "$plan" .json)" \
  >"$out/publish.txt" 2>&1
log "publish exit $?"
tail -3 "$out/publish.txt"
log "done"
