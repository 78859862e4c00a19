"""Engine throughput in one process with no sockets (quinn bench/src/bin/bulk.rs).

Two sans-I/O engines of the same implementation are joined by a simulated
link: datagrams go straight from one engine's send call into the other's
receive call, and a simulated clock advances with the bytes moved. Two
workloads, run side by side for quicfast, aioquic and qh3:

- **bulk**: the client writes N MiB on one stream (1 MiB writes, kept at
  most 16 MiB ahead of the reader), the server reads it all. MB/s (10^6 B)
  and CPU seconds per GiB; the CPU is both endpoints' (one process).
- **streams**: the client runs many short request/response streams (a
  100-byte request, a 1,000-byte response, 100 in flight); streams/s.

Each implementation is driven through its fastest public path: quicfast
fills a 64-datagram buffer (`fill_send_buffer`, the GSO path) and the
receiver takes that buffer as UDP GRO would deliver it, decrypting in place
(`receive_segments`, one call per buffer);
qh3 receives 64 datagrams per `receive_many_datagrams` call; aioquic has
only `datagrams_to_send`/`receive_datagram`. `quicfast-list` drives
quicfast through that same list API, for comparison.

The simulated link: 10 Gbit/s each way, 50 µs one-way delay, no loss, no
reordering, unbounded queue. A sender's datagrams leave in the batches its
send call returned (one GSO send); a receiver wakes at most once per
READ_QUANTUM (the time 64 full datagrams take on the link), reads what has
arrived 64 datagrams at a time (recvmmsg), then answers (ACKs, MAX_DATA), as
the asyncio shell does. When nobody can send,
the clock moves to the next arrival or timer; a jump to a timer with nothing
on the wire is counted as an "idle jump" (ACK delay, PTO, or a stall).
The handshake is not timed. Runs are interleaved and the best of
`--reps` is kept, because the machine is shared.

    PYTHONPATH=src:. python -m benchmarks.engine.bench_bulk
    PYTHONPATH=src:. python -m benchmarks.engine.bench_bulk --quick
    PYTHONPATH=src:. python -m benchmarks.engine.bench_bulk --json out.json
    PYTHONPATH=src:. python -m benchmarks.engine.bench_bulk --only quicfast --workload bulk --reps 1  # for a profiler
"""

from __future__ import annotations

import argparse
import collections
import gc
import hashlib
import json
import math
import os
import platform
import sys
import time

try:  # a CA plus a leaf it signed: qh3's client rejects a self-signed CA leaf
    from tests.helpers.certs import pki_paths as test_pki
except ImportError:
    from tests.helpers.certs import test_pki

ALPN = "quicfast-bench"
CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 4433)
MiB = 1 << 20
GiB = 1 << 30

LINK_RATE = 1.25e9  # bytes per simulated second: 10 Gbit/s
ONE_WAY_DELAY = 50e-6  # added after each direction's burst
BATCH = 64  # datagrams per send call / per receive batch
READ_QUANTUM = BATCH * 1500 / LINK_RATE  # a receiver wakes at most this often (s)
MAX_IDLE_JUMPS_IN_A_ROW = 200

IMPLEMENTATIONS = ("quicfast", "quicfast-list", "aioquic", "qh3")
DEFAULT_BULK_MIB = {"quicfast": 256, "quicfast-list": 128, "aioquic": 32, "qh3": 64}
DEFAULT_STREAMS = {"quicfast": 10_000, "quicfast-list": 10_000, "aioquic": 10_000, "qh3": 10_000}


class BenchError(RuntimeError):
    """The engines stopped making progress or closed the connection."""


def _noop(stream_id, data, fin):
    pass


# ---------------------------------------------------------------------------
# Endpoints: one engine each, behind the few calls the driver needs
# ---------------------------------------------------------------------------


