#!/usr/bin/env bash
# Build a binary wheel for this machine's Python into wheels/, with
# libcrypto bundled by auditwheel where available (the local stand-in for
# the cibuildwheel job, which needs containers).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-wheels}"
mkdir -p "$out" build/rawwheel
rm -f build/rawwheel/quicfast-*.whl
python3 -m pip wheel --no-deps --no-build-isolation -w build/rawwheel . >/dev/null
raw=$(ls build/rawwheel/quicfast-*.whl)
if python3 -m auditwheel --version >/dev/null 2>&1; then
    python3 -m auditwheel repair --plat "$(python3 -m auditwheel show "$raw" | sed -n 's/.*"\(manylinux_[0-9_]*_x86_64\|manylinux_[0-9_]*_aarch64\)".*/\1/p' | head -1)" -w "$out" "$raw" >/dev/null 2>&1 \
        || python3 -m auditwheel repair -w "$out" "$raw" >/dev/null 2>&1 \
        || cp "$raw" "$out/"
else
    cp "$raw" "$out/"
fi
ls -1 "$out"/quicfast-*.whl | tail -1
