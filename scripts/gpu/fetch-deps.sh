#!/usr/bin/env bash
# fetch-deps.sh — run here (Debian 12), before a GPU run: downloads the .deb files of what the GPU machine
# lacks for the build and the tests (nlohmann-json, CLI11, GoogleTest's sources, and Gloo's headers, which
# PyPI's torch wheel does not ship) into .deps/, which is git-ignored: pass it to the device tool in
# `carry`. scripts/gpu/check.sh unpacks them there (that machine has LibTorch, CMake, ninja and nvcc but no
# apt). About 2 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps
cd .deps
apt-get download -q nlohmann-json3-dev libcli11-dev googletest libgloo-dev 2>&1 | grep -v "unsandboxed" || true
ls -l ./*.deb
