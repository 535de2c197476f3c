#!/usr/bin/env bash
# fetch-gpu-deps.sh — run here (Debian), before a GPU run: downloads the .deb files of the build's
# header-only and test dependencies (nlohmann-json, CLI11, GoogleTest sources) into .deps/, which is
# git-ignored and carried to the GPU machine (that machine has LibTorch, CMake and nvcc but no apt
# access). scripts/gpu-check.sh unpacks them there when the headers are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
apt-get download nlohmann-json3-dev libcli11-dev googletest
ls -l ./*.deb