class Endpoint:
    """transmit(now) yields (batch, bytes, count, buffer) sends, the buffer
    (or None) going back to the sender's pool once delivered; receive_all
    (batches, now) takes what arrived, as a socket layer would read it;
    poll() turns events into on_data(stream_id, data, fin) calls.

    A batch is a list of datagrams, except for the quicfast GSO path where
    it is the (buffer, segment size, total) of one GSO send."""

    def __init__(self, conn, peer_addr):
        self.conn = conn
        self.peer_addr = peer_addr
        self.handshake_done = False
        self.on_data = _noop

    def timer(self):
        return self.conn.get_timer()

    def handle_timer(self, now):
        self.conn.handle_timer(now)

    def send(self, stream_id, data, fin):
        self.conn.send_stream_data(stream_id, data, fin)

    def receive_all(self, batches, now):
        """recvmmsg: up to BATCH datagrams per read, events after each read."""
        arrived = [datagram for batch in batches for datagram in batch]
        for j in range(0, len(arrived), BATCH):
            self.receive(arrived[j:j + BATCH], now)
            self.poll()


class QuicfastEndpoint(Endpoint):
    """The fast path: GSO-style buffer out; on the way in, as UDP GRO reads
    it (one buffer of equal segments), decrypted in place in one call."""

    def __init__(self, conn, peer_addr):
        super().__init__(conn, peer_addr)
        from quicfast.proto import events
        self._available = events.StreamDataAvailable
        self._handshake = events.HandshakeCompleted
        self._terminated = events.ConnectionTerminated
        self.pool = []  # send buffers back from the other side once it has read them

    def transmit(self, now):
        conn, pool = self.conn, self.pool
        while True:
            buf = pool.pop() if pool else bytearray(BATCH * 1500)
            count, seg, total = conn.fill_send_buffer(buf, BATCH, now)
            if not count:
                pool.append(buf)
                return
            yield (buf, seg, total), total, count, buf

    def receive_all(self, batches, now):
        receive, addr = self.conn.receive_segments, self.peer_addr
        for buf, seg, total in batches:
            receive(buf, total, seg, addr, now)
            self.poll()

    def poll(self):
        conn, on_data = self.conn, self.on_data
        for event in conn.drain_events():   # one call per batch
            kind = type(event)
            if kind is self._available:
                data, fin = conn.read_stream(event.stream_id)
                on_data(event.stream_id, data, fin)
            elif kind is self._handshake:
                self.handshake_done = True
            elif kind is self._terminated:
                raise BenchError(f"quicfast connection terminated: {event!r}")

    def open_stream(self):
        if not self.conn.can_open_stream():
            return None
        return self.conn.open_stream()

    def stats(self):
        return self.conn.stats()


class QuicfastListEndpoint(QuicfastEndpoint):
    """quicfast through the list API that aioquic and qh3 offer."""

    receive_all = Endpoint.receive_all

    def transmit(self, now):
        datagrams = [data for data, _ in self.conn.datagrams_to_send(now)]
        for i in range(0, len(datagrams), BATCH):
            batch = datagrams[i:i + BATCH]
            yield batch, sum(map(len, batch)), len(batch), None

    def receive(self, batch, now):
        receive, addr = self.conn.receive_datagram, self.peer_addr
        for datagram in batch:
            receive(datagram, addr, now)


class AioquicEndpoint(Endpoint):
    """aioquic, or qh3 (same API; qh3 also takes a list of datagrams)."""

    def __init__(self, conn, peer_addr, events, many):
        super().__init__(conn, peer_addr)
        self._received = events.StreamDataReceived
        self._handshake = events.HandshakeCompleted
        self._terminated = events.ConnectionTerminated
        self._many = many
        if many:
            self.receive = self._receive_many

    def transmit(self, now):
        datagrams = [data for data, _ in self.conn.datagrams_to_send(now)]
        for i in range(0, len(datagrams), BATCH):
            batch = datagrams[i:i + BATCH]
            yield batch, sum(map(len, batch)), len(batch), None

    def receive(self, batch, now):
        receive, addr = self.conn.receive_datagram, self.peer_addr
        for datagram in batch:
            receive(datagram, addr, now)

    def _receive_many(self, batch, now):
        self.conn.receive_many_datagrams(batch, self.peer_addr, now)

    def poll(self):
        conn, on_data = self.conn, self.on_data
        while (event := conn.next_event()) is not None:
            kind = type(event)
            if kind is self._received:
                on_data(event.stream_id, event.data, event.end_stream)
            elif kind is self._handshake:
                self.handshake_done = True
            elif kind is self._terminated:
                raise BenchError(f"connection terminated: {event!r}")

    def open_stream(self):
        # Both create the stream on the first send_stream_data. Past the
        # peer's limit aioquic queues the stream; qh3 raises ValueError but
        # has already used up the id, so the peer later opens it implicitly
        # and it never ends: ask qh3 for the peer's limit first.
        sid = self.conn.get_next_available_stream_id()
        if self._many and sid // 4 >= self.conn.max_concurrent_bidi_streams:
            return None
        return sid

    def stats(self):
        return {}


