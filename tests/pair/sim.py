"""A simulated network joining two sans-I/O engines, with its own clock.

`Pair` holds a quicfast client engine and the server engine that is created
when the client's first datagram reaches the server side
(`tests.helpers.engines.quicfast_server_for`). Each direction is a `Link`
with seeded random loss, reordering, duplication, corruption (one flipped
byte), delay and jitter, a bandwidth limit (serialisation at `rate` bytes per
second) and a drop-tail queue of `queue_limit` bytes.

Time is the simulation's float seconds: no wall-clock time is read anywhere.
`Pair.step()` jumps to the next thing that can happen (the earliest datagram
arrival or either engine's `get_timer()`), delivers what arrives then, fires
the timers that are due, lets the applications react to events and flushes
what the engines want to send. `drive_until(predicate, max_steps)` fails the
test when the predicate is not met in `max_steps` steps.

Modelled on quinn's tests/util.rs `Pair` and ngtcp2's examples/sim.h.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from typing import Callable, Optional

from quicfast.config import Config
from tests.helpers.engines import CLIENT_ADDR, SERVER_ADDR, quicfast_client, quicfast_server_for

SEND_BUFFER = bytearray(64 * 1500)


@dataclasses.dataclass
class LinkConfig:
    """One direction of the simulated path."""

    #: Probability that a datagram is lost.
    loss: float = 0.0
    #: Probability that a datagram is held back by an extra `reorder_delay`.
    reorder: float = 0.0
    reorder_delay: float = 0.010
    #: Probability that a datagram is delivered twice.
    duplicate: float = 0.0
    #: Probability that one byte of a datagram is flipped.
    corrupt: float = 0.0
    #: One-way propagation delay and uniform jitter on top of it (seconds).
    delay: float = 0.010
    jitter: float = 0.0
    #: Bottleneck rate in bytes per second (0: unlimited).
    rate: float = 0.0
    #: Bytes that may wait for the bottleneck before tail drop (0: unlimited).
    queue_limit: int = 0
    #: drop(index, datagram) -> True to drop that datagram (index counts from 0).
    drop: Optional[Callable[[int, bytes], bool]] = None


@dataclasses.dataclass
class LinkStats:
    sent: int = 0
    sent_bytes: int = 0
    lost: int = 0
    queue_dropped: int = 0
    filtered: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    delivered: int = 0
    delivered_bytes: int = 0


class Link:
    """One direction: a heap of (arrival time, sequence, datagram)."""

    def __init__(self, config: LinkConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.stats = LinkStats()
        self._heap: list = []
        self._seq = 0
        self._busy_until = 0.0          # when the bottleneck finishes what it holds
        self._in_queue: list = []       # (departure time, size) not yet serialised

    def send(self, data: bytes, now: float) -> None:
        cfg, rng, st = self.config, self.rng, self.stats
        index = st.sent
        st.sent += 1
        st.sent_bytes += len(data)
        if cfg.drop is not None and cfg.drop(index, data):
            st.filtered += 1
            return
        if cfg.loss and rng.random() < cfg.loss:
            st.lost += 1
            return
        departure = now
        if cfg.rate:
            while self._in_queue and self._in_queue[0][0] <= now:
                heapq.heappop(self._in_queue)
            if cfg.queue_limit and sum(size for _, size in self._in_queue) + len(data) > cfg.queue_limit:
                st.queue_dropped += 1
                return
            departure = max(now, self._busy_until) + len(data) / cfg.rate
            self._busy_until = departure
            heapq.heappush(self._in_queue, (departure, len(data)))
        if cfg.corrupt and rng.random() < cfg.corrupt:
            st.corrupted += 1
            buf = bytearray(data)
            buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
            data = bytes(buf)
        arrival = departure + cfg.delay + (rng.uniform(0, cfg.jitter) if cfg.jitter else 0.0)
        if cfg.reorder and rng.random() < cfg.reorder:
            st.reordered += 1
            arrival += cfg.reorder_delay
        self._push(arrival, data)
        if cfg.duplicate and rng.random() < cfg.duplicate:
            st.duplicated += 1
            self._push(arrival + rng.uniform(0, max(cfg.delay, 0.001)), data)

    def _push(self, arrival: float, data: bytes) -> None:
        heapq.heappush(self._heap, (arrival, self._seq, data))
        self._seq += 1

    def next_arrival(self) -> Optional[float]:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        self.stats.delivered += len(out)
        self.stats.delivered_bytes += sum(map(len, out))
        return out


class SimulationStuck(AssertionError):
    """drive_until ran out of steps, or nothing was left to happen."""


def default_app(conn, event) -> None:
    """An application that ignores every event."""


class Pair:
    """A client and a server engine on a simulated network.

    `client_app(conn, event)` and `server_app(conn, event)` see every event
    each engine reports (also collected in `client_events` / `server_events`)
    and may issue commands on `conn`.
    """

    def __init__(self, *, seed: int = 0, client_config: Config | None = None,
                 server_config: Config | None = None, c2s: LinkConfig | None = None,
                 s2c: LinkConfig | None = None, client_app=default_app, server_app=default_app,
                 start: float = 0.0, **client_kw) -> None:
        self.rng = random.Random(seed)
        self.now = start
        self.c2s = Link(c2s or LinkConfig(), random.Random(self.rng.getrandbits(64)))
        self.s2c = Link(s2c or LinkConfig(), random.Random(self.rng.getrandbits(64)))
        self.server_config = server_config
        self.client_app = client_app
        self.server_app = server_app
        self.client_events: list = []
        self.server_events: list = []
        self.client = quicfast_client(client_config, **client_kw)
        self.server = None
        self._first_client_datagram: Optional[bytes] = None
        self.steps = 0
        #: Set to False to make an endpoint go silent (it sends nothing more).
        self.client_alive = True
        self.server_alive = True
        self.client.connect(SERVER_ADDR, self.now)
        self._service()

    # -- one engine ----------------------------------------------------

    def _flush(self, conn, link: Link) -> None:
        while True:
            count, seg, total = conn.fill_send_buffer(SEND_BUFFER, 64, self.now)
            if count == 0:
                return
            for i in range(count):
                data = bytes(SEND_BUFFER[i * seg:min((i + 1) * seg, total)])
                if link is self.c2s and self._first_client_datagram is None:
                    self._first_client_datagram = data
                link.send(data, self.now)

    def _events(self, conn, app, log: list) -> None:
        while (event := conn.next_event()) is not None:
            log.append(event)
            app(conn, event)

    def _service(self) -> None:
        """Let both applications react, then flush both engines."""
        if self.client_alive:
            self._events(self.client, self.client_app, self.client_events)
            self._flush(self.client, self.c2s)
        if self.server is not None and self.server_alive:
            self._events(self.server, self.server_app, self.server_events)
            self._flush(self.server, self.s2c)

    def engines(self):
        out = [(self.client, self.client_alive)]
        if self.server is not None:
            out.append((self.server, self.server_alive))
        return [conn for conn, alive in out if alive]

    # -- the clock ---------------------------------------------------------

    def next_wakeup(self) -> Optional[float]:
        times = [t for t in (self.c2s.next_arrival(), self.s2c.next_arrival()) if t is not None]
        times += [t for t in (conn.get_timer() for conn in self.engines()) if t is not None]
        return min(times) if times else None

    def step(self) -> bool:
        """Advance to the next wakeup and process it; False when nothing is left."""
        self._service()   # commands a test issued between steps go out now
        wakeup = self.next_wakeup()
        if wakeup is None:
            return False
        self.steps += 1
        self.now = max(self.now, wakeup)
        now = self.now
        for data in self.c2s.pop_due(now):
            if not self.server_alive:
                continue
            if self.server is None:
                # The server exists once the client's first datagram arrives (as the
                # transport would create it); built from the uncorrupted original.
                self.server = quicfast_server_for(self._first_client_datagram, self.server_config)
            self.server.receive_datagram(data, CLIENT_ADDR, now)
        for data in self.s2c.pop_due(now):
            if self.client_alive:
                self.client.receive_datagram(data, SERVER_ADDR, now)
        for conn in self.engines():
            t = conn.get_timer()
            if t is not None and t <= now:
                conn.handle_timer(now)
        self._service()
        return True

    def drive_until(self, predicate: Callable[[], bool], max_steps: int = 10_000) -> int:
        """Step until `predicate()`; fail after `max_steps` or when idle. Returns steps taken."""
        for taken in range(max_steps + 1):
            if predicate():
                return taken
            if taken == max_steps:
                break
            if not self.step():
                raise SimulationStuck(f"nothing left to happen at t={self.now:.3f}s after {taken} steps; {self.describe()}")
        raise SimulationStuck(f"predicate not met in {max_steps} steps (t={self.now:.3f}s); {self.describe()}")

    def drive_for(self, seconds: float, max_steps: int = 100_000) -> None:
        """Step until the clock passes now + seconds (or nothing is left)."""
        end = self.now + seconds
        for _ in range(max_steps):
            self._service()
            wakeup = self.next_wakeup()
            if wakeup is None or wakeup > end:
                self.now = max(self.now, end)
                return
            self.step()
        raise SimulationStuck(f"still busy at t={self.now:.3f}s after {max_steps} steps; {self.describe()}")

    def describe(self) -> str:
        return f"c2s={self.c2s.stats} s2c={self.s2c.stats} client.closed={self.client.is_closed}" + (
            f" server.closed={self.server.is_closed}" if self.server is not None else " no server")

    # -- conveniences ----------------------------------------------------

    def handshake(self, max_steps: int = 2_000) -> None:
        self.drive_until(lambda: self.server is not None and self.client.is_handshake_confirmed
                         and self.server.is_handshake_confirmed, max_steps)

    def events_of(self, side: str, kind) -> list:
        log = self.client_events if side == "client" else self.server_events
        return [e for e in log if isinstance(e, kind)]


# -- small applications the tests share -----------------------------------

class Upload:
    """Client app: once the handshake completes, send `payload` on one
    stream (FIN at the end). Server app: read everything into `received`."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.stream_id = None
        self.received = bytearray()
        self.done = False

    def client(self, conn, event) -> None:
        from quicfast.proto import events
        if isinstance(event, events.HandshakeCompleted):
            self.stream_id = conn.open_stream()
            conn.send_stream_data(self.stream_id, self.payload, end_stream=True)

    def server(self, conn, event) -> None:
        from quicfast.proto import events
        if isinstance(event, events.StreamDataAvailable):
            data, fin = conn.read_stream(event.stream_id)
            self.received += data
            self.done = self.done or fin
