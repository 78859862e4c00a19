"""End-to-end loopback bulk download: quicfast vs aioquic vs qh3.

Server and client run in separate processes (spawned with ``subprocess``) on
127.0.0.1.  The client opens one bidirectional stream and sends a 3-byte
request; the server answers with N MiB and FIN; the client reads everything
and checks the byte count.  Each side reports CPU seconds
(``time.process_time`` deltas: server from just before accepting until the
parent tells it to stop, client from just before connecting until the last
byte), and the client reports wall time from connect to last byte (so the
handshake is included; it is negligible at these sizes).

Usage: PYTHONPATH=src:. python benchmarks/e2e/bench_bulk.py [--size-mib N] [--only NAME] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
for p in (ROOT, os.path.join(ROOT, "src")):
    if p not in sys.path:
        sys.path.insert(0, p)

ALPN = "quicfast-test"
CHUNK = 1 << 20
TIMEOUT = 120.0
DEFAULT_MIB = {"quicfast": 64, "aioquic": 32, "qh3": 64}
PEERS = ("quicfast", "aioquic", "qh3")


# ----------------------------------------------------------------- server side

async def _wait_stdin_eof() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def server_quicfast(size: int, pki: dict) -> None:
    import quicfast
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_cert_chain(pki["cert"], pki["key"])
    tls.set_alpn_protocols([ALPN])
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(tls)
    payload = b"\x00" * CHUNK
    cpu0 = time.process_time()
    _emit({"port": transport.local_addr[1]})

    async def serve_one():
        conn = await listener.accept()
        stream = await conn.accept_stream()
        await stream.read_all()
        sent = 0
        while sent < size:
            n = min(CHUNK, size - sent)
            stream.write(payload[:n] if n < CHUNK else payload)
            await stream.drain()
            sent += n
        stream.close()
        await stream.drain()
        await conn.wait_closed()

    task = asyncio.create_task(serve_one())
    await _wait_stdin_eof()
    cpu = time.process_time() - cpu0
    task.cancel()
    _emit({"server_cpu": cpu})
    listener.close()
    transport.close()


async def server_aioquic_like(name: str, size: int, pki: dict) -> None:
    if name == "aioquic":
        from aioquic.asyncio import serve
        from aioquic.quic.configuration import QuicConfiguration
    else:
        from qh3.asyncio import serve
        from qh3.quic.configuration import QuicConfiguration
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(pki["cert"], pki["key"])
    payload = b"\x00" * CHUNK

    async def handle(reader, writer):
        await reader.read()
        sent = 0
        while sent < size:
            n = min(CHUNK, size - sent)
            writer.write(payload[:n] if n < CHUNK else payload)
            if name == "aioquic":  # qh3 2.1.0's writer.drain() raises (no protocol); it buffers anyway
                await writer.drain()
            sent += n
        writer.write_eof()

    server = await serve("127.0.0.1", 0, configuration=config,
                         stream_handler=lambda r, w: asyncio.ensure_future(handle(r, w)))
    port = server._transport.get_extra_info("sockname")[1]
    cpu0 = time.process_time()
    _emit({"port": port})
    await _wait_stdin_eof()
    _emit({"server_cpu": time.process_time() - cpu0})
    server.close()


# ----------------------------------------------------------------- client side

async def client_quicfast(port: int, size: int, pki: dict) -> dict:
    import quicfast
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_verify_locations(cafile=pki["ca"])
    tls.set_alpn_protocols([ALPN])
    cpu0, t0 = time.process_time(), time.perf_counter()
    conn = await quicfast.dial_addr(("127.0.0.1", port), tls)
    stream = conn.open_stream()
    stream.write(b"GET")
    stream.close()
    await stream.drain()
    got = 0
    while chunk := await stream.read(1 << 20):
        got += len(chunk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    conn.close()
    await asyncio.sleep(0.05)
    return {"bytes": got, "wall": wall, "client_cpu": cpu}


async def client_aioquic_like(name: str, port: int, size: int, pki: dict) -> dict:
    if name == "aioquic":
        from aioquic.asyncio import connect
        from aioquic.quic.configuration import QuicConfiguration
    else:
        from qh3.asyncio import connect
        from qh3.quic.configuration import QuicConfiguration
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
    if name == "qh3":
        # qh3's verifier wants the chain: CA + leaf in one bundle.
        with open(pki["ca"]) as a, open(pki["cert"]) as b:
            config.load_verify_locations(cadata=(a.read() + b.read()).encode())
    else:
        config.load_verify_locations(pki["ca"])
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with connect("127.0.0.1", port, configuration=config) as client:
        reader, writer = await client.create_stream()
        writer.write(b"GET")
        writer.write_eof()
        got = 0
        while chunk := await reader.read(1 << 20):
            got += len(chunk)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        client.close()
    return {"bytes": got, "wall": wall, "client_cpu": cpu}


# ----------------------------------------------------------------- orchestration

def child_main(args) -> None:
    pki = json.loads(args.pki)
    size = args.size
    if args.role == "server":
        coro = (server_quicfast(size, pki) if args.impl == "quicfast"
                else server_aioquic_like(args.impl, size, pki))
        asyncio.run(coro)
    else:
        coro = (client_quicfast(args.port, size, pki) if args.impl == "quicfast"
                else client_aioquic_like(args.impl, args.port, size, pki))
        res = asyncio.run(asyncio.wait_for(coro, TIMEOUT))
        _emit(res)


def run_pair(impl: str, size: int, pki: dict) -> dict:
    base = [sys.executable, os.path.abspath(__file__), "--child", "--impl", impl,
            "--size", str(size), "--pki", json.dumps(pki)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "src"), ROOT, env.get("PYTHONPATH", "")])
    deadline = time.monotonic() + TIMEOUT
    server = subprocess.Popen(base + ["--role", "server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    client = None
    try:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"{impl} server failed to start")
        port = json.loads(line)["port"]
        client = subprocess.Popen(base + ["--role", "client", "--port", str(port)],
                                  stdout=subprocess.PIPE, text=True, env=env)
        out, _ = client.communicate(timeout=max(1.0, deadline - time.monotonic()))
        if client.returncode != 0:
            raise RuntimeError(f"{impl} client exited {client.returncode}")
        res = json.loads(out.strip().splitlines()[-1])
        server.stdin.close()
        line = server.stdout.readline()
        res.update(json.loads(line))
        server.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in (client, server):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    if res["bytes"] != size:
        raise RuntimeError(f"{impl}: received {res['bytes']} of {size} bytes")
    gib = size / (1 << 30)
    res.update(peer=impl, size_mib=size >> 20, mb_s=size / res["wall"] / 1e6,
               client_cpu_per_gib=res["client_cpu"] / gib, server_cpu_per_gib=res["server_cpu"] / gib)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=None, help="payload size (default 64; aioquic 32)")
    ap.add_argument("--only", choices=PEERS, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pki", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)

    from tests.helpers.certs import pki_paths
    paths = pki_paths()
    pki = {"ca": paths.ca_file, "cert": paths.cert_file, "key": paths.key_file}
    results = []
    for impl in ([args.only] if args.only else PEERS):
        size = (args.size_mib or DEFAULT_MIB[impl]) << 20
        try:
            results.append(run_pair(impl, size, pki))
        except Exception as exc:  # report and carry on with the other peers
            results.append({"peer": impl, "error": f"{type(exc).__name__}: {exc}"})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    qf = next((r for r in results if r["peer"] == "quicfast" and "error" not in r), None)
    print("| peer | MiB | MB/s | client CPU s/GiB | server CPU s/GiB | quicfast/peer throughput |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['peer']} | - | error: {r['error']} | | | |")
            continue
        ratio = f"{qf['mb_s'] / r['mb_s']:.2f}x" if qf else "-"
        print(f"| {r['peer']} | {r['size_mib']} | {r['mb_s']:.1f} | {r['client_cpu_per_gib']:.1f} "
              f"| {r['server_cpu_per_gib']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