def _initial_cids(datagram: bytes) -> tuple[bytes, bytes]:
    """(dcid, scid) of a long-header packet (RFC 9000 §17.2)."""
    dlen = datagram[5]
    dcid = bytes(datagram[6:6 + dlen])
    slen = datagram[6 + dlen]
    return dcid, bytes(datagram[7 + dlen:7 + dlen + slen])


def make_quicfast(list_api=False):
    from quicfast.config import Config
    from quicfast.proto.connection import Connection
    from quicfast.tls import TLSConfig

    pki = test_pki()
    ctls = TLSConfig()
    ctls.load_verify_locations(cafile=pki.ca_file)
    ctls.set_alpn_protocols([ALPN])
    client = Connection(is_client=True, config=Config(), tls_config=ctls, host_cid=os.urandom(8),
                        peer_cid=os.urandom(8), server_name="localhost")
    client.connect(SERVER_ADDR, 0.0)
    first = client.datagrams_to_send(0.0)
    dcid, scid = _initial_cids(first[0][0])
    stls = TLSConfig()
    stls.load_cert_chain(pki.cert_file, pki.key_file)
    stls.set_alpn_protocols([ALPN])
    server = Connection(is_client=False, config=Config(), tls_config=stls, host_cid=os.urandom(8),
                        peer_cid=scid, original_dcid=dcid, peer_addr=CLIENT_ADDR,
                        version=int.from_bytes(first[0][0][1:5], "big"))
    for data, _ in first:
        server.receive_datagram(data, CLIENT_ADDR, 0.0)
    cls = QuicfastListEndpoint if list_api else QuicfastEndpoint
    return cls(client, SERVER_ADDR), cls(server, CLIENT_ADDR)


def make_aioquic_like(package: str):
    if package == "aioquic":
        from aioquic.quic import events
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
    else:
        from qh3.quic import events
        from qh3.quic.configuration import QuicConfiguration
        from qh3.quic.connection import QuicConnection

    pki = test_pki()
    cconf = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
    cconf.load_verify_locations(pki.ca_file)
    client = QuicConnection(configuration=cconf)
    client.connect(SERVER_ADDR, 0.0)
    first = client.datagrams_to_send(0.0)
    dcid, _ = _initial_cids(first[0][0])
    sconf = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    sconf.load_cert_chain(pki.cert_file, pki.key_file)
    server = QuicConnection(configuration=sconf, original_destination_connection_id=dcid)
    for data, _ in first:
        server.receive_datagram(data, CLIENT_ADDR, 0.0)
    many = package == "qh3"
    return (AioquicEndpoint(client, SERVER_ADDR, events, many),
            AioquicEndpoint(server, CLIENT_ADDR, events, many))


FACTORIES = {
    "quicfast": lambda: make_quicfast(),
    "quicfast-list": lambda: make_quicfast(list_api=True),
    "aioquic": lambda: make_aioquic_like("aioquic"),
    "qh3": lambda: make_aioquic_like("qh3"),
}


# ---------------------------------------------------------------------------
# The simulated link and clock
# ---------------------------------------------------------------------------


