#!/usr/bin/env bash
# ablation-megabyte.sh [OUT] — MEGABYTE's variants at equal training FLOPs on the default corpus (issue 11):
# base (mb_demo), conv encoder (mb_conv_demo), cross-patch attention (mb_xpatch_demo), both, three levels
# (mb_3level_demo). The budget is mb_demo's training FLOPs for BASE_STEPS steps (default 150) of batch 16;
# every variant trains for budget / (its training FLOPs per byte x bytes per step) steps with the demo's
# settings, then `bytelm eval --split val` scores its whole validation split. Prints one TSV line per
# variant: name, steps, train FLOPs, val bpb (whole split), training bytes/s (bytes / elapsed of the run).
# Cost: about 5 x BASE_STEPS x 1.7 s on 2 cores (about 30 min at 150 on a shared machine), more when the machine is shared.
# Needs build/bytelm and data/corpus (scripts/data/fetch-corpus.sh). VARIANTS="base conv" runs a subset.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-runs/ablation}"
bin=build/bytelm
base_steps="${BASE_STEPS:-150}"
batch=16
variants="${VARIANTS:-base conv xpatch conv_xpatch 3level}"
mkdir -p "$out"
# conv + cross-patch: mb_demo with both keys (no preset of its own).
/usr/bin/python3 - "$out/mb_conv_xpatch_demo.json" <<'PY'
import json, sys
c = json.load(open("configs/mb_demo.json"))
c["conv_kernels"] = [3, 5, 7]
c["cross_patch"] = 4
json.dump(c, open(sys.argv[1], "w"))
PY
config_of() {
  case "$1" in
    base) echo configs/mb_demo.json ;;
    conv) echo configs/mb_conv_demo.json ;;
    xpatch) echo configs/mb_xpatch_demo.json ;;
    conv_xpatch) echo "$out/mb_conv_xpatch_demo.json" ;;
    3level) echo configs/mb_3level_demo.json ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}
flops_of() { "$bin" info --config "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["train_flops_per_byte"])'; }
bytes_per_step=$((batch * 512))
budget=$(/usr/bin/python3 -c "print($(flops_of configs/mb_demo.json) * $bytes_per_step * $base_steps)")
echo "budget: $budget training FLOPs (mb_demo x $base_steps steps of $bytes_per_step bytes)"
printf 'variant\tsteps\ttrain_flops\tval_bpb\ttrain_bytes_per_s\n'
for v in $variants; do
  cfg=$(config_of "$v")
  steps=$(/usr/bin/python3 -c "print(round($budget / ($(flops_of "$cfg") * $bytes_per_step)))")
  run="$out/$v"
  rm -rf "$run"
  "$bin" train --model megabyte --config "$cfg" --data data/corpus --out "$run" --steps "$steps" --batch $batch \
    --lr 2e-3 --warmup 30 --eval-every 0 --log-every 25 --seed 1 > "$run.log" 2>&1
  bpb=$("$bin" eval --ckpt "$run" --split val --batch 16 --json | /usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["bpb"])')
  rate=$(/usr/bin/python3 -c "
import json
m = [json.loads(l) for l in open('$run/metrics.jsonl') if '\"elapsed_s\"' in l]
print('%.0f' % (m[-1]['step'] * $bytes_per_step / m[-1]['elapsed_s']))")
  flops=$(/usr/bin/python3 -c "print('%.3g' % ($(flops_of "$cfg") * $bytes_per_step * $steps))")
  printf '%s\t%s\t%s\t%s\t%s\n' "$v" "$steps" "$flops" "$bpb" "$rate"
done
