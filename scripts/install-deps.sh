#!/usr/bin/env bash
# install-deps.sh — installs bytelm's build and run dependencies from Debian 12 packages, if missing.
#   libtorch-dev          LibTorch 1.13 (CPU)
#   libopenblas0-pthread  OpenBLAS: Debian's default reference BLAS makes matmuls ~12x slower
#   libcli11-dev nlohmann-json3-dev libgtest-dev cmake ninja-build g++   CLI, JSON, tests, build
#   npm                   only to fetch the default corpus (scripts/fetch-corpus.sh)
set -euo pipefail

packages=(g++ cmake ninja-build libtorch-dev libopenblas0-pthread libcli11-dev nlohmann-json3-dev libgtest-dev npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
