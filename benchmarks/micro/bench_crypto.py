"""Packet protection cost per packet: quicfast vs aioquic vs qh3 vs raw AEAD.

Run:  python benchmarks/micro/bench_crypto.py [--quick] [--json out.json]

Times, side by side in one run, for a short-header 1-RTT packet of 1200 and
1452 bytes (1-byte flags, 8-byte DCID, 2-byte packet number, 16-byte tag),
AES-128-GCM:

* protect   = AEAD seal + header protection
* unprotect = header protection removal + packet number decode + AEAD open

for quicfast (Python wrappers over the C path, in place), aioquic 1.7.2
(``CryptoPair``: C extension, new bytes per packet) and qh3 2.1.0.  qh3 2.x
keeps header protection inside its Rust ``QuicConnectionCore``; the only
packet crypto it exposes to Python is ``_hazmat.AeadAes128Gcm``, so qh3 is
timed for the AEAD alone, which flatters it slightly.  Raw AEAD is
``cryptography``'s AESGCM on the same bytes and ``openssl speed -aead -evp
aes-128-gcm`` (EVP with nonce, AAD and tag per record: the floor for any
OpenSSL-based QUIC stack).  The batch row protects 64 packets laid out as
one GSO buffer with a single call (``PacketProtection.protect_segments``),
which is what the engine does when it flushes.

Each figure is the best of several repeats of a timed loop (ns per packet).
quicfast unprotects in place, so its loop first restores the protected bytes
with a bytearray-to-bytearray slice copy (about 60 ns for 1200 bytes); that
copy is timed separately and subtracted.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HEADER_LEN = 11  # flags + 8-byte DCID + 2-byte packet number
PN_OFFSET = 9
PN_LEN = 2
TAG = 16
SIZES = (1200, 1452)
BATCH = 64
SECRET = bytes(range(32))


def run_interleaved(cases, n, repeats):
    """Time every ``loop(n)`` in ``cases`` ({name: loop}) round-robin,
    ``repeats`` rounds, and keep each one's best ns per iteration.  Taking the
    minimum of short interleaved runs keeps a busy machine from skewing one
    case more than another."""
    best = {}
    for name, loop in cases.items():
        loop(max(n // 10, 1))  # warm up
        best[name] = float("inf")
    for _ in range(repeats):
        for name, loop in cases.items():
            t0 = time.perf_counter_ns()
            loop(n)
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / n)
    return best


def short_header(pn):
    return bytes([0x40 | (PN_LEN - 1)]) + bytes(range(1, 9)) + (pn & 0xFFFF).to_bytes(2, "big")


# --- quicfast -----------------------------------------------------------------

def quicfast_cases(size):
    from quicfast.proto.crypto import Aead, PacketProtection, derive_packet_keys

    payload_len = size - HEADER_LEN - TAG
    send = PacketProtection.from_secret(0x1301, SECRET)
    recv = PacketProtection.from_secret(0x1301, SECRET)
    buf = bytearray(short_header(0) + os.urandom(payload_len) + bytes(TAG))
    protect = send.protect_packet

    def protect_loop(n):
        for i in range(n):
            protect(buf, HEADER_LEN, PN_OFFSET, PN_LEN, payload_len, i)

    key, iv, _ = derive_packet_keys(0x1301, SECRET)
    aead = Aead(0x1301, key, iv)
    seal = aead.seal_into

    def seal_loop(n):
        for i in range(n):
            seal(buf, HEADER_LEN, payload_len, i)

    sealed = bytearray(short_header(5) + os.urandom(payload_len) + bytes(TAG))
    aead.seal_into(sealed, HEADER_LEN, payload_len, 5)
    # bytearray source: bytes -> bytearray slice assignment is ~4x slower.
    sealed = bytearray(sealed)
    opened = bytearray(sealed)
    open_into = aead.open_into

    def open_loop(n):
        for _ in range(n):
            opened[:] = sealed
            open_into(opened, HEADER_LEN, payload_len + TAG, 5)

    pristine = bytearray(short_header(5) + os.urandom(payload_len) + bytes(TAG))
    send.protect_packet(pristine, HEADER_LEN, PN_OFFSET, PN_LEN, payload_len, 5)
    pristine = bytearray(pristine)
    work = bytearray(pristine)
    unprotect = recv.unprotect_packet

    def unprotect_loop(n):
        for _ in range(n):
            work[:] = pristine
            unprotect(work, size, PN_OFFSET, 4)

    def copy_loop(n):
        for _ in range(n):
            work[:] = pristine

    batch_buf = bytearray(os.urandom(size * BATCH))
    protect_segments = send.protect_segments

    def batch_loop(n):
        for i in range(n // BATCH):
            protect_segments(batch_buf, BATCH, size, HEADER_LEN, PN_OFFSET, PN_LEN, payload_len, i * BATCH)

    return {
        "protect": protect_loop,
        "unprotect_with_copy": unprotect_loop,
        "seal_only": seal_loop,
        "open_with_copy": open_loop,
        "batch_protect": batch_loop,
        "copy": copy_loop,
    }


# --- aioquic ----------------------------------------------------------------------

def aioquic_cases(size):
    try:
        from aioquic.quic.crypto import CryptoPair
        from aioquic.tls import CipherSuite
    except ImportError:
        return None
    payload_len = size - HEADER_LEN - TAG
    pair = CryptoPair()
    pair.send.setup(cipher_suite=CipherSuite.AES_128_GCM_SHA256, secret=SECRET, version=1)
    pair.recv.setup(cipher_suite=CipherSuite.AES_128_GCM_SHA256, secret=SECRET, version=1)
    header = short_header(0)
    payload = os.urandom(payload_len)
    encrypt = pair.encrypt_packet

    def protect_loop(n):
        for i in range(n):
            encrypt(header, payload, i)

    packet = pair.encrypt_packet(short_header(5), payload, 5)
    decrypt = pair.decrypt_packet

    def unprotect_loop(n):
        for _ in range(n):
            decrypt(packet, PN_OFFSET, 5)

    return {"protect": protect_loop, "unprotect": unprotect_loop}


# --- qh3 ----------------------------------------------------------------------------

def qh3_cases(size):
    try:
        from qh3._hazmat import AeadAes128Gcm
    except ImportError:
        return None
    from quicfast.proto.crypto import derive_packet_keys

    key, iv, _ = derive_packet_keys(0x1301, SECRET)
    payload_len = size - HEADER_LEN - TAG
    aead = AeadAes128Gcm(key, iv)
    header = short_header(0)
    payload = os.urandom(payload_len)
    encrypt = aead.encrypt

    def seal_loop(n):
        for i in range(n):
            encrypt(i, payload, header)

    ciphertext = aead.encrypt(5, payload, header)
    decrypt = aead.decrypt

    def open_loop(n):
        for _ in range(n):
            decrypt(5, ciphertext, header)

    return {"seal_only": seal_loop, "open_only": open_loop}


# --- raw AEAD ---------------------------------------------------------------------------

def cryptography_cases(size):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(bytes(16))
    header = short_header(0)
    payload = os.urandom(size - HEADER_LEN - TAG)
    nonce = bytes(12)
    encrypt = aead.encrypt

    def seal_loop(n):
        for _ in range(n):
            encrypt(nonce, payload, header)

    ciphertext = aead.encrypt(nonce, payload, header)
    decrypt = aead.decrypt

    def open_loop(n):
        for _ in range(n):
            decrypt(nonce, ciphertext, header)

    return {"seal_only": seal_loop, "open_only": open_loop}


def openssl_speed(size, seconds):
    """ns per record from ``openssl speed -aead -evp aes-128-gcm``, or None."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    best = None
    for flags in (["-aead"], []):  # -aead: nonce + AAD + tag per record (OpenSSL >= 3.0)
        try:
            out = subprocess.run(
                [exe, "speed", *flags, "-evp", "aes-128-gcm", "-bytes", str(size), "-seconds", str(seconds)],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"^AES-128-GCM\s+([\d.]+)k", out, re.M)
        if m:
            return {"ns": size / (float(m.group(1)) * 1000) * 1e9, "mode": " ".join(flags) or "plain"}
    return best


