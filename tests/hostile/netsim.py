"""A small virtual-time network for the hostile-peer and loss-regression tests.

Two sans-I/O engines (a quicfast client and the server engine created for
its first Initial) exchange datagrams through `drop(direction, index, data)`
filters and a fixed one-way delay. Time is virtual: `run_until` jumps to
the next arrival or engine timer, so a test that waits out many PTOs takes
milliseconds and is exactly repeatable. No wall clock, no sockets.

Kept separate from tests/pair/sim.py (the protocol tests' richer simulator)
so that these tests depend only on the engine API.
"""

from __future__ import annotations

import heapq
import random
from typing import Callable, Optional

from quicfast.config import Config
from tests.helpers.engines import CLIENT_ADDR, SERVER_ADDR, quicfast_client, quicfast_server_for

_BUF = bytearray(64 * 1500)
SPIN_STEP = 0.05


def is_long(data: bytes) -> bool:
    return bool(data[0] & 0x80)


def seeded_loss(seed: int, rate: float, select: Callable[[bytes], bool] = lambda d: True):
    """A drop filter losing `rate` of the selected datagrams, per direction, repeatably."""
    rngs = {"c2s": random.Random(f"{seed}/c2s"), "s2c": random.Random(f"{seed}/s2c")}

    def drop(direction: str, index: int, data: bytes) -> bool:
        return select(data) and rngs[direction].random() < rate

    return drop


class Net:
    """A client engine, its server engine and the datagrams between them."""

    def __init__(self, *, client_config: Optional[Config] = None, server_config: Optional[Config] = None,
                 drop=None, delay: float = 0.005, client=None) -> None:
        self.now = 0.0
        self.delay = delay
        self.drop = drop or (lambda direction, index, data: False)
        self.server_config = server_config
        self.client = client if client is not None else quicfast_client(client_config)
        self.server = None
        self.servers_created = 0
        self.sent = {"c2s": 0, "s2c": 0}
        self.sent_bytes = {"c2s": 0, "s2c": 0}
        self.delivered_bytes = {"c2s": 0, "s2c": 0}
        self.client_events: list = []
        self.server_events: list = []
        self.on_client_event = None
        self.on_server_event = None
        self._heap: list = []
        self._seq = 0
        #: Times an engine's get_timer() was still due right after handle_timer()
        #: ran at that instant: a driver would spin on it (see `step`).
        self.spins = 0
        self._stale: dict = {}          # engine -> timer value it spins on
        self.client.connect(SERVER_ADDR, self.now)
        self._service()

    def _push(self, direction: str, data: bytes) -> None:
        index = self.sent[direction]
        self.sent[direction] += 1
        self.sent_bytes[direction] += len(data)
        if self.drop(direction, index, data):
            return
        heapq.heappush(self._heap, (self.now + self.delay, self._seq, direction, data))
        self._seq += 1

    def _flush(self, conn, direction: str) -> None:
        for _ in range(1000):
            count, seg, total = conn.fill_send_buffer(_BUF, 64, self.now)
            if count == 0:
                return
            for i in range(count):
                self._push(direction, bytes(_BUF[i * seg:min((i + 1) * seg, total)]))
        raise AssertionError("engine never stopped sending")

    def _service(self) -> None:
        for conn, log, hook_name, direction in ((self.client, self.client_events, "on_client_event", "c2s"),
                                                (self.server, self.server_events, "on_server_event", "s2c")):
            if conn is None:
                continue
            while (event := conn.next_event()) is not None:
                log.append(event)
                hook = getattr(self, hook_name)
                if hook is not None:
                    hook(conn, event)
            self._flush(conn, direction)

    def deliver_to_server(self, data: bytes) -> None:
        if self.server is None or (self.server.is_closed and len(data) >= 1200 and (data[0] & 0xB0) == 0x80):
            # Like the Transport: a client Initial with no live engine creates one.
            self.server = quicfast_server_for(data, self.server_config)
            self.servers_created += 1
        self.delivered_bytes["c2s"] += len(data)
        self.server.receive_datagram(data, CLIENT_ADDR, self.now)

    def step(self, limit: Optional[float] = None) -> bool:
        """Advance to the next arrival or timer, but not past `limit`; False
        when nothing is left to happen by then."""
        candidates = []
        if self._heap:
            candidates.append(self._heap[0][0])
        for conn in (self.client, self.server):
            if conn is not None and (t := conn.get_timer()) is not None:
                if self._stale.get(conn) == t:
                    # A timer that handle_timer() does not consume: a real driver
                    # spins on it while the clock runs, so let time run too.
                    candidates.append(self.now + SPIN_STEP)
                else:
                    self._stale.pop(conn, None)
                    candidates.append(t)
        if not candidates:
            return False
        if limit is not None and min(candidates) > limit:
            self.now = max(self.now, limit)
            return False
        self.now = max(self.now, min(candidates))
        while self._heap and self._heap[0][0] <= self.now:
            _, _, direction, data = heapq.heappop(self._heap)
            if direction == "c2s":
                self.deliver_to_server(data)
            else:
                self.delivered_bytes["s2c"] += len(data)
                self.client.receive_datagram(data, SERVER_ADDR, self.now)
        due = [conn for conn in (self.client, self.server)
               if conn is not None and (t := conn.get_timer()) is not None and t <= self.now]
        for conn in due:
            conn.handle_timer(self.now)
        self._service()
        for conn in due:
            t = conn.get_timer()
            if t is not None and t <= self.now and conn not in self._stale:
                self.spins += 1
                self._stale[conn] = t
        return True

    def run_until(self, predicate: Callable[[], bool], *, max_time: float = 60.0, max_steps: int = 100_000) -> bool:
        """Step until predicate() holds (True), or virtual `max_time` / `max_steps` pass (False)."""
        for _ in range(max_steps):
            if predicate():
                return True
            if self.now > max_time or not self.step(max_time):
                return predicate()
        return predicate()
