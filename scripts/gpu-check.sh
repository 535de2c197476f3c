#!/usr/bin/env bash
# gpu-check.sh — on the GPU machine, in one run of under 10 minutes:
#   1. builds bytelm against python3's LibTorch (CUDA), in build-cuda/;
#   2. runs the test suite with BYTELM_TEST_DEVICE=cuda (model tests on the GPU, CUDA vs CPU parity);
#   3. runs `bytelm bench --device cuda` on mb_s, tf_s, blt_s and prints the table.
# Missing nlohmann-json / CLI11 / GoogleTest are taken from .deps/*.deb (scripts/fetch-gpu-deps.sh).
# JSON lines and logs go to $OUT (or ./gpu-check-out). Environment: BENCH_ARGS adds bench flags,
# SKIP_TESTS=1 / SKIP_BENCH=1 skip a stage.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$out"
t0=$SECONDS
stage() { echo "== [$((SECONDS - t0))s] $*"; }

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
prefix="$torch_prefix"
extra=()
if [[ ! -f /usr/include/nlohmann/json.hpp || ! -f /usr/include/CLI/CLI.hpp || ! -d /usr/src/googletest ]]; then
  if compgen -G ".deps/*.deb" >/dev/null; then
    stage "unpacking .deps/*.deb into .deps/root"
    for f in .deps/*.deb; do dpkg -x "$f" .deps/root; done
    prefix="$prefix;$PWD/.deps/root/usr"
    extra+=(-DBYTELM_GTEST_SOURCE="$PWD/.deps/root/usr/src/googletest" -DCMAKE_CXX_FLAGS="-I$PWD/.deps/root/usr/include")
  else
    echo "gpu-check: nlohmann-json, CLI11 or GoogleTest missing and no .deps/*.deb (run scripts/fetch-gpu-deps.sh here first)" >&2
  fi
fi

stage "configure + build (build-cuda)"
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DTORCH_CUDA_ARCH_LIST=9.0 "${extra[@]}" 2>&1 | tee "$out/configure.log" | grep -E "bytelm|Error|error" || true
cmake --build build-cuda -j"$(nproc)" 2>&1 | tee "$out/build.log" | tail -3

if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  stage "tests on CUDA"
  BYTELM_TEST_DEVICE=cuda ctest --test-dir build-cuda --output-on-failure -j4 2>&1 | tee "$out/tests.log" | tail -25
fi

if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  stage "bench on CUDA"
  build-cuda/bytelm bench --device cuda --configs mb_s tf_s blt_s --steps 10 --gen-bytes 4096 --gen-batch 8 \
    --uncached blt_s --max-context 2097152 --json-out "$out/bench.jsonl" ${BENCH_ARGS:-} 2> >(tee "$out/bench.txt" >&2)
fi
stage "done"
