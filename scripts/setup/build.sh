#!/usr/bin/env bash
# build.sh [BUILD_DIR] — configures and builds bytelm (Release) and its tests. Default BUILD_DIR: build.
# Extra CMake arguments can be passed in CMAKE_ARGS (e.g. the CUDA LibTorch's prefix path);
# BUILD_TARGET=bytelm builds the tool alone and configures without the tests (GoogleTest is then not needed);
# any other build configures with them, so one build directory serves the demo, then the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
testing=ON
[[ "${BUILD_TARGET:-}" == bytelm ]] && testing=OFF
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING="$testing" ${CMAKE_ARGS:-}
elif [[ "$testing" == ON ]] && grep -q '^BUILD_TESTING:BOOL=OFF' "$build/CMakeCache.txt"; then
  cmake "$build" -DBUILD_TESTING=ON  # configured by the demo without the tests
fi
cmake --build "$build" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