# --- report --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()
    # n is a multiple of BATCH so the batch loop protects exactly n packets.
    n, repeats, seconds = (1024, 5, 1) if args.quick else (2048, 40, 3)

    import quicfast  # noqa: F401  (fail early if not built)

    versions = {"python": platform.python_version()}
    for mod in ("aioquic", "qh3", "cryptography"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    versions["openssl"] = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip() if shutil.which("openssl") else None

    results = {"versions": versions, "machine": platform.processor() or platform.machine(), "sizes": {}}
    for size in SIZES:
        cases = {}
        for lib, make in (("quicfast", quicfast_cases), ("aioquic", aioquic_cases), ("qh3", qh3_cases), ("cryptography", cryptography_cases)):
            for name, loop in (make(size) or {}).items():
                cases[(lib, name)] = loop
        times = run_interleaved(cases, n, repeats)
        r = {lib: None for lib in ("quicfast", "aioquic", "qh3", "cryptography")}
        for (lib, name), ns in times.items():
            r[lib] = r[lib] or {}
            r[lib][name] = ns
        q = r["quicfast"]
        q["unprotect"] = q["unprotect_with_copy"] - q["copy"]
        q["open_only"] = q["open_with_copy"] - q["copy"]
        q["copy_subtracted"] = q["copy"]
        r["openssl_speed"] = openssl_speed(size, seconds)
        results["sizes"][size] = r

    print(f"packet protection, AES-128-GCM, short header; ns/packet (best of {repeats}, {n} packets)")
    print("  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for size, r in results["sizes"].items():
        q, a, h, c, o = r["quicfast"], r["aioquic"], r["qh3"], r["cryptography"], r["openssl_speed"]
        print(f"\n{size}-byte packet")
        row = "  {:<44} {:>8.0f}"
        print(row.format("quicfast protect (seal + hp, in place)", q["protect"]))
        if a:
            print(row.format("aioquic  protect (CryptoPair.encrypt_packet)", a["protect"]) + f"   aioquic/quicfast {a['protect'] / q['protect']:.2f}x")
        print(row.format("quicfast unprotect (hp + pn + open)", q["unprotect"]) + f"   (slice copy {q['copy_subtracted']:.0f} ns subtracted)")
        if a:
            print(row.format("aioquic  unprotect (CryptoPair.decrypt_packet)", a["unprotect"]) + f"   aioquic/quicfast {a['unprotect'] / q['unprotect']:.2f}x")
        print(row.format("quicfast seal only (Aead.seal_into)", q["seal_only"]))
        if h:
            print(row.format("qh3      seal only (AeadAes128Gcm.encrypt)", h["seal_only"]) + f"   qh3 seal/quicfast seal {h['seal_only'] / q['seal_only']:.2f}x, qh3 seal/quicfast protect {h['seal_only'] / q['protect']:.2f}x")
        print(row.format("quicfast open only (Aead.open_into)", q["open_only"]))
        if h:
            print(row.format("qh3      open only (AeadAes128Gcm.decrypt)", h["open_only"]) + f"   qh3 open/quicfast open {h['open_only'] / q['open_only']:.2f}x, qh3 open/quicfast unprotect {h['open_only'] / q['unprotect']:.2f}x")
        print(row.format("cryptography AESGCM.encrypt", c["seal_only"]))
        print(row.format("cryptography AESGCM.decrypt", c["open_only"]))
        print(row.format(f"quicfast batch protect ({BATCH} per call)", q["batch_protect"]))
        if o:
            print(row.format(f"openssl speed {o['mode']} -evp aes-128-gcm", o["ns"]) + f"   batch/openssl {q['batch_protect'] / o['ns']:.2f}x")
        print(f"  {'':<44} {'':>8}   batch/cryptography-encrypt {q['batch_protect'] / c['seal_only']:.2f}x")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))
    sys.exit(main())
