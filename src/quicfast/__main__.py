"""The `quicfast` command (and `python -m quicfast`): fetch over HTTP/3 and
serve a directory over HTTP/3.

    quicfast serve DIR [--host H] [--port P] [--cert FILE --key FILE]
    quicfast get URL [-o FILE] [-k] [--ca FILE] [--version v1|v2]
                 [--0rtt] [--session-file F] [--keylog F] [--qlog-dir D]

`serve` prints where it listens; without --cert it generates a throwaway
CA and a certificate for localhost, and says where the CA is (give it to
`get --ca`, or use `get -k`). `get` writes the body to FILE or stdout and
shows a progress bar with throughput on stderr for long downloads when
stderr is a terminal (or with --progress). Exit status: 0 for a 2xx/3xx
response, 1 for 4xx/5xx, 2 for a connection or protocol failure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import signal
import sys
import tempfile
import time
from typing import Optional

__all__ = ["main"]


# -- certificates ------------------------------------------------------------------

def generate_self_signed(directory: Optional[str] = None) -> tuple[str, str, str]:
    """A throwaway CA and a leaf for localhost/127.0.0.1/::1 signed by it (EC P-256).
    Returns (ca_file, cert_file, key_file)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = directory or tempfile.mkdtemp(prefix="quicfast-serve-")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quicfast serve throwaway CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(os.path.join(directory, n) for n in ("ca.pem", "cert.pem", "key.pem"))
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


# -- session tickets (--session-file) -------------------------------------------------

def _load_tickets(path: str, store) -> int:
    from .tls.key_schedule import CipherSuite
    from .tls.session import SessionTicket
    try:
        with open(path) as f:
            items = json.load(f)
    except (OSError, ValueError):
        return 0
    count = 0
    for item in items:
        try:
            for name in ("ticket", "resumption_secret", "other_data"):
                item[name] = bytes.fromhex(item[name])
            item["cipher_suite"] = CipherSuite(item["cipher_suite"])
            store.add(SessionTicket(**item))
            count += 1
        except (TypeError, ValueError, KeyError):
            continue
    return count


def _save_tickets(path: str, tickets) -> None:
    import dataclasses
    items = []
    for ticket in tickets:
        item = dataclasses.asdict(ticket)
        for name in ("ticket", "resumption_secret", "other_data"):
            item[name] = bytes(item[name]).hex()
        item["cipher_suite"] = int(item["cipher_suite"])
        items.append(item)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(items, f)


# -- progress bar ----------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr: bytes, percent, throughput, ETA."""

    def __init__(self, total: Optional[int], enabled: bool, stream=sys.stderr, delay: float = 0.5) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream
        self.start = time.monotonic()
        self.delay = delay
        self.done = 0
        self._last = 0.0
        self._shown = False

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last < 0.1:
            return
        self._last = now
        self._draw(now)

    def _draw(self, now: float, final: bool = False) -> None:
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            width = 30
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (self.total - self.done) / rate if rate > 0 else 0
            text = f"[{bar}] {frac * 100:5.1f}% {_size(self.done)}/{_size(self.total)} {_size(rate)}/s"
            text += f" {elapsed:.1f}s" if final else f" ETA {eta:.0f}s"
        else:
            text = f"{_size(self.done)} {_size(rate)}/s {elapsed:.1f}s"
        self.stream.write("\r" + text + " " * 4)
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.enabled and self._shown:
            self._draw(time.monotonic(), final=True)
            self.stream.write("\n")
            self.stream.flush()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- get -----------------------------------------------------------------------------------

async def _get(args) -> int:
    from . import h3
    from .config import VERSION_1, VERSION_2, Config
    from .tls import SessionTicketStore, TLSConfig

    class RecordingStore(SessionTicketStore):
        def __init__(self):
            super().__init__()
            self.received = []

        def add(self, ticket):
            super().add(ticket)
            self.received.append(ticket)

    tls = TLSConfig()
    if args.ca:
        tls.load_verify_locations(cafile=args.ca)
    store = RecordingStore()
    tls.session_ticket_store = store
    if args.session_file:
        _load_tickets(args.session_file, store)
    versions = {"v1": (VERSION_1,), "v2": (VERSION_2,)}[args.version]
    config = Config(versions=versions, allow_0rtt=args.zero_rtt)
    if args.qlog_dir:
        _setup_qlog(config, args.qlog_dir)
    headers = [tuple(part.strip() for part in h.split(":", 1)) for h in args.header]
    content = None
    if args.data is not None:
        content = open(args.data[1:], "rb").read() if args.data.startswith("@") else args.data.encode()
    method = args.request or ("POST" if content is not None else "GET")
    out = None
    try:
        async with h3.Client(tls=tls, verify=not args.insecure, config=config, allow_0rtt=args.zero_rtt,
                             keylog_file=args.keylog, timeout=args.timeout) as client:
            response = await client.request(method, args.url, headers=headers, content=content)
            if args.include or args.verbose:
                sys.stderr.write(f"HTTP/3 {response.status}\n")
                for name, value in response.headers:
                    sys.stderr.write(f"{name.decode('latin-1')}: {value.decode('latin-1')}\n")
                sys.stderr.write("\n")
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            progress = Progress(total, enabled=not args.quiet and (args.progress or sys.stderr.isatty()))
            out = open(args.output, "wb") if args.output and args.output != "-" else sys.stdout.buffer
            async for chunk in response:
                out.write(chunk)
                progress.update(len(chunk))
            progress.finish()
            if args.session_file and not store.received:
                # The NewSessionTicket may trail a fast response: give it a moment.
                for _ in range(200):
                    await asyncio.sleep(0.01)
                    if store.received:
                        break
            if args.verbose:
                conn = next(iter(client._connections.values()), None)
                if conn is not None:
                    state = conn.quic.connection_state()
                    sys.stderr.write(f"version 0x{state.version:08x}, 0-RTT used: {state.used_0rtt}, "
                                     f"resumed: {state.tls.get('session_resumed')}\n")
    except (OSError, ValueError, Exception) as exc:   # noqa: B014 - report any failure in one line
        from .errors import QuicError
        if not isinstance(exc, (OSError, ValueError, QuicError, asyncio.TimeoutError)):
            raise
        sys.stderr.write(f"quicfast get: {type(exc).__name__}: {exc}\n")
        return 2
    finally:
        if out is not None and out is not sys.stdout.buffer:
            out.close()
        elif out is not None:
            out.flush()
    if args.session_file and store.received:
        _save_tickets(args.session_file, store.received[-1:])
    return 0 if response.status < 400 else 1


