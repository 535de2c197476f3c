#!/usr/bin/env bash
# install-deps.sh — installs bytelm's build and run dependencies from Debian 12 packages, if missing.
#   libtorch-dev          LibTorch 1.13 (CPU)
#   libopenblas0-pthread  OpenBLAS: Debian's default reference BLAS makes matmuls ~12x slower
#   libsentencepiece-dev  SentencePiece (C++): the subword tokenizer of the BPE baseline (--model bpe)
#   libcli11-dev nlohmann-json3-dev libgtest-dev cmake ninja-build g++   CLI, JSON, tests, build
#   python3-torch         the BLT reference test (scripts/blt_reference.py, plain PyTorch 1.13), and torchrun
#                         (python3 -m torch.distributed.run) for data-parallel launches and their test
#   libgloo-dev           Gloo's headers, for LibTorch's c10d ProcessGroupGloo (data-parallel training)
#   libcpp-httplib-dev    `bytelm serve` (HTTP server); chromium: the test of its page in a headless browser
#   python3-matplotlib    `bytelm experiment report` plots; wamerican: its CUTE-like word tasks
#   --data: also imagemagick espeak-ng sox, which scripts/fetch-data.sh needs for the images and audio kinds
# npm, needed only for the corpus, is installed by scripts/fetch-corpus.sh if absent.
set -euo pipefail

libraries=(libtorch-dev libopenblas0-pthread libsentencepiece-dev libcli11-dev nlohmann-json3-dev libgtest-dev python3-torch)
libraries+=(libgloo-dev libcpp-httplib-dev chromium python3-matplotlib wamerican)
if [[ "${1:-}" == --data ]]; then libraries+=(imagemagick espeak-ng sox); fi
missing=()
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools count as present if the command exists, however it was installed.
command -v g++ >/dev/null || missing+=(g++)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
