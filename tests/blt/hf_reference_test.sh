#!/usr/bin/env bash
# hf_reference_test.sh BYTELM SOURCE_DIR [PYTHON] — bytelm's BLT bpb equals scripts/parity/blt_reference.py (a plain
# PyTorch transcription of Hugging Face's BltForCausalLM forward) on a trained tiny BLT with entropy
# patching, with and without max_patch_length, a global input projection and encoder cross-attention
# after every layer; where transformers' BltForCausalLM is importable, also against HF's own code
# (scripts/parity/hf_parity.py). Exits 77 (skipped) when python3 has no torch.
set -euo pipefail
bytelm="$1"
src="$2"
# PYTHON (the checkout's .venv here); else whichever python3 has torch (and, on the GPU machine, transformers).
py=""
for candidate in ${3:-} python3; do
  if "$candidate" -c "import torch" 2>/dev/null; then py="$candidate"; break; fi
done
[[ -n "$py" ]] || { echo "no python3 with torch: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/corpus"
"$py" - "$dir" <<'PY'
import random, sys
random.seed(3)
words = ["the", "whale", "ship", "sea", "captain", "Ahab", "white", "and", "of", "a", "naïve", "—", "harpoon"]
open(sys.argv[1] + "/corpus/a.txt", "w").write(" ".join(random.choice(words) for _ in range(3000)))
open(sys.argv[1] + "/sample.txt", "w").write("Call me Ishmael. Some years ago — never mind how long precisely — having little money, "
                                             "I thought I would sail about a little and see the watery part of the world.")
PY
common=(--data "$dir/corpus" --steps 30 --batch 8 --eval-every 0 --log-every 30 --threads 1 --peak-flops 1e11)
"$bytelm" train --model entropy --config tiny --out "$dir/ent" "${common[@]}" 2>/dev/null
# Threshold for ~3 bytes per patch, so that patches of varied length appear.
th=$("$bytelm" patch --entropy-model "$dir/ent" "$dir/corpus/a.txt" --bytes-per-patch 3 --json | "$py" -c "import json,sys; print(json.load(sys.stdin)['threshold'])")
fail=0
for variant in plain split; do
  "$py" - "$src/configs/blt_tiny.json" "$dir/$variant.json" "$th" "$variant" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["patching_threshold"] = float(sys.argv[3])
if sys.argv[4] == "split":
    c["max_patch_length"] = 3
    c["cross_attn_k"] = 3                      # 3 x 32 != 64: token_embedding_projection
    c["encoder_config"]["num_hidden_layers"] = 2
    c["encoder_config"]["cross_attn_all_layers"] = True
json.dump(c, open(sys.argv[2], "w"))
PY
  "$bytelm" train --model blt --config "$dir/$variant.json" --entropy-model "$dir/ent" --out "$dir/blt_$variant" "${common[@]}" 2>/dev/null
  ours=$("$bytelm" eval --ckpt "$dir/blt_$variant" --data "$dir/sample.txt" --json --precision fp32)
  refs=("reference=$("$py" "$src/scripts/parity/blt_reference.py" "$dir/blt_$variant" "$dir/sample.txt" 2>/dev/null)")
  # Where Hugging Face transformers with BltForCausalLM is installed (the GPU machine), HF's own code too.
  if "$py" -c "from transformers import BltForCausalLM" 2>/dev/null; then
    refs+=("huggingface=$("$py" "$src/scripts/parity/hf_parity.py" "$dir/blt_$variant" "$dir/sample.txt" 2>/dev/null)")
  fi
  for r in "${refs[@]}"; do
    "$py" - "$ours" "${r#*=}" "$variant" "${r%%=*}" <<'PY' || fail=1
import json, sys
ours, ref = json.loads(sys.argv[1])["bpb"], json.loads(sys.argv[2])["bpb"]
ok = abs(ours - ref) < 1e-5
print(f"{sys.argv[3]}: bytelm {ours:.9f} {sys.argv[4]} {ref:.9f} {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY
  done
done
exit $fail
