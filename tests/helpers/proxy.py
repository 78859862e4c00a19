"""An impairment proxy: a UDP relay on loopback that damages traffic on purpose.

A client sends to the proxy's front address; for each client address the
proxy opens one upstream socket (a "NAT mapping") and relays to the server,
and relays the server's answers back. Each direction has its own
`Impairment`: seeded random loss, delay with jitter, reordering,
duplication, corruption (one flipped byte), a bottleneck rate with a
drop-tail queue, and a `select` predicate that limits the impairment to
some datagrams (for example, only long-header packets). The proxy can also
black-hole both directions for a while (`blackhole`) and give the client a
new upstream port (`rebind`), which is what a NAT rebinding looks like to
the server.

The proxy counts what it forwards per direction (`Counters`) and can keep a
trace of every datagram, which is how the amplification limit (RFC 9000
§8.1) is measured from outside the endpoints.

Strategy: the relay is a set of non-blocking UDP sockets read with
`loop.add_reader` on the caller's event loop (tests) or its own (the
command line), in batches, so a rebinding or a new mapping takes effect
synchronously. A datagram that survives the drop
decisions is sent at once when the direction has no delay, no rate and no
reordering; otherwise it is scheduled with `loop.call_at`. Randomness comes
from one `random.Random(seed)` per direction, so the sequence of decisions
is repeatable; the timing of real sockets is not.

By hand::

    python -m tests.helpers.proxy --listen 127.0.0.1:4434 --upstream 127.0.0.1:4433 \\
        --loss 0.05 --delay 0.02 --seed 1 --blackhole-at 5 --blackhole-for 5
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import socket
import sys
import time
from typing import Callable, Optional

__all__ = ["Impairment", "Counters", "ImpairmentProxy", "is_long_header", "long_header_types", "main"]

TO_SERVER = "to_server"
TO_CLIENT = "to_client"

VERSION_2 = 0x6B3343CF
# Long-header packet type bits (first byte bits 4-5) per version: RFC 9000 §17.2, RFC 9369 §3.2.
_V1_TYPES = {0: "initial", 1: "0rtt", 2: "handshake", 3: "retry"}
_V2_TYPES = {1: "initial", 2: "0rtt", 3: "handshake", 0: "retry"}


def is_long_header(data: bytes) -> bool:
    """Whether the first packet of `data` has a long header (handshake packets)."""
    return bool(data) and bool(data[0] & 0x80)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ValueError("truncated varint")
    length = 1 << (data[pos] >> 6)
    if pos + length > len(data):
        raise ValueError("truncated varint")
    value = data[pos] & 0x3F
    for i in range(1, length):
        value = (value << 8) | data[pos + i]
    return value, pos + length


def long_header_types(data: bytes) -> list[str]:
    """Types of the coalesced packets in one datagram ("initial", "handshake",
    "0rtt", "retry", "version_negotiation", "1rtt"), read from the invariant
    header fields and the Length field only (nothing is decrypted)."""
    out = []
    pos = 0
    while pos < len(data):
        first = data[pos]
        if not first & 0x80:
            out.append("1rtt")   # a short header runs to the end of the datagram
            break
        try:
            version = int.from_bytes(data[pos + 1:pos + 5], "big")
            if version == 0:
                out.append("version_negotiation")
                break
            kind = (_V2_TYPES if version == VERSION_2 else _V1_TYPES)[(first >> 4) & 3]
            p = pos + 5
            p += 1 + data[p]                 # DCID
            p += 1 + data[p]                 # SCID
            out.append(kind)
            if kind == "retry":
                break
            if kind == "initial":
                token_len, p = _varint(data, p)
                p += token_len
            length, p = _varint(data, p)
            pos = p + length
        except (ValueError, IndexError, KeyError):
            break
    return out


@dataclasses.dataclass
class Impairment:
    """What happens to datagrams travelling in one direction."""

    #: Probability that a datagram is dropped.
    loss: float = 0.0
    #: One-way delay added to every datagram, and uniform jitter on top (seconds).
    delay: float = 0.0
    jitter: float = 0.0
    #: Probability that a datagram is held back an extra `reorder_delay` (so later ones overtake it).
    reorder: float = 0.0
    reorder_delay: float = 0.005
    #: Probability that a datagram is delivered twice.
    duplicate: float = 0.0
    #: Probability that one byte of a datagram is flipped (XOR with a non-zero byte).
    corrupt: float = 0.0
    #: Bottleneck rate in bytes per second (0: unlimited) and its drop-tail queue in bytes.
    rate: float = 0.0
    queue_limit: int = 256 * 1024
    #: Only datagrams for which select(data) is true are impaired (None: all).
    select: Optional[Callable[[bytes], bool]] = None
    #: Datagrams for which drop(data) is true are always dropped (deterministic filters).
    drop: Optional[Callable[[bytes], bool]] = None


@dataclasses.dataclass
class Counters:
    """What the proxy saw and did in one direction."""

    received: int = 0
    received_bytes: int = 0
    forwarded: int = 0
    forwarded_bytes: int = 0
    dropped: int = 0          # random loss and `drop` filters
    blackholed: int = 0
    queue_dropped: int = 0    # rate limiter queue overflow
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0


class _Direction:
    def __init__(self, name: str, impairment: Impairment, seed: int) -> None:
        self.name = name
        self.impairment = impairment
        self.rng = random.Random(f"{seed}/{name}")
        self.counters = Counters()
        self.next_free = 0.0   # when the bottleneck link is next idle


class _Mapping:
    """One client's upstream socket (its "NAT mapping")."""

    def __init__(self, sock: socket.socket, client_addr) -> None:
        self.sock = sock
        self.client_addr = client_addr   # None once retired by rebind()


