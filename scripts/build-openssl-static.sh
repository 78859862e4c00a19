#!/usr/bin/env bash
# Build a static OpenSSL 3 into $1 for cibuildwheel's before-all step, so
# wheels carry libcrypto inside the extension (as aioquic's wheels do).
set -euo pipefail
prefix="${1:-/tmp/openssl}"
version="${OPENSSL_VERSION:-3.0.15}"
work=$(mktemp -d)
cd "$work"
curl -fsSL "https://www.openssl.org/source/openssl-${version}.tar.gz" | tar xz
cd "openssl-${version}"
./config no-shared no-tests -fPIC --prefix="$prefix" --libdir=lib >/dev/null
make -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" build_libs >/dev/null
make install_dev >/dev/null
