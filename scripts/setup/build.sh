#!/usr/bin/env bash
# build.sh [BUILD_DIR] — configures and builds bytelm (Release) and its tests. Default BUILD_DIR: build.
# Extra CMake arguments can be passed in CMAKE_ARGS (e.g. the CUDA LibTorch's prefix path);
# BUILD_TARGET=bytelm builds the tool alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
fi
cmake --build "$build" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