class Link:
    """A lossless link both ways, its clock, and the engines' timers.

    Each turn, both sides take in the batches that have arrived by now, the
    application acts, then each side sends everything its engine lets it
    send now: 64-datagram batches that reach the other side after their
    serialization at LINK_RATE plus ONE_WAY_DELAY. When nobody sends, the
    clock moves to the next arrival or timer. A jump to a timer with nothing
    on the wire is an "idle jump" (ACK delay, PTO, a stall).
    """

    def __init__(self, client: Endpoint, server: Endpoint):
        self.sides = (client, server)
        self.client, self.server = client, server
        self.wire = (collections.deque(), collections.deque())  # client->server, server->client
        self.free_at = [0.0, 0.0]
        self.now = 0.0
        self.datagrams = [0, 0]
        self.bytes = [0, 0]
        self.steps = 0
        self.idle_jumps = 0
        self.idle_time = 0.0
        self._idle_in_a_row = 0

    def step(self, tick, jump=True):
        """One turn; returns whether anything was delivered or sent."""
        now = self.now
        moved = False
        for i, side in enumerate(self.sides):
            incoming = self.wire[1 - i]
            if incoming and incoming[0][0] <= now:
                arrived, buffers = [], []
                while incoming and incoming[0][0] <= now:
                    _, batch, buf = incoming.popleft()
                    arrived.append(batch)
                    if buf is not None:
                        buffers.append(buf)
                side.receive_all(arrived, now)
                if buffers:
                    self.sides[1 - i].pool.extend(buffers)
                moved = True
        tick()
        for i, side in enumerate(self.sides):
            t = max(self.free_at[i], now)
            wire = self.wire[i]
            for batch, size, count, buf in side.transmit(now):
                t += size / LINK_RATE
                wire.append((t + ONE_WAY_DELAY, batch, buf))
                self.datagrams[i] += count
                self.bytes[i] += size
                moved = True
            self.free_at[i] = t
        self.steps += 1
        if not moved:
            arrivals = [w[0][0] for w in self.wire if w]
            timers = [t for t in (self.client.timer(), self.server.timer()) if t is not None]
            if arrivals:
                # a receiver reads at most once per READ_QUANTUM, so what
                # arrived meanwhile is read in one go (interrupt coalescing)
                now = max(now, min(max(min(arrivals), now + READ_QUANTUM), min(timers, default=math.inf)))
            elif jump:
                if not timers:
                    raise BenchError(f"deadlock at t={now:.6f}: nothing on the wire, nothing to send, no timer")
                self._idle_in_a_row += 1
                if self._idle_in_a_row > MAX_IDLE_JUMPS_IN_A_ROW:
                    raise BenchError(f"stalled at t={now:.6f}: {self._idle_in_a_row} idle timer jumps in a row")
                target = min(timers)
                if target > now:
                    self.idle_jumps += 1
                    self.idle_time += target - now
                    now = target
            else:
                return False
        else:
            self._idle_in_a_row = 0
        self.now = now
        for side in self.sides:
            t = side.timer()
            if t is not None and t <= now:
                side.handle_timer(now)
        return True

    def handshake(self):
        while not (self.client.handshake_done and self.server.handshake_done):
            self.step(_nothing)
            if self.now > 5.0:
                raise BenchError("handshake did not complete in 5 simulated seconds")
        # let HANDSHAKE_DONE and the last ACKs settle, without jumping to timers
        for _ in range(50):
            if not self.step(_nothing, jump=False):
                break


def _nothing():
    pass


# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------


def run_bulk(impl: str, total: int, chunk: int = MiB, ahead: int = 16 * MiB, verify: bool = False) -> dict:
    client, server = FACTORIES[impl]()
    link = Link(client, server)
    link.handshake()
    payload = os.urandom(chunk)
    state = {"written": 0, "received": 0, "fin": False}
    digest = hashlib.sha256() if verify else None

    def on_data(stream_id, data, fin):
        state["received"] += len(data)
        if digest is not None:
            digest.update(data)
        if fin:
            state["fin"] = True

    server.on_data = on_data
    sid = client.open_stream()

    def tick():
        written = state["written"]
        while written < total and written - state["received"] < ahead:
            n = min(chunk, total - written)
            written += n
            client.send(sid, payload if n == chunk else payload[:n], written == total)
        state["written"] = written

    base = list(link.datagrams), list(link.bytes), link.steps, link.idle_jumps, link.idle_time, link.now
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while not state["fin"]:
        link.step(tick)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    if state["received"] != total:
        raise BenchError(f"{impl}: received {state['received']} of {total} bytes")
    if digest is not None:
        expect = hashlib.sha256()
        for off in range(0, total, chunk):
            expect.update(payload[:min(chunk, total - off)])
        if digest.digest() != expect.digest():
            raise BenchError(f"{impl}: received bytes differ from those sent")
    return {
        "impl": impl, "bytes": total, "wall_s": wall, "cpu_s": cpu,
        "mb_per_s": total / 1e6 / wall, "cpu_mb_per_s": total / 1e6 / cpu, "cpu_s_per_gib": cpu / (total / GiB),
        **_link_figures(link, base), "client_stats": client.stats(), "server_stats": server.stats(),
    }


