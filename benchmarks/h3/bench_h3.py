"""HTTP/3 side by side in one run: quicfast (client and server), aioquic's
HTTP/3 (client and server) and the ngtcp2 examples (gtlsclient and
gtlsserver, where installed). Each server runs in its own process; each
client runs in this process (quicfast, aioquic) or as a subprocess (ngtcp2).

Two measurements per stack, over loopback:
  download  one GET of a SIZE MiB file (default 256; the issue's figure is 1024: --size 1024).
            aioquic gets --aioquic-size MiB (default: SIZE, at most 128): its server holds the whole
            body in memory and it moves about 13 MB/s, so a 1 GiB run would take minutes and GBs of
            RAM; MB/s is a rate, comparable across sizes. The table says which size each stack got.
  req/s     N GETs of a 16-byte file on one connection, C in flight

    PYTHONPATH=src:. python benchmarks/h3/bench_h3.py [--size 1024] [--aioquic-size 128] [--requests 2000]
        [--concurrency 100] [--repeat 3]

Prints a table with medians and each stack's ratio to aioquic, and JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

from tests.h3.peers import (  # noqa: E402
    GTLSCLIENT, GTLSSERVER, aioquic_h3_file_server, free_udp_port, start_gtlsserver,
)
from tests.helpers.certs import pki_paths  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), ROOT]))


def _wait_port_ready(delay=0.5):
    time.sleep(delay)


# -- servers (separate processes) -----------------------------------------------------

def start_quicfast_server(directory, pki, port):
    return subprocess.Popen([sys.executable, "-m", "quicfast", "serve", directory, "--port", str(port),
                             "--cert", pki.cert_file, "--key", pki.key_file],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)


def start_aioquic_server(directory, pki, port):
    return subprocess.Popen([sys.executable, __file__, "_aioquic-server", directory, str(port),
                             pki.cert_file, pki.key_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV)


async def _aioquic_server_main(directory, port, cert, key):
    server, _ = await aioquic_h3_file_server(directory, cert, key, port=int(port))
    await asyncio.Event().wait()


# -- clients ----------------------------------------------------------------------------------

async def quicfast_download(port, path, pki):
    from quicfast import h3
    async with h3.Client(ca_file=pki.ca_file) as client:
        await client.connection(f"https://localhost:{port}/")
        start = time.perf_counter()
        r = await client.get(f"https://localhost:{port}{path}")
        total = 0
        async for chunk in r:
            total += len(chunk)
        return total, time.perf_counter() - start


async def quicfast_requests(port, path, pki, n, concurrency):
    from quicfast import h3
    async with h3.Client(ca_file=pki.ca_file) as client:
        await client.connection(f"https://localhost:{port}/")
        sem = asyncio.Semaphore(concurrency)

        async def one():
            async with sem:
                r = await client.get(f"https://localhost:{port}{path}")
                await r.read()
                return r.status

        start = time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(n)))
        elapsed = time.perf_counter() - start
        assert statuses == [200] * n
        return n, elapsed


class _AioquicClient:
    """aioquic's HTTP/3 client with streamed accounting (bodies are counted, not kept)."""

    def __init__(self, port, pki):
        self.port, self.pki = port, pki

    async def run(self, fn):
        from aioquic.asyncio import QuicConnectionProtocol, connect
        from aioquic.h3.connection import H3_ALPN, H3Connection
        from aioquic.h3.events import DataReceived, HeadersReceived
        from aioquic.quic.configuration import QuicConfiguration
        port = self.port

        class Protocol(QuicConnectionProtocol):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self._http = H3Connection(self._quic)
                self._pending = {}

            def quic_event_received(self, event):
                for ev in self._http.handle_event(event):
                    entry = self._pending.get(ev.stream_id)
                    if entry is None:
                        continue
                    if isinstance(ev, DataReceived):
                        entry[1] += len(ev.data)
                    if getattr(ev, "stream_ended", False) and not entry[0].done():
                        entry[0].set_result(entry[1])

            async def get(self, path):
                sid = self._quic.get_next_available_stream_id()
                entry = [asyncio.get_running_loop().create_future(), 0]
                self._pending[sid] = entry
                self._http.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"),
                                              (b":authority", f"localhost:{port}".encode()),
                                              (b":path", path.encode())], end_stream=True)
                self.transmit()
                try:
                    return await entry[0]
                finally:
                    del self._pending[sid]

        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
        config.load_verify_locations(self.pki.ca_file)
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Protocol) as client:
            return await fn(client)


async def aioquic_download(port, path, pki):
    async def fn(client):
        start = time.perf_counter()
        total = await client.get(path)
        return total, time.perf_counter() - start
    return await _AioquicClient(port, pki).run(fn)


