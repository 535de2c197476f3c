#!/usr/bin/env bash
# bytes-to-media.sh png|wav IN OUT — writes raw bytes (e.g. from `bytelm generate` on a model trained on
# scripts/data/fetch-data.sh images or audio) back as something to look at or listen to:
#   png  IN holds 16x16 RGB tiles (768 bytes each, the `images` kind's layout; a partial last tile is padded
#        with black); OUT is one PNG with the tiles in a grid of up to 16 per row, each enlarged 8x
#        (ImageMagick, nearest neighbour).
#   wav  IN holds 8 kHz unsigned 8-bit mono samples (the `audio` kind's layout); OUT is a WAV file (sox).
# Example:
#   bytelm generate --ckpt runs/img --prompt-file data/kinds/images/tiles_000.rgb --max-bytes 2304 > gen.rgb
#   scripts/data/bytes-to-media.sh png gen.rgb gen.png
set -euo pipefail
if (($# != 3)); then
  echo "usage: scripts/data/bytes-to-media.sh png|wav IN OUT" >&2
  exit 2
fi
kind="$1" in="$2" out="$3"
[[ -f "$in" ]] || { echo "bytes-to-media: $in: no such file" >&2; exit 2; }
case "$kind" in
  png)
    command -v montage-im6.q16 >/dev/null || { echo "bytes-to-media: ImageMagick missing (apt-get install imagemagick)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    size=$(stat -c %s "$in")
    tiles=$(((size + 767) / 768))
    ((tiles > 0)) || { echo "bytes-to-media: $in is empty" >&2; exit 2; }
    cp "$in" "$tmp/all.rgb"
    truncate -s $((tiles * 768)) "$tmp/all.rgb"  # pad the last tile with zero bytes (black)
    split -b 768 -d -a 5 "$tmp/all.rgb" "$tmp/tile_"
    for t in "$tmp"/tile_*; do
      convert-im6.q16 -size 16x16 -depth 8 "rgb:$t" -filter point -resize 800% "$t.png"
    done
    cols=$((tiles < 16 ? tiles : 16))
    montage-im6.q16 "$tmp"/tile_*.png -tile "${cols}x" -geometry +2+2 -background gray "$out"
    echo "$out: $tiles tiles"
    ;;
  wav)
    command -v sox >/dev/null || { echo "bytes-to-media: sox missing (apt-get install sox)" >&2; exit 1; }
    sox -t raw -r 8000 -b 8 -e unsigned-integer -c 1 "$in" "$out"
    echo "$out: $(stat -c %s "$in") samples at 8 kHz"
    ;;
  *)
    echo "bytes-to-media: unknown kind '$kind' (png | wav)" >&2
    exit 2
    ;;
esac
