#!/usr/bin/env bash
# python-env.sh — creates bytelm's checkout-local Python environment .venv (git-ignored) from PyPI, every
# package pinned by version and sha256 in scripts/setup/requirements.lock: torch 2.11.0 (whose LibTorch,
# CUDA build, bytelm compiles and links against), its CUDA runtime wheels, matplotlib and rdata.
# Idempotent: the lock's sha256 is stored in .venv/.lock-sha256 after a complete install; a changed lock
# rebuilds the environment. Needs a CPython 3.11 as `python3` (PYTHON=... to choose another) with venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
lock=scripts/setup/requirements.lock
venv=.venv
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [[ -f "$venv/.lock-sha256" && "$(cat "$venv/.lock-sha256")" == "$want" ]]; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  { echo "python-env: $python is not CPython 3.11 (the lock is for 3.11); set PYTHON" >&2; exit 1; }
echo "python-env: installing $lock into $venv (about 3 GB, mostly torch's CUDA libraries)"
rm -rf "$venv"
"$python" -m venv "$venv"
# --no-deps: the lock lists every package, so pip installs exactly those and checks each hash.
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r "$lock"
"$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; echo "python-env: inconsistent lock" >&2; exit 1; }
echo "$want" >"$venv/.lock-sha256"
"$venv/bin/python" -c 'import torch; print("python-env: torch", torch.__version__, "CUDA", torch.version.cuda)'
