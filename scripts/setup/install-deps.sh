#!/usr/bin/env bash
# install-deps.sh [--tool] [--data] — installs bytelm's build and run dependencies: Debian 12 packages, if missing, then
# the checkout's Python environment .venv from PyPI (scripts/setup/python-env.sh: torch 2.11.0, whose
# LibTorch with CUDA bytelm links; matplotlib; rdata), every package pinned and checksummed.
#   libsentencepiece-dev  SentencePiece (C++): the subword tokenizer of the BPE baseline (--model bpe)
#   libcli11-dev nlohmann-json3-dev libgtest-dev cmake ninja-build g++   CLI, JSON, tests, build
#   libgloo-dev           Gloo's headers, for LibTorch's c10d ProcessGroupGloo (the wheel ships none)
#   libcpp-httplib-dev    `bytelm serve` (HTTP server); chromium: the test of its page in a headless browser
#   python3-matplotlib    `bytelm experiment report` plots (Debian's python3); wamerican: CUTE-like word tasks
#   --tool: only what building and running the bytelm tool needs (no GoogleTest, Chromium, Debian's matplotlib or
#           word list: the tests' packages), as scripts/demo.sh uses it
#   --data: also imagemagick espeak-ng sox, which scripts/data/fetch-data.sh needs for the images and audio kinds
# The CUDA toolkit (nvcc) is not installed here: the build uses it when present (the cpp-kernels machines
# have CUDA 13.0) to compile bytelm's CUDA paths; without it LibTorch's CMake config fails (see docs).
set -euo pipefail

libraries=(libsentencepiece-dev libcli11-dev nlohmann-json3-dev libgloo-dev libcpp-httplib-dev)
tool_only=0
for arg in "$@"; do
  case "$arg" in
    --tool) tool_only=1 ;;
    --data) libraries+=(imagemagick espeak-ng sox) ;;
    *) echo "install-deps: unknown option '$arg' (--tool, --data)" >&2; exit 2 ;;
  esac
done
((tool_only)) || libraries+=(libgtest-dev chromium python3-matplotlib wamerican)
missing=()
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools count as present if the command exists, however it was installed.
command -v g++ >/dev/null || missing+=(g++)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
"$(dirname "$0")/python-env.sh"