async def aioquic_requests(port, path, pki, n, concurrency):
    async def fn(client):
        sem = asyncio.Semaphore(concurrency)

        async def one():
            async with sem:
                return await client.get(path)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n, time.perf_counter() - start
    return await _AioquicClient(port, pki).run(fn)


def ngtcp2_client(port, path, n, outdir):
    """Wall time of gtlsclient fetching `path` n times (handshake included)."""
    start = time.perf_counter()
    result = subprocess.run([GTLSCLIENT, "-q", "--exit-on-all-streams-close", "--download", outdir,
                             "--max-streams-bidi", "100", "-n", str(n), "127.0.0.1", str(port),
                             f"https://localhost:{port}{path}"], capture_output=True, timeout=600)
    elapsed = time.perf_counter() - start
    name = os.path.join(outdir, os.path.basename(path))
    size = os.path.getsize(name) if os.path.exists(name) else 0
    return result, size, elapsed


# -- the run --------------------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_aioquic-server":
        asyncio.run(_aioquic_server_main(*sys.argv[2:6]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="download size in MiB (default 256)")
    parser.add_argument("--aioquic-size", type=int, default=None,
                        help="aioquic's download size in MiB (default: --size, at most 128)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stacks", default="quicfast,aioquic,ngtcp2")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pki = pki_paths()
    www = tempfile.mkdtemp(prefix="bench-h3-")
    aioquic_mib = args.aioquic_size if args.aioquic_size is not None else min(args.size, 128)
    chunk = os.urandom(1 << 20)
    for name, mib in (("big.bin", args.size), ("aioquic.bin", aioquic_mib)):
        with open(os.path.join(www, name), "wb") as f:
            for _ in range(mib):
                f.write(chunk)
    with open(os.path.join(www, "small.txt"), "wb") as f:
        f.write(b"0123456789abcdef")
    stacks = [s for s in args.stacks.split(",") if s != "ngtcp2" or (GTLSCLIENT and GTLSSERVER)]
    results = {}
    for stack in stacks:
        port = free_udp_port()
        if stack == "quicfast":
            proc = start_quicfast_server(www, pki, port)
        elif stack == "aioquic":
            proc = start_aioquic_server(www, pki, port)
        else:
            proc = start_gtlsserver(www, pki.cert_file, pki.key_file, port)
        _wait_port_ready(1.0)
        downloads, rates = [], []
        mib = aioquic_mib if stack == "aioquic" else args.size
        size = mib << 20
        try:
            for _ in range(args.repeat):
                if stack == "quicfast":
                    got, secs = asyncio.run(quicfast_download(port, "/big.bin", pki))
                    n, rsecs = asyncio.run(quicfast_requests(port, "/small.txt", pki, args.requests, args.concurrency))
                elif stack == "aioquic":
                    got, secs = asyncio.run(aioquic_download(port, "/aioquic.bin", pki))
                    n, rsecs = asyncio.run(aioquic_requests(port, "/small.txt", pki, args.requests, args.concurrency))
                else:
                    with tempfile.TemporaryDirectory() as out:
                        _, got, secs = ngtcp2_client(port, "/big.bin", 1, out)
                    with tempfile.TemporaryDirectory() as out:
                        res, _, rsecs = ngtcp2_client(port, "/small.txt", args.requests, out)
                    n = args.requests
                if got != size:
                    raise SystemExit(f"{stack}: downloaded {got} of {size} bytes")
                downloads.append(size / secs / 1e6)
                rates.append(n / rsecs)
        finally:
            proc.terminate()
            proc.wait(10)
        results[stack] = {"download_MiB": mib, "download_MBps": statistics.median(downloads),
                          "requests_per_s": statistics.median(rates),
                          "runs": {"download_MBps": downloads, "requests_per_s": rates}}
    base = results.get("aioquic")
    print(f"HTTP/3 over loopback, one download per stack (size below), {args.requests} requests "
          f"({args.concurrency} in flight), median of {args.repeat}")
    print(f"{'stack':<10} {'MiB':>6} {'download MB/s':>14} {'x aioquic':>10} {'req/s':>10} {'x aioquic':>10}")
    for stack, r in results.items():
        dl_ratio = r["download_MBps"] / base["download_MBps"] if base else float("nan")
        rq_ratio = r["requests_per_s"] / base["requests_per_s"] if base else float("nan")
        print(f"{stack:<10} {r['download_MiB']:>6} {r['download_MBps']:>14.1f} {dl_ratio:>10.2f} "
              f"{r['requests_per_s']:>10.0f} {rq_ratio:>10.2f}")
    if base and aioquic_mib != args.size:
        print(f"(aioquic downloaded {aioquic_mib} MiB instead of {args.size}: MB/s is a rate, the ratios compare rates)")
    if stacks and "ngtcp2" in stacks:
        print("(ngtcp2: gtlsclient wall time, handshake and process start included)")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