def _setup_qlog(config, directory: str) -> None:
    try:
        from . import qlog   # provided by the core when built with qlog support
    except ImportError:
        sys.stderr.write("quicfast: --qlog-dir ignored: this build has no quicfast.qlog module\n")
        return
    os.makedirs(directory, exist_ok=True)
    factory = getattr(qlog, "FileTracer", None)
    if factory is None:
        sys.stderr.write("quicfast: --qlog-dir ignored: quicfast.qlog offers no directory tracer\n")
        return
    config.tracer = factory(directory)


# -- serve ---------------------------------------------------------------------------------

async def _serve(args) -> int:
    from . import h3
    from .config import Config

    if not os.path.isdir(args.directory):
        sys.stderr.write(f"quicfast serve: {args.directory} is not a directory\n")
        return 2
    cert, key = args.cert, args.key
    if not cert:
        ca, cert, key = generate_self_signed()
        print(f"no --cert given: generated a certificate for localhost, 127.0.0.1 and ::1 signed by a throwaway CA"
              f" ({ca}); clients need --ca {ca} (or -k)", flush=True)
    elif not key:
        key = cert
    config = Config(allow_0rtt=args.zero_rtt)
    server = h3.Server(h3.StaticFiles(args.directory), host=args.host, port=args.port, certfile=cert, keyfile=key,
                       config=config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await server.start()
    host, port = server.addr[0], server.addr[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {os.path.abspath(args.directory)} over HTTP/3 at https://{shown}:{port}/ (UDP)", flush=True)
    await stop.wait()
    print("shutting down (GOAWAY)", flush=True)
    await server.shutdown(grace=args.grace)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quicfast", description="HTTP/3 over quicfast.")
    sub = parser.add_subparsers(dest="command", required=True)

    get = sub.add_parser("get", help="fetch a URL over HTTP/3")
    get.add_argument("url")
    get.add_argument("-o", "--output", help="write the body to this file (default: stdout)")
    get.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's certificate")
    get.add_argument("--ca", help="PEM file of trusted CAs")
    get.add_argument("--version", choices=["v1", "v2"], default="v1", help="QUIC version (default v1)")
    get.add_argument("--0rtt", dest="zero_rtt", action="store_true",
                     help="send the request in 0-RTT when a session ticket is held (see --session-file)")
    get.add_argument("--session-file", help="read/write TLS session tickets here for resumption and 0-RTT")
    get.add_argument("--keylog", help="append TLS secrets to this NSS key log file")
    get.add_argument("--qlog-dir", help="write qlog traces into this directory")
    get.add_argument("-X", "--request", help="method (default GET, or POST with --data)")
    get.add_argument("-H", "--header", action="append", default=[], help='extra header, "Name: value"')
    get.add_argument("-d", "--data", help="request body, or @FILE")
    get.add_argument("-i", "--include", action="store_true", help="print the response head on stderr")
    get.add_argument("-v", "--verbose", action="store_true", help="print the response head and connection details")
    get.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    get.add_argument("--progress", action="store_true", help="show the progress bar even if stderr is not a terminal")
    get.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for connecting (default 30)")

    serve = sub.add_parser("serve", help="serve a directory over HTTP/3")
    serve.add_argument("directory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4433, help="UDP port (default 4433; 0 picks one)")
    serve.add_argument("--cert", help="PEM certificate chain (default: generate one for localhost)")
    serve.add_argument("--key", help="PEM private key (default: in --cert)")
    serve.add_argument("--0rtt", dest="zero_rtt", action="store_true", help="accept 0-RTT requests")
    serve.add_argument("--grace", type=float, default=5.0, help="seconds requests get to finish on shutdown")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "get":
            return asyncio.run(_get(args))
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
