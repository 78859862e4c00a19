"""quicfast._datapath: a received batch handed to established connections'
engines at C level, stopping in order at the first datagram it must leave to
the transport's general path (RFC 9000 §5.2, §17.3).

Real datagrams over loopback into a `UdpSocketState`; the engines are a
handshaken pair from the in-memory simulator, no clock of our own.
"""

from __future__ import annotations

import os
import socket

import pytest

from quicfast._datapath import deliver_established
from quicfast._udp import UdpSocketState
from quicfast.proto import events
from tests.pair.sim import Pair

SEND_BUFFER = bytearray(64 * 1500)


class Routed:
    """What the transport's routing table maps a CID to: a connection with an `_engine`."""

    def __init__(self, engine) -> None:
        self._engine = engine


def one_rtt_datagrams(engine, now: float, streams: int) -> list[bytes]:
    """`streams` client streams of one request each, as the 1-RTT datagrams the engine builds."""
    for _ in range(streams):
        sid = engine.open_stream()
        engine.send_stream_data(sid, b"request %d" % sid, True)
    out = []
    while True:
        count, seg, total = engine.fill_send_buffer(SEND_BUFFER, 64, now)
        if count == 0:
            return out
        out += [bytes(SEND_BUFFER[i * seg:min((i + 1) * seg, total)]) for i in range(count)]


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    state = UdpSocketState(sock, gro=False)   # one datagram per slot: indexes are what was sent
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield state, sender, sock.getsockname()
    sender.close()
    state.close()


def receive_all(state: UdpSocketState, expected: int) -> int:
    for _ in range(1000):       # loopback delivers at once; bounded anyway
        count = state.recv_batch()
        if count:
            assert count == expected
            return count
    raise AssertionError("nothing received")


def opened_streams(engine) -> list[int]:
    return [e.stream_id for e in engine.drain_events() if isinstance(e, events.StreamOpened)]


def test_delivers_established_short_headers_and_stops_at_the_others(receiver):
    state, sender, addr = receiver
    pair = Pair(seed=1)
    pair.handshake()
    pair.server.drain_events()
    first = one_rtt_datagrams(pair.client, pair.now, 1)
    second = one_rtt_datagrams(pair.client, pair.now, 1)
    assert len(first) == len(second) == 1
    dcid = first[0][1:9]
    unknown_cid = bytes([0x40]) + os.urandom(8) + os.urandom(30)
    long_header = bytes([0xC0]) + os.urandom(40)
    for data in (first[0], unknown_cid, long_header, second[0]):
        sender.sendto(data, addr)
    count = receive_all(state, 4)
    conn = Routed(pair.server)
    touched: set = set()

    assert deliver_established(state, 0, {dcid: conn}, 8, pair.now, touched) == 1   # stops at the unknown CID
    assert touched == {conn}
    assert opened_streams(pair.server) == [0]
    assert deliver_established(state, 2, {dcid: conn}, 8, pair.now, touched) == 2   # a long header: not here
    assert deliver_established(state, 3, {dcid: conn}, 8, pair.now, touched) == count
    assert opened_streams(pair.server) == [4]


def test_a_connection_in_its_handshake_takes_the_general_path(receiver):
    state, sender, addr = receiver
    pair = Pair(seed=2)
    pair.handshake()
    datagram = one_rtt_datagrams(pair.client, pair.now, 1)[0]
    sender.sendto(datagram, addr)
    receive_all(state, 1)
    handshaking = Routed(Pair(seed=3).client)     # an engine that has sent its Initial, no more
    touched: set = set()
    assert deliver_established(state, 0, {datagram[1:9]: handshaking}, 8, pair.now, touched) == 0
    assert touched == set()


def test_short_datagrams_and_empty_batches(receiver):
    state, sender, addr = receiver
    sender.sendto(bytes([0x40, 1, 2, 3]), addr)      # a short header shorter than its DCID
    receive_all(state, 1)
    assert deliver_established(state, 0, {}, 8, 0.0, set()) == 0
    assert deliver_established(state, 1, {}, 8, 0.0, set()) == 1   # nothing left from index 1