SOCKET_BUFFER = 4 << 20
READ_BATCH = 256


def _udp_socket(host: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            pass
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class ImpairmentProxy:
    """A UDP relay between clients and one upstream server, impairing each direction.

    :param upstream: the server's (host, port).
    :param to_server: impairment of client→server datagrams.
    :param to_client: impairment of server→client datagrams.
    :param seed: seeds both directions' random decisions.
    :param trace: keep (time, direction, size, packet types) for every datagram received.

    Use ``async with ImpairmentProxy(...) as proxy:`` or `start()`/`close()`;
    clients connect to `proxy.addr`.
    """

    def __init__(self, upstream, to_server: Optional[Impairment] = None, to_client: Optional[Impairment] = None,
                 *, seed: int = 0, listen_host: Optional[str] = None, trace: bool = False) -> None:
        self.upstream = (upstream[0], upstream[1])
        self.listen_host = listen_host or upstream[0]
        self._dirs = {
            TO_SERVER: _Direction(TO_SERVER, to_server or Impairment(), seed),
            TO_CLIENT: _Direction(TO_CLIENT, to_client or Impairment(), seed),
        }
        self.trace: Optional[list] = [] if trace else None
        self._front: Optional[socket.socket] = None
        self._mappings: dict = {}           # client addr -> _Mapping
        self._retired: list = []            # mappings replaced by rebind()
        self._blackhole_until = 0.0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._handles: set = set()
        self.rebinds = 0

    # -- lifecycle -------------------------------------------------------------

    async def start(self, port: int = 0) -> "ImpairmentProxy":
        self._loop = asyncio.get_running_loop()
        self._front = _udp_socket(self.listen_host, port)
        self._loop.add_reader(self._front.fileno(), self._on_front_readable)
        return self

    def close(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        for m in list(self._mappings.values()) + self._retired:
            self._close_socket(m.sock)
        self._mappings.clear()
        self._retired.clear()
        if self._front is not None:
            self._close_socket(self._front)
            self._front = None

    def _close_socket(self, sock: socket.socket) -> None:
        if sock.fileno() >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()

    async def __aenter__(self) -> "ImpairmentProxy":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        self.close()

    @property
    def addr(self):
        """The address clients send to."""
        return self._front.getsockname()[:2]

    # -- controls ----------------------------------------------------------------

    def impairment(self, direction: str) -> Impairment:
        """The live `Impairment` of "to_server" or "to_client" (edit it to change behaviour)."""
        return self._dirs[direction].impairment

    def set_impairment(self, direction: str, impairment: Impairment) -> None:
        self._dirs[direction].impairment = impairment

    def counters(self, direction: str) -> Counters:
        return self._dirs[direction].counters

    def blackhole(self, seconds: float) -> None:
        """Drop every datagram, both ways, for `seconds` from now."""
        self._blackhole_until = self._now() + seconds

    @property
    def blackholed(self) -> bool:
        return self._now() < self._blackhole_until

    def upstream_addrs(self) -> list:
        """Local addresses of the current upstream sockets (what the server sees as clients)."""
        return [m.sock.getsockname()[:2] for m in self._mappings.values()]

    def rebind(self, client_addr=None) -> None:
        """Give the client (the only one when None) a new upstream port: a NAT
        rebinding. The old socket stays open until `close()`, so the server's
        answers to the old port are read, counted as dropped and go nowhere."""
        if client_addr is None:
            if len(self._mappings) != 1:
                raise RuntimeError("rebind() needs client_addr when the proxy has %d clients" % len(self._mappings))
            client_addr = next(iter(self._mappings))
        old = self._mappings.pop(client_addr)
        old.client_addr = None
        self._retired.append(old)
        self._open_mapping(client_addr)
        self.rebinds += 1

    # -- relay ---------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _open_mapping(self, client_addr) -> _Mapping:
        m = _Mapping(_udp_socket(self.listen_host), client_addr)
        self._mappings[client_addr] = m
        self._loop.add_reader(m.sock.fileno(), self._on_upstream_readable, m)
        return m

    def _on_front_readable(self) -> None:
        front = self._front
        to_server = self._dirs[TO_SERVER]
        for _ in range(READ_BATCH):
            try:
                data, addr = front.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            m = self._mappings.get(addr) or self._open_mapping(addr)
            self._relay(to_server, data, m.sock, self.upstream)

    def _on_upstream_readable(self, m: _Mapping) -> None:
        to_client = self._dirs[TO_CLIENT]
        for _ in range(READ_BATCH):
            try:
                data, _addr = m.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if m.client_addr is None or self._front is None:
                to_client.counters.received += 1
                to_client.counters.received_bytes += len(data)
                to_client.counters.dropped += 1   # sent to a mapping that no longer exists
                continue
            self._relay(to_client, data, self._front, m.client_addr)

    def _relay(self, d: _Direction, data: bytes, sock: socket.socket, addr) -> None:
        c = d.counters
        imp = d.impairment
        c.received += 1
        c.received_bytes += len(data)
        now = self._now()
        if self.trace is not None:
            self.trace.append((now, d.name, len(data), tuple(long_header_types(data))))
        if now < self._blackhole_until:
            c.blackholed += 1
            return
        if imp.drop is not None and imp.drop(data):
            c.dropped += 1
            return
        impaired = imp.select is None or imp.select(data)
        rng = d.rng
        if impaired and imp.loss and rng.random() < imp.loss:
            c.dropped += 1
            return
        if impaired and imp.corrupt and rng.random() < imp.corrupt:
            buf = bytearray(data)
            buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
            data = bytes(buf)
            c.corrupted += 1
        copies = 1
        if impaired and imp.duplicate and rng.random() < imp.duplicate:
            copies = 2
            c.duplicated += 1
        due = now
        if imp.rate:
            start = max(now, d.next_free)
            if (start - now) * imp.rate > imp.queue_limit:
                c.queue_dropped += 1
                return
            d.next_free = start + len(data) / imp.rate
            due = d.next_free
        if impaired:
            due += imp.delay + (rng.uniform(0, imp.jitter) if imp.jitter else 0.0)
            if imp.reorder and rng.random() < imp.reorder:
                due += imp.reorder_delay
                c.reordered += 1
        for _ in range(copies):
            if due <= now:
                self._send(sock, data, addr, c)
            else:
                self._schedule(due, sock, data, addr, c)

    def _schedule(self, due: float, sock: socket.socket, data: bytes, addr, c: Counters) -> None:
        handle = None

        def fire():
            self._handles.discard(handle)
            self._send(sock, data, addr, c)

        handle = self._loop.call_at(due, fire)
        self._handles.add(handle)

    @staticmethod
    def _send(sock: socket.socket, data: bytes, addr, c: Counters) -> None:
        if sock.fileno() < 0:
            return
        try:
            sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            c.queue_dropped += 1    # the kernel's socket buffer is full
            return
        except OSError:
            c.dropped += 1
            return
        c.forwarded += 1
        c.forwarded_bytes += len(data)


def _addr(text: str):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv=None) -> int:
    """Run the proxy by hand until interrupted (or for --duration seconds)."""
    p = argparse.ArgumentParser(prog="python -m tests.helpers.proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0", help="front address clients send to (host:port)")
    p.add_argument("--upstream", required=True, help="server address (host:port)")
    p.add_argument("--seed", type=int, default=0)
    for prefix, where in (("", "both directions"), ("up-", "client→server only"), ("down-", "server→client only")):
        p.add_argument(f"--{prefix}loss", type=float, help=f"drop probability, {where}")
        p.add_argument(f"--{prefix}delay", type=float, help=f"one-way delay in seconds, {where}")
        p.add_argument(f"--{prefix}jitter", type=float, help=f"uniform jitter in seconds, {where}")
        p.add_argument(f"--{prefix}reorder", type=float, help=f"probability of holding a datagram back, {where}")
        p.add_argument(f"--{prefix}duplicate", type=float, help=f"duplication probability, {where}")
        p.add_argument(f"--{prefix}corrupt", type=float, help=f"probability of flipping one byte, {where}")
        p.add_argument(f"--{prefix}rate", type=float, help=f"bottleneck in bytes/s, {where}")
    p.add_argument("--handshake-only", action="store_true", help="impair only long-header (handshake) datagrams")
    p.add_argument("--blackhole-at", type=float, help="start a black hole this many seconds after start")
    p.add_argument("--blackhole-for", type=float, default=5.0, help="black hole duration (seconds)")
    p.add_argument("--rebind-at", type=float, action="append", default=[],
                   help="rebind the (single) client's upstream port at this time; repeatable")
    p.add_argument("--duration", type=float, help="exit after this many seconds")
    p.add_argument("--stats-every", type=float, default=0.0, help="print counters every N seconds")
    args = p.parse_args(argv)

    def build(prefix: str) -> Impairment:
        imp = Impairment(select=is_long_header if args.handshake_only else None)
        for name in ("loss", "delay", "jitter", "reorder", "duplicate", "corrupt", "rate"):
            value = getattr(args, prefix + name)
            if value is None:
                value = getattr(args, name)
            if value is not None:
                setattr(imp, name, value)
        return imp

    async def run() -> None:
        host, port = _addr(args.listen)
        proxy = ImpairmentProxy(_addr(args.upstream), build("up_"), build("down_"), seed=args.seed, listen_host=host)
        await proxy.start(port)
        loop = asyncio.get_running_loop()
        print("proxy listening on %s:%d -> %s:%d" % (*proxy.addr, *proxy.upstream), flush=True)
        if args.blackhole_at is not None:
            loop.call_later(args.blackhole_at, proxy.blackhole, args.blackhole_for)

        async def rebind_later(at):
            await asyncio.sleep(at)
            try:
                proxy.rebind()
                print("rebound: upstream now %s" % (proxy.upstream_addrs(),), flush=True)
            except (RuntimeError, KeyError) as exc:
                print("rebind skipped: %s" % exc, flush=True)

        tasks = [asyncio.create_task(rebind_later(at)) for at in args.rebind_at]

        def report():
            for name in (TO_SERVER, TO_CLIENT):
                print(name, dataclasses.asdict(proxy.counters(name)), flush=True)

        try:
            if args.stats_every:
                end = loop.time() + (args.duration if args.duration else float("inf"))
                while loop.time() < end:
                    await asyncio.sleep(min(args.stats_every, max(0.0, end - loop.time())))
                    report()
            else:
                await asyncio.sleep(args.duration if args.duration else float("inf"))
        finally:
            for t in tasks:
                t.cancel()
            report()
            proxy.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