def run_streams(impl: str, count: int, in_flight: int = 100, request_size: int = 100,
                response_size: int = 1000) -> dict:
    client, server = FACTORIES[impl]()
    link = Link(client, server)
    link.handshake()
    request, response = b"q" * request_size, b"r" * response_size
    state = {"opened": 0, "in_flight": 0, "done": 0, "response_bytes": 0, "refused": 0}

    def on_request(stream_id, data, fin):
        if fin:
            server.send(stream_id, response, True)

    def on_response(stream_id, data, fin):
        state["response_bytes"] += len(data)
        if fin:
            state["done"] += 1
            state["in_flight"] -= 1

    server.on_data, client.on_data = on_request, on_response

    def tick():
        while state["in_flight"] < in_flight and state["opened"] < count:
            sid = client.open_stream()
            if sid is None:
                state["refused"] += 1
                return
            try:
                client.send(sid, request, True)
            except ValueError:  # qh3: past the peer's stream limit
                state["refused"] += 1
                return
            state["opened"] += 1
            state["in_flight"] += 1

    base = list(link.datagrams), list(link.bytes), link.steps, link.idle_jumps, link.idle_time, link.now
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while state["done"] < count:
        link.step(tick)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    if state["response_bytes"] != count * response_size:
        raise BenchError(f"{impl}: {state['response_bytes']} response bytes, expected {count * response_size}")
    return {
        "impl": impl, "streams": count, "in_flight": in_flight, "wall_s": wall, "cpu_s": cpu,
        "streams_per_s": count / wall, "cpu_streams_per_s": count / cpu, "limit_refusals": state["refused"],
        **_link_figures(link, base), "client_stats": client.stats(), "server_stats": server.stats(),
    }


