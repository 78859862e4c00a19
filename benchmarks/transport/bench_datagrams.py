"""DATAGRAM (RFC 9221) throughput on loopback: quicfast vs aioquic, with quicfast streams
of the same bytes for reference.

Every measurement is a fresh server process and a fresh client process on 127.0.0.1
(``subprocess``, own session, bounded by timeouts, SIGKILLed if they overstay).  The
client connects with datagrams enabled, opens one bidirectional control stream and
sends a request; the server then sends to the client:

* ``datagrams``  `count` DATAGRAM frames of `size` bytes (default 100,000 × 1,000 B),
  in bursts of `burst` (32).  quicfast: ``conn.send_datagram(payload)``, and after
  each burst ``await conn.drain_datagrams()`` when more than DATAGRAM_LOW_WATER
  frames are still queued (its backpressure);
  aioquic 1.7.2: ``protocol._quic.send_datagram_frame(payload)`` and one
  ``protocol.transmit()`` per burst (``max_datagram_frame_size=65536``).  Then it
  writes its own counters on the control stream and ends it.
* ``stream-1k``  the same bytes on the control stream, as `count` writes of `size`
  bytes (a drain per burst): an application sending the same messages reliably.
* ``stream-1M``  the same bytes on the control stream in 1 MiB writes (bulk).

The client counts what it receives (``await conn.receive_datagrams()``, a batch per call /
``DatagramFrameReceived`` events) until it has everything or, after the server's
end-of-run message, until nothing more arrives for 0.3 s.

Reported: *offered/s* (send calls per second of the sender's loop), *on wire/s*
(QUIC packets the sender emitted during the run, from the library's own counter,
per second of that loop), *delivered/s* (datagrams received per second, from the
request to the last datagram), the delivery ratio (received ÷ offered), MB/s
delivered and CPU seconds per GB delivered on each side (``time.process_time()``:
the client from before connecting to its last datagram, the server from ready to
stopped).  Datagrams are unreliable: what a sender does not get out (quicfast drops
the oldest of its 256 queued frames; aioquic's queue is unbounded) or what the
receive path drops is simply missing, and the delivered rate says so.

Usage::

    PYTHONPATH=src:. python benchmarks/transport/bench_datagrams.py [--repeat 3] \
        [--only quicfast,aioquic] [--workloads datagrams,stream-1k,stream-1M] \
        [--count 100000] [--size 1000] [--burst 32] [--json-out out.json] [--md-out out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.transport._harness import (  # noqa: E402
    emit, wait_stdin_eof, run_children, pki, versions, git_rev)

ALPN = "quicfast-test"
IMPLS = ("quicfast", "aioquic")
WORKLOADS = ("datagrams", "datagrams-yield", "stream-1k", "stream-1M")
OPS = {"datagrams": b"G", "datagrams-yield": b"Y", "stream-1k": b"S", "stream-1M": b"B"}
# aioquic moves ~4,000 datagrams/s: fewer for it (the rates are per second anyway)
DEFAULT_COUNT = {"quicfast": 100_000, "aioquic": 20_000}
PACE_CAP = 0.005             # s: longest a paced sender holds a burst back
HDR = 1 + 8 + 4 + 4          # op, count, size, burst
BIG = 1 << 20
QUIET = 0.3                  # s without a datagram after the end message: the run is over


def _request(workload: str, count: int, size: int, burst: int) -> bytes:
    return OPS[workload] + count.to_bytes(8, "big") + size.to_bytes(4, "big") + burst.to_bytes(4, "big")


def _parse(hdr: bytes):
    return hdr[:1], int.from_bytes(hdr[1:9], "big"), int.from_bytes(hdr[9:13], "big"), int.from_bytes(hdr[13:17], "big")


# =============================================================================
# server
# =============================================================================

async def server_quicfast(args, paths) -> None:
    import quicfast
    from quicfast.connection import DATAGRAM_LOW_WATER
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_cert_chain(paths["cert"], paths["key"])
    tls.set_alpn_protocols([ALPN])
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(tls, quicfast.Config(enable_datagrams=True))
    tasks = set()

    async def handle(conn):
        try:
            stream = await conn.accept_stream()
            op, count, size, burst = _parse(await stream.readexactly(HDR))
            payload = b"\x00" * size
            st0 = conn.stats()
            t0, c0 = time.perf_counter(), time.process_time()
            if op in (b"G", b"Y"):
                send = conn.send_datagram
                sleep = asyncio.sleep
                waits = 0
                for i in range(0, count, burst):
                    for _ in range(min(burst, count - i)):
                        send(payload)
                    if op == b"G":
                        # backpressure: wait until at most DATAGRAM_LOW_WATER frames are queued
                        if conn.datagrams_queued > DATAGRAM_LOW_WATER:
                            waits += 1
                            await conn.drain_datagrams()
                    else:
                        await sleep(0)
                await conn.drain_datagrams()
            elif op == b"S":
                for i in range(0, count, burst):
                    for _ in range(min(burst, count - i)):
                        stream.write(payload)
                    await stream.drain()
            else:
                total = count * size
                chunk = b"\x00" * BIG
                sent = 0
                while sent < total:
                    k = min(BIG, total - sent)
                    stream.write(chunk if k == BIG else chunk[:k])
                    await stream.drain()
                    sent += k
            t1, c1 = time.perf_counter(), time.process_time()
            await asyncio.sleep(0)          # let the last burst go out before reading counters
            st1 = conn.stats()
            stream.write(json.dumps({
                "offered": count, "send_wall": t1 - t0, "send_cpu": c1 - c0,
                "wire_packets": st1["packets_sent"] - st0["packets_sent"],
                "lost_packets": st1["packets_lost"] - st0["packets_lost"],
                "cwnd_end": st1["congestion_window"], "pace_waits": waits if op in (b"G", b"Y") else 0}).encode())
            stream.close()
            await conn.wait_closed()
        except Exception as exc:
            emit({"server_error": f"{type(exc).__name__}: {exc}"})

    async def accept_loop():
        while True:
            conn = await listener.accept()
            t = asyncio.create_task(handle(conn))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    cpu0 = time.process_time()
    emit({"port": transport.local_addr[1]})
    acceptor = asyncio.create_task(accept_loop())
    await wait_stdin_eof()
    emit({"server_cpu": time.process_time() - cpu0})
    acceptor.cancel()
    transport.close()


async def server_aioquic(args, paths) -> None:
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    class Server(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._hdr = b""
            self._started = False

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived) and not self._started:
                self._hdr += event.data
                if len(self._hdr) >= HDR:
                    self._started = True
                    asyncio.ensure_future(self._run(event.stream_id, *_parse(self._hdr[:HDR])))

        async def _run(self, sid, op, count, size, burst):
            q = self._quic
            payload = b"\x00" * size
            pn0 = q._packet_number
            max_pending = 0
            t0, c0 = time.perf_counter(), time.process_time()
            if op not in (b"G", b"Y"):
                raise ValueError("aioquic side: datagrams only")
            send = q.send_datagram_frame
            pending = q._datagrams_pending
            waits = 0
            for i in range(0, count, burst):
                if op == b"G":
                    # hold the next burst while more than one burst is still queued
                    t_wait = time.perf_counter()
                    while len(pending) > burst and time.perf_counter() - t_wait < PACE_CAP:
                        waits += 1
                        await asyncio.sleep(0)
                for _ in range(min(burst, count - i)):
                    send(payload)
                self.transmit()
                if len(pending) > max_pending:
                    max_pending = len(pending)
                await asyncio.sleep(0)
            while pending:              # aioquic's queue is unbounded: let it drain
                self.transmit()
                await asyncio.sleep(0.001)
            t1, c1 = time.perf_counter(), time.process_time()
            q.send_stream_data(sid, json.dumps({
                "offered": count, "send_wall": t1 - t0, "send_cpu": c1 - c0,
                "wire_packets": q._packet_number - pn0, "max_pending": max_pending, "pace_waits": waits,
                "cwnd_end": q._loss._cc.congestion_window if hasattr(q._loss, "_cc") else None,
            }).encode(), end_stream=True)
            self.transmit()

    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_datagram_frame_size=65536)
    config.load_cert_chain(paths["cert"], paths["key"])
    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=Server)
    port = server._transport.get_extra_info("sockname")[1]
    cpu0 = time.process_time()
    emit({"port": port})
    await wait_stdin_eof()
    emit({"server_cpu": time.process_time() - cpu0})
    server.close()


# =============================================================================
# client
# =============================================================================

class _Counter:
    """Counts received datagrams / bytes and stamps the last arrival."""

    def __init__(self):
        self.n = 0
        self.bytes = 0
        self.t_last = None
        self.changed = asyncio.Event()


async def _finish(counter: _Counter, reply_fut, count: int, t0: float, cpu0: float, workload: str) -> dict:
    """Wait for the end message, then for stragglers until QUIET s pass without news."""
    reply = await reply_fut
    if workload.startswith("datagrams"):
        while counter.n < count:
            counter.changed.clear()
            try:
                await asyncio.wait_for(counter.changed.wait(), QUIET)
            except asyncio.TimeoutError:
                break
    t_last = counter.t_last if counter.t_last is not None else time.perf_counter()
    return {"received": counter.n, "received_bytes": counter.bytes, "wall": t_last - t0,
            "client_cpu": time.process_time() - cpu0, **json.loads(reply)}


async def client_quicfast(args) -> dict:
    import quicfast
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_verify_locations(cafile=args.paths["ca"])
    tls.set_alpn_protocols([ALPN])
    cpu0 = time.process_time()
    conn = await quicfast.dial_addr(("127.0.0.1", args.port), tls, quicfast.Config(enable_datagrams=True))
    assert conn.connection_state().supports_datagrams
    counter = _Counter()
    size = args.size
    total = args.count * size
    stream = conn.open_stream()
    t0 = time.perf_counter()
    stream.write(_request(args.workload, args.count, size, args.burst))

    async def rx_datagrams():
        recv = conn.receive_datagrams
        while True:
            batch = await recv()
            counter.n += len(batch)
            counter.bytes += sum(map(len, batch))
            counter.t_last = time.perf_counter()
            counter.changed.set()

    async def rx_stream():
        if args.workload.startswith("datagrams"):
            return await stream.read_all()
        got, extra = 0, b""
        while got < total:
            chunk = await stream.read(BIG)
            if not chunk:
                break
            body = min(len(chunk), total - got)
            got += body
            extra = chunk[body:]
        counter.n, counter.bytes, counter.t_last = got // size, got, time.perf_counter()
        return extra + await stream.read_all()

    rx = asyncio.create_task(rx_datagrams()) if args.workload.startswith("datagrams") else None
    try:
        return await _finish(counter, asyncio.ensure_future(rx_stream()), args.count, t0, cpu0, args.workload)
    finally:
        if rx:
            rx.cancel()
        conn.close()
        try:
            await asyncio.wait_for(conn.wait_closed(), 2.0)
        except Exception:
            pass


async def client_aioquic(args) -> dict:
    from aioquic.asyncio import QuicConnectionProtocol, connect
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import DatagramFrameReceived, StreamDataReceived

    counter = _Counter()
    size = args.size
    loop = asyncio.get_running_loop()
    reply_fut = loop.create_future()
    stream_state = {"tail": b""}
    workload = args.workload

    class Client(QuicConnectionProtocol):
        def quic_event_received(self, event):
            if isinstance(event, DatagramFrameReceived):
                counter.n += 1
                counter.bytes += len(event.data)
                counter.t_last = time.perf_counter()
                counter.changed.set()
            elif isinstance(event, StreamDataReceived):
                data = event.data
                stream_state["tail"] += data
                if event.end_stream and not reply_fut.done():
                    reply_fut.set_result(stream_state["tail"])

    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost",
                               max_datagram_frame_size=65536)
    config.load_verify_locations(args.paths["ca"])
    cpu0 = time.process_time()
    async with connect("127.0.0.1", args.port, configuration=config, create_protocol=Client) as client:
        q = client._quic
        sid = q.get_next_available_stream_id()
        t0 = time.perf_counter()
        q.send_stream_data(sid, _request(workload, args.count, size, args.burst))
        client.transmit()
        res = await _finish(counter, reply_fut, args.count, t0, cpu0, workload)
        client.close()
    return res


# =============================================================================
# orchestration
# =============================================================================

def child_main(args) -> None:
    args.paths = json.loads(args.pki)
    if args.role == "server":
        asyncio.run({"quicfast": server_quicfast, "aioquic": server_aioquic}[args.impl](args, args.paths))
    else:
        fn = {"quicfast": client_quicfast, "aioquic": client_aioquic}[args.impl]
        emit(asyncio.run(asyncio.wait_for(fn(args), args.timeout)))
    sys.stdout.flush()
    os._exit(0)


def run_one(impl, workload, args, paths) -> dict:
    count = args.count or DEFAULT_COUNT[impl]
    common = ["--impl", impl, "--workload", workload, "--count", str(count), "--size", str(args.size),
              "--burst", str(args.burst), "--pki", json.dumps(paths), "--timeout", str(args.timeout)]
    res = run_children(os.path.abspath(__file__), common, args.timeout, args.quicfast_src)
    if "server_error" in res:
        raise RuntimeError(f"server: {res['server_error']}")
    wall, offered = res["wall"], res["offered"]
    gb = res["received_bytes"] / 1e9
    res.update(peer=impl, workload=workload, count=count,
               offered_rate=offered / res["send_wall"],
               wire_rate=res["wire_packets"] / res["send_wall"],
               delivered_rate=res["received"] / wall,
               ratio=res["received"] / offered,
               mb_s=res["received_bytes"] / wall / 1e6,
               client_cpu_per_gb=res["client_cpu"] / gb if gb else None,
               server_cpu_per_gb=res["server_cpu"] / gb if gb else None)
    return res


KEYS = ("offered_rate", "wire_rate", "delivered_rate", "ratio", "mb_s", "client_cpu_per_gb", "server_cpu_per_gb")


def summarize(results):
    out = {}
    for r in results:
        s = out.setdefault((r["peer"], r["workload"]), {"runs": [], "errors": []})
        (s["errors"].append(r["error"]) if "error" in r else s["runs"].append(r))
    for s in out.values():
        for k in KEYS:
            vals = [r[k] for r in s["runs"] if r.get(k) is not None]
            if vals:
                s[k] = (statistics.median(vals), min(vals), max(vals))
    return out


def markdown(summary, impls, workloads, size, burst) -> str:
    def cell(s, k, fmt):
        if k not in s:
            return "-"
        m, lo, hi = s[k]
        return fmt.format(m) + (f" ({fmt.format(lo)}–{fmt.format(hi)})" if len(s["runs"]) > 1 else "")

    lines = [f"### Server → client, {size:,}-byte messages, bursts of {burst} "
             "(median of runs; min–max in brackets)", "",
             "| peer | workload | count | runs | offered/s | on wire pkts/s | delivered/s | delivered ratio | MB/s delivered "
             "| client CPU s/GB | server CPU s/GB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in workloads:
        for impl in impls:
            s = summary.get((impl, w))
            if s is None:
                continue
            if not s["runs"]:
                lines.append(f"| {impl} | {w} | | 0 | error: {s['errors'][0]} | | | | | | |")
                continue
            lines.append(f"| {impl} | {w} | {s['runs'][0]['count']:,} | {len(s['runs'])} | {cell(s, 'offered_rate', '{:,.0f}')} | "
                         f"{cell(s, 'wire_rate', '{:,.0f}')} | {cell(s, 'delivered_rate', '{:,.0f}')} | "
                         f"{cell(s, 'ratio', '{:.3f}')} | {cell(s, 'mb_s', '{:.1f}')} | "
                         f"{cell(s, 'client_cpu_per_gb', '{:.2f}')} | {cell(s, 'server_cpu_per_gb', '{:.2f}')} |")
    lines.append("")
    q = summary.get(("quicfast", "datagrams"))
    rows = []
    for (impl, w) in (("aioquic", "datagrams"), ("quicfast", "stream-1k"), ("quicfast", "stream-1M")):
        s = summary.get((impl, w))
        if q and s and "mb_s" in q and "mb_s" in s:
            cpu_q = q["client_cpu_per_gb"][0] + q["server_cpu_per_gb"][0]
            cpu_s = s["client_cpu_per_gb"][0] + s["server_cpu_per_gb"][0]
            rows.append(f"| {impl} {w} | {q['mb_s'][0] / s['mb_s'][0]:.2f}x | {cpu_q / cpu_s:.2f}x |")
    if rows:
        lines += ["### quicfast datagrams ÷ other (delivered MB/s; CPU s/GB client + server)", "",
                  "| vs | delivered MB/s ratio | CPU per GB ratio (< 1: datagrams cheaper) |", "|---|---:|---:|"] + rows + [""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(IMPLS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--count", type=int, default=None, help="datagrams per run (default 100,000; aioquic 20,000)")
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--quicfast-src", default=None,
                    help="quicfast source tree (built in place) the children import; default this checkout's src/")
    ap.add_argument("--json-out")
    ap.add_argument("--md-out")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pki", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    impls = [i for i in args.only.split(",") if i]
    workloads = [w for w in args.workloads.split(",") if w]
    for n in impls + workloads:
        if n not in IMPLS + WORKLOADS:
            ap.error(f"unknown peer or workload {n!r}")
    paths = pki()
    results = []
    t_start = time.time()
    for rep in range(args.repeat):
        for w in workloads:
            for impl in impls:
                if impl == "aioquic" and not w.startswith("datagrams"):   # the stream reference is quicfast's
                    continue
                t0 = time.perf_counter()
                try:
                    r = run_one(impl, w, args, paths)
                    what = (f"offered {r['offered_rate']:,.0f}/s delivered {r['delivered_rate']:,.0f}/s "
                            f"ratio {r['ratio']:.3f} {r['mb_s']:.1f} MB/s")
                except Exception as exc:
                    r = {"peer": impl, "workload": w, "error": f"{type(exc).__name__}: {exc}"[:300]}
                    what = r["error"]
                r["rep"] = rep
                results.append(r)
                print(f"[rep {rep + 1}/{args.repeat}] {w:10s} {impl:9s} {what} ({time.perf_counter() - t0:.1f} s)",
                      file=sys.stderr, flush=True)
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(t_start))}, {os.cpu_count()} CPUs, "
              f"{versions(('aioquic',))}, quicfast {git_rev(args.quicfast_src)}, repeat {args.repeat}, "
              f"total {time.time() - t_start:.0f} s\n")
    md = markdown(summarize(results), impls, workloads, args.size, args.burst)
    print(header)
    print(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"header": header, "results": results}, f, indent=2)
    if args.md_out:
        with open(args.md_out, "w") as f:
            f.write(header + "\n" + md)


if __name__ == "__main__":
    main()
