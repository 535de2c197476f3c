#!/usr/bin/env bash
# test.sh — installs what is missing, builds, and runs the whole test suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup/install-deps.sh
scripts/setup/build.sh build
ctest --test-dir build --output-on-failure -j1
