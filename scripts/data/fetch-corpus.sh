#!/usr/bin/env bash
# fetch-corpus.sh [DEST] — builds bytelm's default training corpus into DEST (default data/corpus).
#
# The corpus is English prose: Jane Austen's six novels (Emma, Mansfield Park, Northanger Abbey, Persuasion,
# Pride and Prejudice, Sense and Sensibility; ~4.1 MB), one file per chapter (269 files), as
# DEST/austen/<novel>/chapter_NNN.txt. The text comes from Debian 12's r-cran-janeaustenr 1.0.0-1 (R data),
# pinned by version and the .deb's sha256; scripts/data/austen_chapters.py reads it with the rdata package
# from the checkout's .venv (scripts/setup/python-env.sh) and writes the chapters. The resulting file list
# is checked against scripts/data/corpus-files.txt and the bytes against the sha256 below.
#
# Needs: apt-get (download only), dpkg-deb, .venv. Idempotent: when DEST/.complete exists (written last,
# after all files are in place) the script only reports what is there.
set -euo pipefail

dest="${1:-data/corpus}"
marker="$dest/.complete"
here="$(cd "$(dirname "$0")" && pwd)"
DEB="r-cran-janeaustenr=1.0.0-1|df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"
CORPUS_SHA256="167bef900b9358aad9f8533667cae78be49ac1692f66d37e65b67d2eadf4de02"

die() { echo "fetch-corpus: $*" >&2; exit 1; }

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

python="$here/../../.venv/bin/python"
[[ -x "$python" ]] || "$here/../setup/python-env.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
spec="${DEB%%|*}" sha="${DEB##*|}"
(cd "$tmp" && apt-get download -q "$spec" >/dev/null 2>&1) ||
  die "apt-get download $spec failed (is that version still on the mirror? apt-cache policy ${spec%%=*})"
deb=$(ls "$tmp"/*.deb)
[[ "$(sha256sum "$deb" | cut -d' ' -f1)" == "$sha" ]] || die "$deb: sha256 mismatch"
dpkg-deb -x "$deb" "$tmp/root"
"$python" -W ignore "$here/austen_chapters.py" "$tmp/root/usr/lib/R/site-library/janeaustenr/data" "$tmp/out/austen"

# The file list is pinned (scripts/data/corpus-files.txt; the README's paths into the corpus are checked against
# it by tests/docs/test_readme), and so are the bytes.
manifest="$here/corpus-files.txt"
if ! diff -q <(cd "$tmp/out" && find . -type f -name '*.txt' | sed 's|^\./||' | LC_ALL=C sort) "$manifest" >/dev/null; then
  die "the files built differ from $manifest"
fi
got=$(cd "$tmp/out" && LC_ALL=C sort "$manifest" | xargs cat | sha256sum | cut -d' ' -f1)
[[ "$got" == "$CORPUS_SHA256" ]] || die "the corpus's sha256 $got differs from the pinned $CORPUS_SHA256"

mkdir -p "$dest"
cp -r "$tmp/out/." "$dest/"
date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
report
