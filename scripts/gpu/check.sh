#!/usr/bin/env bash
# check.sh — on the GPU machine, in one call of under 8 minutes, every stage logged under $OUT and run even
# when an earlier one failed (a stage's exit status is in $OUT/summary.txt):
#   1. builds bytelm against python3's LibTorch (CUDA), in build-cuda/ (cmake/find_torch.cmake);
#   2. runs the suite with BYTELM_TEST_DEVICE=cuda (model tests on the GPU, CUDA vs CPU parity);
#   3. `bytelm bench --device cuda` on mb_s, tf_s, blt_s (JSON lines in $OUT/bench.jsonl, the table in
#      $OUT/bench.txt), batched generation at 8 and 64 rows, the longest MEGABYTE context at batch 1.
# Before the call, here: scripts/gpu/fetch-deps.sh, then carry .deps (nlohmann-json, CLI11, GoogleTest
# sources, Gloo headers as .deb files; unpacked there). Environment: OUT (default ./gpu-check-out),
# BUILD_DIR, BUILD_TARGET (targets to build, default all), BENCH_ARGS, SKIP_TESTS=1, SKIP_BENCH=1, TEST_REGEX
# (ctest -R), TEST_TIMEOUT (seconds for the suite, default 180).
# PYTHON: the Python whose torch to build against (default: python3 on PATH, the GPU machine's).
# Dry run on a CPU machine (everything up to the first CUDA call; the tests on the CPU):
#   ALLOW_NO_CUDA=1 PYTHON=.venv/bin/python TEST_DEVICE=cpu SKIP_BENCH=1 BUILD_DIR=/tmp/gpu-dry \
#     BUILD_TARGET="bytelm test_safetensors test_models" TEST_REGEX="test_(safetensors|models)$" scripts/gpu/check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$out"
: >"$out/summary.txt"
t0=$SECONDS
device="${TEST_DEVICE:-cuda}"
python="${PYTHON:-$(command -v python3)}"
stage() { echo "== [$((SECONDS - t0))s] $*" | tee -a "$out/summary.txt"; }
result() { echo "   -> $1 exit $2" | tee -a "$out/summary.txt"; }

stage "machine"
{ nvidia-smi 2>&1 | head -15; nproc; "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "available", torch.cuda.is_available())'; nvcc --version | tail -2; cmake --version | head -1; } >"$out/machine.txt" 2>&1
cat "$out/machine.txt"
if [[ "${ALLOW_NO_CUDA:-0}" != 1 ]] && ! "$python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  echo "check: python3's torch sees no CUDA device (ALLOW_NO_CUDA=1 for a dry run)" | tee -a "$out/summary.txt"
  exit 1
fi

# What this machine lacks comes from .deps/*.deb (scripts/gpu/fetch-deps.sh, carried here).
extra=()
if compgen -G ".deps/*.deb" >/dev/null; then
  for f in .deps/*.deb; do dpkg -x "$f" .deps/root 2>/dev/null || "$python" - "$f" .deps/root <<'PY'
import sys, tarfile, io, lzma, subprocess
# No dpkg: a .deb is an ar archive; its data.tar.* member holds the files.
data = open(sys.argv[1], "rb").read()
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip(); size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
PY
  done
  root="$PWD/.deps/root/usr"
  extra+=(-DCMAKE_PREFIX_PATH="$root" -DCMAKE_CXX_FLAGS="-isystem $root/include")
  [[ -d "$root/src/googletest" ]] && extra+=(-DBYTELM_GTEST_SOURCE="$root/src/googletest" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON)
fi

build="${BUILD_DIR:-build-cuda}"
stage "configure + build ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBYTELM_PYTHON="$python" "${extra[@]}" \
  >"$out/configure.log" 2>&1
rc=$?
grep -E "^-- bytelm|Error" "$out/configure.log"
if ((rc == 0)); then
  targets=()
  if [[ -n "${BUILD_TARGET:-}" ]]; then read -ra names <<<"$BUILD_TARGET"; targets=(--target "${names[@]}"); fi
  cmake --build "$build" -j"$(nproc)" "${targets[@]}" >"$out/build.log" 2>&1
  rc=$?
  ((rc == 0)) || grep -E "error|Error" -A3 "$out/build.log" | head -60
fi
result build $rc
[[ -x "$build/bytelm" ]] && "$build/bytelm" --version | tee -a "$out/summary.txt"

if [[ "${SKIP_TESTS:-0}" != 1 && -x "$build/bytelm" ]]; then
  stage "tests on $device"
  BYTELM_TEST_DEVICE="$device" timeout "${TEST_TIMEOUT:-180}" ctest --test-dir "$build" --output-on-failure ${TEST_REGEX:+-R "$TEST_REGEX"} \
    -j"$(( $(nproc) / 2 ))" >"$out/tests.log" 2>&1
  rc=$?
  tail -25 "$out/tests.log"
  result tests $rc
fi

if [[ "${SKIP_BENCH:-0}" != 1 && -x "$build/bytelm" ]]; then
  stage "bench on $device"
  "$build/bytelm" bench --device "$device" --configs mb_s tf_s blt_s --steps 10 --gen-bytes 4096 --gen-batch 8 \
    --uncached blt_s --max-context 2097152 --json-out "$out/bench.jsonl" ${BENCH_ARGS:-} >"$out/bench.txt" 2>&1
  rc=$?
  tail -30 "$out/bench.txt"
  result bench $rc
  stage "bench: generation at 64 rows"
  "$build/bytelm" bench --device "$device" --configs mb_s tf_s blt_s --skip-train --gen-bytes 1024 --gen-batch 64 \
    --json-out "$out/bench.jsonl" ${BENCH_ARGS:-} >"$out/bench64.txt" 2>&1
  rc=$?
  tail -12 "$out/bench64.txt"
  result bench64 $rc
fi
stage "done"