def _link_figures(link: Link, base) -> dict:
    datagrams = [link.datagrams[i] - base[0][i] for i in (0, 1)]
    nbytes = [link.bytes[i] - base[1][i] for i in (0, 1)]
    return {
        "datagrams_c2s": datagrams[0], "datagrams_s2c": datagrams[1],
        "mean_datagram_c2s": nbytes[0] / datagrams[0] if datagrams[0] else 0,
        "mean_datagram_s2c": nbytes[1] / datagrams[1] if datagrams[1] else 0,
        "steps": link.steps - base[2], "idle_jumps": link.idle_jumps - base[3],
        "idle_sim_s": link.idle_time - base[4], "sim_s": link.now - base[5],
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _best(runs: list[dict], key: str) -> dict:
    return max(runs, key=lambda r: r[key])


def _ratio(a, b):
    return f"{a / b:.1f}×" if a and b else "-"


def print_report(best_bulk: dict, best_streams: dict, args) -> None:
    names = [n for n in args.only if n in best_bulk or n in best_streams]
    if best_bulk:
        print(f"\n## Bulk, one stream, client → server (best of {args.reps})\n")
        print("| engine | size | MB/s | CPU s/GiB | quicfast / engine | datagram B (data, ack) | "
              "datagrams s→c per c→s | idle jumps |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        qf = best_bulk.get("quicfast")
        for n in names:
            r = best_bulk.get(n)
            if r is None:
                continue
            print(f"| {n} | {r['bytes'] // MiB} MiB | {r['mb_per_s']:.1f} | {r['cpu_s_per_gib']:.2f} | "
                  f"{_ratio(qf['mb_per_s'], r['mb_per_s']) if qf else '-'} | "
                  f"{r['mean_datagram_c2s']:.0f}, {r['mean_datagram_s2c']:.0f} | "
                  f"{r['datagrams_s2c'] / max(1, r['datagrams_c2s']):.2f} | {r['idle_jumps']} |")
    if best_streams:
        print(f"\n## Request/response streams, {args.in_flight} in flight, "
              f"{args.request_size} B up / {args.response_size} B down (best of {args.reps})\n")
        print("| engine | streams | streams/s | CPU µs/stream | quicfast / engine | datagrams per stream | "
              "limit waits | idle jumps |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        qf = best_streams.get("quicfast")
        for n in names:
            r = best_streams.get(n)
            if r is None:
                continue
            print(f"| {n} | {r['streams']} | {r['streams_per_s']:.0f} | {r['cpu_s'] / r['streams'] * 1e6:.1f} | "
                  f"{_ratio(qf['streams_per_s'], r['streams_per_s']) if qf else '-'} | "
                  f"{(r['datagrams_c2s'] + r['datagrams_s2c']) / r['streams']:.2f} | "
                  f"{r['limit_refusals']} | {r['idle_jumps']} |")
    for title, table in (("bulk", best_bulk), ("streams", best_streams)):
        for n in names:
            r = table.get(n)
            if r and r.get("client_stats"):
                lost = r["client_stats"].get("packets_lost", 0) + r["server_stats"].get("packets_lost", 0)
                if lost:
                    print(f"\nnote: {n} {title}: the engines declared {lost} packets lost on a lossless link")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=list(IMPLEMENTATIONS), choices=IMPLEMENTATIONS)
    p.add_argument("--workload", choices=("bulk", "streams", "both"), default="both")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--mib", type=int, default=None, help="bulk size for every engine (default: per engine)")
    p.add_argument("--streams", type=int, default=None, help="streams for every engine (default 10,000)")
    p.add_argument("--in-flight", type=int, default=100)
    p.add_argument("--request-size", type=int, default=100)
    p.add_argument("--response-size", type=int, default=1000)
    p.add_argument("--verify", action="store_true", help="sha256 of the bulk bytes (costs CPU, so in the figures)")
    p.add_argument("--quick", action="store_true", help="an eighth of the sizes, one repetition")
    p.add_argument("--json", metavar="FILE", help="write every run and the best figures as JSON ('-' for stdout)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 1
    scale = 8 if args.quick else 1

    bulk_runs: dict[str, list] = {n: [] for n in args.only}
    stream_runs: dict[str, list] = {n: [] for n in args.only}
    for rep in range(args.reps):
        for n in args.only:  # interleaved: every engine once per repetition
            if args.workload in ("bulk", "both"):
                size = (args.mib or max(1, DEFAULT_BULK_MIB[n] // scale)) * MiB
                r = run_bulk(n, size, verify=args.verify)
                bulk_runs[n].append(r)
                print(f"[{rep + 1}/{args.reps}] bulk {n}: {r['mb_per_s']:.1f} MB/s, "
                      f"{r['cpu_s_per_gib']:.2f} CPU s/GiB", file=sys.stderr)
            if args.workload in ("streams", "both"):
                count = args.streams or max(100, DEFAULT_STREAMS[n] // scale)
                r = run_streams(n, count, args.in_flight, args.request_size, args.response_size)
                stream_runs[n].append(r)
                print(f"[{rep + 1}/{args.reps}] streams {n}: {r['streams_per_s']:.0f} streams/s",
                      file=sys.stderr)
    best_bulk = {n: _best(v, "mb_per_s") for n, v in bulk_runs.items() if v}
    best_streams = {n: _best(v, "streams_per_s") for n, v in stream_runs.items() if v}
    print_report(best_bulk, best_streams, args)

    if args.json:
        import aioquic
        import qh3
        doc = {
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "aioquic": aioquic.__version__, "qh3": qh3.__version__},
            "link": {"rate_bytes_per_s": LINK_RATE, "one_way_delay_s": ONE_WAY_DELAY, "batch": BATCH},
            "best": {"bulk": best_bulk, "streams": best_streams},
            "ratios": {
                "bulk_mb_per_s": {n: best_bulk["quicfast"]["mb_per_s"] / r["mb_per_s"]
                                  for n, r in best_bulk.items() if "quicfast" in best_bulk and n != "quicfast"},
                "streams_per_s": {n: best_streams["quicfast"]["streams_per_s"] / r["streams_per_s"]
                                  for n, r in best_streams.items() if "quicfast" in best_streams and n != "quicfast"},
            },
            "runs": {"bulk": bulk_runs, "streams": stream_runs},
        }
        text = json.dumps(doc, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
