"""Bulk transfer demo: a quicfast server process sends N MiB on one stream to
a quicfast client process over loopback; both report throughput and CPU.

    python examples/transfer.py --size-mib 256

It makes a throwaway CA and server certificate for the run.
"""

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time

import quicfast

ALPN = "transfer"
CHUNK = 1 << 20


def make_certificates(directory):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # noqa: E731
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("demo CA")).issuer_name(name("demo CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(directory, n) for n in ("ca.pem", "cert.pem", "key.pem")]
    for path, blob in zip(paths, (ca.public_bytes(serialization.Encoding.PEM), leaf.public_bytes(serialization.Encoding.PEM),
                                  key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))):
        with open(path, "wb") as f:
            f.write(blob)
    return paths


async def server(args):
    tls = quicfast.TLSConfig()
    tls.load_cert_chain(args.cert, args.key)
    tls.set_alpn_protocols([ALPN])
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(tls)
    print(transport.local_addr[1], flush=True)
    conn = await listener.accept()
    stream = await conn.accept_stream()
    size = int((await stream.read_all()).decode())
    block = os.urandom(CHUNK)
    cpu = time.process_time()
    for _ in range(size // CHUNK):
        stream.write(block)
        await stream.drain()
    stream.close()
    await stream.drain()
    await conn.wait_closed()
    print(f"server CPU {time.process_time() - cpu:.2f} s", file=sys.stderr)
    transport.close()


async def client(args, port):
    tls = quicfast.TLSConfig()
    tls.load_verify_locations(cafile=args.ca)
    tls.set_alpn_protocols([ALPN])
    conn = await quicfast.dial_addr(("127.0.0.1", port), tls, server_name="localhost")
    size = args.size_mib * CHUNK
    stream = conn.open_stream()
    stream.write(str(size).encode())
    stream.close()
    start, cpu, received = time.perf_counter(), time.process_time(), 0
    digest = hashlib.sha256()
    while chunk := await stream.read():
        received += len(chunk)
        if args.verify:
            digest.update(chunk)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    await conn.wait_closed()
    if received != size:
        raise SystemExit(f"received {received} of {size} bytes")
    stats = conn.stats()
    print(f"received {received / CHUNK:.0f} MiB in {elapsed:.2f} s: {received / elapsed / 1e6:.1f} MB/s "
          f"(client CPU {cpu:.2f} s, {stats['packets_lost']} packets lost, GSO {conn.connection_state().gso})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--verify", action="store_true", help="hash what arrives (costs client CPU)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(server(args))
        return
    with tempfile.TemporaryDirectory() as directory:
        args.ca, args.cert, args.key = make_certificates(directory)
        proc = subprocess.Popen([sys.executable, __file__, "--serve", "--cert", args.cert, "--key", args.key],
                                stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline())
            asyncio.run(asyncio.wait_for(client(args, port), 300))
            proc.wait(timeout=30)
        finally:
            proc.kill()


if __name__ == "__main__":
    main()
