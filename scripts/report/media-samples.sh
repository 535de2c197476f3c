#!/usr/bin/env bash
# media-samples.sh EXPERIMENT_DIR OUT_DIR — pictures and sounds from an experiment's image and audio models,
# so people can look and listen (issue 13). For every run of the plan on the `images` or `audio` data kind that
# has a checkpoint (EXPERIMENT_DIR/runs/NAME/train):
#   images  the held-out image of the first 8 files (each file's last 768 bytes, the whole validation split
#           at the plan's val_fraction 0.05 and 20 tiles a file): the model sees the top half (8 rows, 384 bytes) and writes the bottom half.
#           OUT_DIR/NAME.png: one row of 16 tiles, the 8 originals on the left, the 8 completions on the right.
#   audio   the first second of the first file's held-out tail (8,000 bytes), then 2 s the model writes after
#           it, prompted with the last 384 bytes of that second (48 ms: prompts must fit the 512-byte context):
#           OUT_DIR/NAME.wav holds the real second + the continuation (8 kHz unsigned 8-bit).
# Sampling: temperature 1, seed 1 (change with SEED). BYTELM names the binary (default build/bytelm).
set -euo pipefail
if (($# != 2)); then
  echo "usage: scripts/report/media-samples.sh EXPERIMENT_DIR OUT_DIR" >&2
  exit 2
fi
exp="$1" out="$2"
bytelm=${BYTELM:-build/bytelm}
seed=${SEED:-1}
[[ -f "$exp/plan.json" ]] || { echo "media-samples: $exp is not an experiment directory (no plan.json)" >&2; exit 2; }
[[ -x "$bytelm" ]] || { echo "media-samples: no bytelm binary at $bytelm (set BYTELM)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)

# "KIND NAME DATA_DIR VAL_FRACTION" for each image or audio run of the plan (the plan's first path of that data kind).
runs=$(/usr/bin/python3 - "$exp/plan.json" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))
for run in plan["runs"]:
    if run["data"] in ("images", "audio"):
        print(run["data"], run["name"], plan["datasets"][run["data"]][0], plan.get("val_fraction", 0.05))
EOF
)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
made=0
while read -r kind name data val_fraction; do
  [[ -n "$kind" ]] || continue
  ckpt="$exp/runs/$name/train"
  if [[ ! -d "$ckpt" ]]; then
    echo "media-samples: $name has no checkpoint ($ckpt); skipped" >&2
    continue
  fi
  [[ -d "$data" ]] || { echo "media-samples: $data: no such directory (run scripts/data/fetch-data.sh $kind)" >&2; exit 2; }
  files=$(find "$data" -maxdepth 1 -type f ! -name '.*' | sort | sed -n 1,8p)
  case "$kind" in
    images)
      : > "$tmp/orig.rgb"
      : > "$tmp/gen.rgb"
      for f in $files; do
        size=$(stat -c %s "$f")
        tail -c 768 "$f" > "$tmp/image.rgb"
        ((size % 768 == 0)) || { echo "media-samples: $f is not whole 16x16 RGB tiles" >&2; exit 2; }
        cat "$tmp/image.rgb" >> "$tmp/orig.rgb"
        head -c 384 "$tmp/image.rgb" > "$tmp/top.rgb"
        "$bytelm" generate --ckpt "$ckpt" --prompt-file "$tmp/top.rgb" --max-bytes 384 --seed "$seed" < /dev/null > "$tmp/bottom.rgb"
        cat "$tmp/top.rgb" "$tmp/bottom.rgb" >> "$tmp/gen.rgb"
      done
      cat "$tmp/orig.rgb" "$tmp/gen.rgb" > "$tmp/both.rgb"
      "$here/../data/bytes-to-media.sh" png "$tmp/both.rgb" "$out/$name.png" >/dev/null
      echo "$out/$name.png: 8 held-out images (left) and their bottom halves written by $name (right)"
      ;;
    audio)
      f=$(echo "$files" | sed -n 1p)
      size=$(stat -c %s "$f")
      val=$(/usr/bin/python3 -c "import math; print(math.ceil($val_fraction * $size))")
      head -c $((size - val + 8000)) "$f" | tail -c 8000 > "$tmp/real.u8"  # no SIGPIPE under pipefail
      tail -c 384 "$tmp/real.u8" > "$tmp/prompt.u8"
      "$bytelm" generate --ckpt "$ckpt" --prompt-file "$tmp/prompt.u8" --max-bytes 16000 --seed "$seed" < /dev/null > "$tmp/cont.u8"
      cat "$tmp/real.u8" "$tmp/cont.u8" > "$tmp/all.u8"
      "$here/../data/bytes-to-media.sh" wav "$tmp/all.u8" "$out/$name.wav" >/dev/null
      echo "$out/$name.wav: 1 s of held-out speech, then 2 s written by $name"
      ;;
  esac
  made=$((made + 1))
done <<< "$runs"
((made > 0)) || { echo "media-samples: no image or audio run with a checkpoint in $exp" >&2; exit 1; }
