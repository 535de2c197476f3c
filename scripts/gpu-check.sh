#!/usr/bin/env bash
# gpu-check.sh — on the GPU machine, in one run of under 10 minutes:
#   1. builds bytelm against python3's LibTorch (CUDA), in build-cuda/;
#   2. runs the test suite with BYTELM_TEST_DEVICE=cuda (model tests on the GPU, CUDA vs CPU parity);
#   3. runs `bytelm bench --device cuda` on mb_s, tf_s, blt_s and prints the table.
# Missing nlohmann-json / CLI11 / GoogleTest are taken from .deps/*.deb (scripts/fetch-gpu-deps.sh).
# JSON lines and logs go to $OUT (or ./gpu-check-out). Environment: BENCH_ARGS adds bench flags,
# SKIP_TESTS=1 / SKIP_BENCH=1 skip a stage. A dry run on a CPU machine (checks the script and the unpacked
# dependencies): ALLOW_NO_CUDA=1 FORCE_DEPS=1 TEST_DEVICE=cpu SKIP_BENCH=1 BUILD_DIR=/tmp/b scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$out"
t0=$SECONDS
stage() { echo "== [$((SECONDS - t0))s] $*"; }

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
if [[ "${ALLOW_NO_CUDA:-0}" != 1 ]]; then  # ALLOW_NO_CUDA=1: dry run of this script on a CPU machine
  python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
fi
prefix="$torch_prefix"
extra=()
if [[ "${FORCE_DEPS:-0}" == 1 || ! -f /usr/include/nlohmann/json.hpp || ! -f /usr/include/CLI/CLI.hpp ||
      ! -d /usr/src/googletest ]]; then
  if compgen -G ".deps/*.deb" >/dev/null; then
    stage "unpacking .deps/*.deb into .deps/root"
    for f in .deps/*.deb; do dpkg -x "$f" .deps/root; done
    prefix="$prefix;$PWD/.deps/root/usr"
    extra+=(-DBYTELM_GTEST_SOURCE="$PWD/.deps/root/usr/src/googletest" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
            -DCMAKE_CXX_FLAGS="-I$PWD/.deps/root/usr/include")
  else
    echo "gpu-check: nlohmann-json, CLI11 or GoogleTest missing and no .deps/*.deb (run scripts/fetch-gpu-deps.sh here first)" >&2
  fi
fi

build="${BUILD_DIR:-build-cuda}"
stage "configure + build ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DTORCH_CUDA_ARCH_LIST=9.0 "${extra[@]}" >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
grep -E "^-- bytelm" "$out/configure.log" || true
cmake --build "$build" -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error|Error" -A3 "$out/build.log" | head -80; exit 1; }
tail -1 "$out/build.log"

if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  stage "tests on ${TEST_DEVICE:-cuda}"
  BYTELM_TEST_DEVICE="${TEST_DEVICE:-cuda}" ctest --test-dir "$build" --output-on-failure -j4 2>&1 | tee "$out/tests.log" | tail -25
fi

if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  stage "bench on ${TEST_DEVICE:-cuda}"
  "$build"/bytelm bench --device "${TEST_DEVICE:-cuda}" --configs mb_s tf_s blt_s --steps 10 --gen-bytes 4096 --gen-batch 8 \
    --uncached blt_s --max-context 2097152 --json-out "$out/bench.jsonl" ${BENCH_ARGS:-} 2> >(tee "$out/bench.txt" >&2)
fi
stage "done"
