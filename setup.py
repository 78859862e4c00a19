"""Build script: compiles csrc/*.c and every .pyx module under src/quicfast/.

Switches (environment variables):
  QUICFAST_DEBUG_BUILD=1   -O0 -g, Cython bounds checks on everywhere
  QUICFAST_SANITIZE=1      AddressSanitizer + UBSan on C and Cython code
  QUICFAST_CYTHON_TRACE=1  line tracing for coverage/profiling
  QUICFAST_ANNOTATE=1      write Cython annotation HTML next to each .pyx
  OPENSSL_DIR=/path        use the OpenSSL 3 installed there (include/, lib/)
"""

import os
import pathlib
import sys

from setuptools import Extension, setup

ROOT = pathlib.Path(__file__).parent
SRC = ROOT / "src"

DEBUG = os.environ.get("QUICFAST_DEBUG_BUILD") == "1"
SANITIZE = os.environ.get("QUICFAST_SANITIZE") == "1"
TRACE = os.environ.get("QUICFAST_CYTHON_TRACE") == "1"
ANNOTATE = os.environ.get("QUICFAST_ANNOTATE") == "1"

# Which C sources each extension needs; modules not listed need none.
C_SOURCES = {
    "quicfast.proto.crypto": ["csrc/aead.c", "csrc/hkdf.c"],
    "quicfast._udp": ["csrc/udp.c"],
}
LINKS_LIBCRYPTO = {"quicfast.proto.crypto"}


def openssl_paths():
    """Locate OpenSSL 3 headers; stop with a clear message when they are missing."""
    include_dirs, library_dirs = [], []
    prefix = os.environ.get("OPENSSL_DIR")
    if prefix:
        include_dirs.append(os.path.join(prefix, "include"))
        for lib in ("lib", "lib64"):
            if os.path.isdir(os.path.join(prefix, lib)):
                library_dirs.append(os.path.join(prefix, lib))
    candidates = include_dirs + ["/usr/include", "/usr/local/include", "/opt/homebrew/opt/openssl@3/include", "/usr/local/opt/openssl@3/include"]
    if not any(os.path.exists(os.path.join(d, "openssl", "evp.h")) for d in candidates):
        sys.exit(
            "quicfast: OpenSSL 3 headers (openssl/evp.h) not found.\n"
            "  Debian/Ubuntu: apt-get install libssl-dev\n"
            "  Fedora/RHEL:   dnf install openssl-devel\n"
            "  Alpine:        apk add openssl-dev\n"
            "  macOS:         brew install openssl@3 and set OPENSSL_DIR=$(brew --prefix openssl@3)\n"
            "  or set OPENSSL_DIR to an OpenSSL 3 installation prefix."
        )
    for d in ("/opt/homebrew/opt/openssl@3", "/usr/local/opt/openssl@3"):
        if not prefix and os.path.isdir(d):
            include_dirs.append(d + "/include")
            library_dirs.append(d + "/lib")
    return include_dirs, library_dirs


def extensions():
    from Cython.Build import cythonize

    ssl_include, ssl_libdirs = openssl_paths()
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    if sys.platform == "win32":
        compile_args = ["/O2"]
    link_args = []
    macros = []
    if SANITIZE:
        compile_args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
        link_args += ["-fsanitize=address,undefined"]
    if TRACE:
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]

    # QUICFAST_ONLY=mod1,mod2 builds just those modules (handy while developing one).
    only = {m for m in os.environ.get("QUICFAST_ONLY", "").split(",") if m}
    exts = []
    for pyx in sorted((SRC / "quicfast").rglob("*.pyx")):
        module = ".".join(pyx.relative_to(SRC).with_suffix("").parts)
        if only and module not in only:
            continue
        sources = [str(pyx.relative_to(ROOT))] + C_SOURCES.get(module, [])
        libraries, include_dirs, library_dirs = [], ["csrc"], []
        if module in LINKS_LIBCRYPTO:
            include_dirs += ssl_include
            library_dirs += ssl_libdirs
            libraries.append("libcrypto" if sys.platform == "win32" else "crypto")
        exts.append(
            Extension(
                module,
                sources,
                include_dirs=include_dirs,
                library_dirs=library_dirs,
                libraries=libraries,
                extra_compile_args=compile_args,
                extra_link_args=link_args,
                define_macros=macros,
            )
        )
    directives = {
        "language_level": "3",
        "embedsignature": True,
        "binding": False,
    }
    if DEBUG:
        directives.update(boundscheck=True, wraparound=True)
    if TRACE:
        directives.update(linetrace=True, profile=True)
    return cythonize(
        exts,
        compiler_directives=directives,
        annotate=ANNOTATE,
        nthreads=int(os.environ.get("QUICFAST_BUILD_JOBS", "0")) or None,
        include_path=[str(SRC)],
    )


setup(ext_modules=extensions(), package_dir={"": "src"})
