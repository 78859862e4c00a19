"""Streams over the simulated network: many short streams with MAX_STREAMS
credit flowing back, flow-control windows that block and unblock, and
RESET_STREAM / STOP_SENDING seen by the other side. Sizes: 500 streams of
~100 bytes each way; 1 MiB through 16 KiB windows."""

import hashlib
import random

import pytest

from quicfast.config import Config
from quicfast.errors import StreamLimitReachedError, StreamStateError
from quicfast.proto import events
from tests.pair.sim import LinkConfig, Pair


@pytest.mark.parametrize("loss", [0.0, 0.05])
def test_500_request_response_streams_with_max_streams_credit(loss):
    """The server allows 10 concurrent streams; the client runs 500
    request/response exchanges, opening more as MAX_STREAMS credit returns."""
    total = 500
    state = {"opened": 0, "answered": set(), "blocked_seen": 0}
    requests: dict = {}

    def pump(conn):
        while state["opened"] < total and conn.can_open_stream():
            sid = conn.open_stream()
            body = b"request %d" % state["opened"]
            requests[sid] = body
            conn.send_stream_data(sid, body, end_stream=True)
            state["opened"] += 1
        if state["opened"] < total:
            state["blocked_seen"] += 1

    responses: dict = {}

    def client_app(conn, event):
        if isinstance(event, (events.HandshakeCompleted, events.StreamsAvailable)) and conn.is_handshake_complete:
            pump(conn)
        elif isinstance(event, events.StreamDataAvailable):
            data, fin = conn.read_stream(event.stream_id)
            responses[event.stream_id] = responses.get(event.stream_id, b"") + data
            if fin:
                state["answered"].add(event.stream_id)

    server_requests: dict = {}

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable):
            data, fin = conn.read_stream(event.stream_id)
            server_requests[event.stream_id] = server_requests.get(event.stream_id, b"") + data
            if fin:
                conn.send_stream_data(event.stream_id, b"response to " + server_requests[event.stream_id],
                                      end_stream=True)

    link = LinkConfig(delay=0.005, loss=loss)
    pair = Pair(seed=20, server_config=Config(max_incoming_streams=10), c2s=link,
                s2c=LinkConfig(delay=0.005, loss=loss), client_app=client_app, server_app=server_app)
    pair.drive_until(lambda: len(state["answered"]) == total, 100_000)
    assert state["blocked_seen"] > 0            # the limit did bind
    assert len(pair.events_of("server", events.StreamOpened)) == total
    for sid, body in requests.items():
        assert responses[sid] == b"response to " + body
    # Every stream was closed and forgotten on both sides.
    pair.drive_for(0.5)
    assert not pair.client.is_closed and not pair.server.is_closed


def test_flow_control_windows_block_and_unblock():
    """1 MiB through a 16 KiB stream window and a 32 KiB connection window:
    the sender stops at the window while the receiver does not read, and
    finishes once it reads."""
    size = 1024 * 1024
    data = random.Random(3).randbytes(size)
    small = Config(initial_stream_receive_window=16 * 1024, max_stream_receive_window=16 * 1024,
                   initial_connection_receive_window=32 * 1024, max_connection_receive_window=32 * 1024)
    state = {"sid": None, "reading": False, "received": bytearray(), "fin": False}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            state["sid"] = conn.open_stream()
            conn.send_stream_data(state["sid"], data, end_stream=True)

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable) and state["reading"]:
            drain(conn, event.stream_id)

    def drain(conn, sid):
        chunk, fin = conn.read_stream(sid)
        state["received"] += chunk
        state["fin"] = state["fin"] or fin

    pair = Pair(seed=21, server_config=small, client_app=client_app, server_app=server_app)
    pair.drive_for(2.0)
    sid = state["sid"]
    # Blocked: exactly one window's worth arrived, the rest waits on the client.
    assert pair.server.stream_readable(sid) == 16 * 1024
    assert pair.client.stream_send_unsent(sid) == size - 16 * 1024
    assert not pair.client.is_closed
    # Unblock: read; MAX_STREAM_DATA / MAX_DATA go back and the transfer ends.
    state["reading"] = True
    drain(pair.server, sid)
    pair.drive_until(lambda: state["fin"], 50_000)
    assert hashlib.sha256(state["received"]).digest() == hashlib.sha256(data).digest()


def test_connection_window_blocks_across_streams():
    """Four streams of 64 KiB against a 32 KiB connection window (stream windows 1 MiB)."""
    cfg = Config(initial_connection_receive_window=32 * 1024, max_connection_receive_window=32 * 1024)
    sent: dict = {}
    got: dict = {}
    state = {"reading": False, "done": set()}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for i in range(4):
                sid = conn.open_stream()
                sent[sid] = bytes([i]) * 65536
                conn.send_stream_data(sid, sent[sid], end_stream=True)

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable) and state["reading"]:
            read(conn, event.stream_id)

    def read(conn, sid):
        chunk, fin = conn.read_stream(sid)
        got[sid] = got.get(sid, b"") + chunk
        if fin:
            state["done"].add(sid)

    pair = Pair(seed=22, server_config=cfg, client_app=client_app, server_app=server_app)
    pair.drive_for(2.0)
    assert sum(pair.server.stream_readable(sid) for sid in sent) == 32 * 1024
    state["reading"] = True
    for sid in sent:
        read(pair.server, sid)
    pair.drive_until(lambda: len(state["done"]) == 4, 50_000)
    assert got == sent


def test_reset_stream_reaches_peer_with_code_and_final_size():
    state = {"sid": None}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            sid = state["sid"] = conn.open_stream()
            conn.send_stream_data(sid, b"x" * 5000)

    pair = Pair(seed=23, client_app=client_app)
    pair.drive_until(lambda: pair.server is not None and pair.server.stream_readable(0) == 5000, 1_000)
    pair.client.reset_stream(state["sid"], 0x42)
    pair.drive_until(lambda: pair.events_of("server", events.StreamReset), 1_000)
    reset = pair.events_of("server", events.StreamReset)[0]
    assert (reset.stream_id, reset.error_code, reset.final_size) == (state["sid"], 0x42, 5000)
    # The sending side is closed for the application.
    with pytest.raises(Exception):
        pair.client.send_stream_data(state["sid"], b"more")


def test_reset_stream_survives_loss():
    """RESET_STREAM frames are retransmitted: 30 resets with 20% loss all arrive."""
    sids = []

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for i in range(30):
                sid = conn.open_stream()
                sids.append(sid)
                conn.send_stream_data(sid, b"y" * 3000)
                conn.reset_stream(sid, 0x100 + i)

    lossy = LinkConfig(delay=0.01, loss=0.2)
    pair = Pair(seed=24, c2s=lossy, s2c=LinkConfig(delay=0.01, loss=0.2), client_app=client_app)
    pair.drive_until(lambda: len(pair.events_of("server", events.StreamReset)) == 30, 20_000)
    codes = {e.stream_id: e.error_code for e in pair.events_of("server", events.StreamReset)}
    assert codes == {sid: 0x100 + i for i, sid in enumerate(sids)}


def test_reset_stream_after_fin():
    """RFC 9000 §3.1: a stream whose FIN was written can still be reset while
    some of it is unacknowledged ("Data Sent"); once everything is
    acknowledged ("Data Recvd") a reset does nothing. A stream we never
    opened still cannot be reset."""
    sids = []

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for _ in range(2):
                sids.append(conn.open_stream())
            conn.send_stream_data(sids[0], b"e" * 2000, end_stream=True)

    pair = Pair(seed=26, client_app=client_app)
    pair.drive_until(lambda: sids and pair.server is not None and pair.server.stream_readable(sids[0]) == 2000, 1_000)
    pair.drive_for(0.5)         # every ACK exchanged: all of stream 0 acknowledged
    client = pair.client
    assert client.stream_send_buffered(sids[0]) == 0
    buf = bytearray(65536)
    while client.fill_send_buffer(buf, 64, pair.now)[0]:
        pass                                    # whatever else was due (ACKs, probes) goes first
    client.reset_stream(sids[0], 0x9)          # "Data Recvd": nothing to abandon
    assert client.fill_send_buffer(buf, 64, pair.now)[0] == 0     # so no RESET_STREAM either

    client.send_stream_data(sids[1], b"f" * 50_000, end_stream=True)
    client.reset_stream(sids[1], 0x10)         # FIN written, nothing sent yet
    pair.drive_until(lambda: pair.events_of("server", events.StreamReset), 1_000)
    reset = pair.events_of("server", events.StreamReset)[0]
    # The final size counts what was sent (RFC 9000 §4.5): none of it was.
    assert (reset.stream_id, reset.error_code, reset.final_size) == (sids[1], 0x10, 0)
    assert client.send_buffered == 0
    with pytest.raises(StreamStateError):
        client.reset_stream(sids[1] + 400, 0x1)     # never opened


def test_stop_sending_is_answered_with_reset_stream():
    state = {"sid": None}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            sid = state["sid"] = conn.open_stream()
            conn.send_stream_data(sid, b"z" * 100_000)

    pair = Pair(seed=25, client_app=client_app)
    pair.drive_until(lambda: pair.server is not None and pair.server.stream_readable(0) > 0, 1_000)
    pair.server.stop_stream(state["sid"], 0x77)
    pair.drive_until(lambda: pair.events_of("server", events.StreamReset), 1_000)
    stop = pair.events_of("client", events.StopSendingReceived)
    assert [(e.stream_id, e.error_code) for e in stop] == [(state["sid"], 0x77)]
    reset = pair.events_of("server", events.StreamReset)[0]
    assert reset.stream_id == state["sid"] and reset.error_code == 0x77
    assert reset.final_size <= 100_000


def test_send_buffered_counts_unacknowledged_stream_bytes():
    """The engine's connection-wide `send_buffered` equals the sum of its
    streams' unacknowledged bytes at every step: through writes (bytes and
    other buffers), acknowledgements out of order under loss, a local reset
    and a reset answering the peer's STOP_SENDING; 0 once all is settled."""
    sids = []

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for i, data in enumerate([b"a" * 30_000, bytearray(50_000), memoryview(b"c" * 20_000), b"d" * 40_000]):
                sid = conn.open_stream()
                sids.append(sid)
                conn.send_stream_data(sid, data, end_stream=i in (0, 2))
            conn.reset_stream(sids[1], 0x1)

    lossy = LinkConfig(delay=0.005, loss=0.1)
    pair = Pair(seed=31, c2s=lossy, s2c=LinkConfig(delay=0.005, loss=0.1), client_app=client_app)
    client = pair.client
    seen = {"max": 0}

    def consistent() -> bool:
        total = sum(client.stream_send_buffered(sid) for sid in sids)
        assert client.send_buffered == total
        seen["max"] = max(seen["max"], total)
        return False

    pair.drive_until(lambda: len(sids) == 4 or consistent(), 1_000)
    assert client.send_buffered == 30_000 + 20_000 + 40_000     # the reset stream holds none
    pair.drive_until(lambda: consistent() or pair.server.stream_readable(sids[3]) == 40_000, 20_000)
    pair.server.stop_stream(sids[3], 0x2)      # the client answers with RESET_STREAM
    pair.drive_until(lambda: consistent() or client.send_buffered == 0, 20_000)
    assert all(client.stream_send_buffered(sid) == 0 for sid in sids)
    assert seen["max"] > 0


def test_unidirectional_streams_both_ways():
    got = {}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            sid = conn.open_stream(is_unidirectional=True)
            assert sid & 3 == 2
            conn.send_stream_data(sid, b"from client", end_stream=True)
        elif isinstance(event, events.StreamDataAvailable):
            got["client"] = conn.read_stream(event.stream_id)

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable):
            got["server"] = conn.read_stream(event.stream_id)
            sid = conn.open_stream(is_unidirectional=True)
            assert sid & 3 == 3
            conn.send_stream_data(sid, b"from server", end_stream=True)

    pair = Pair(seed=26, client_app=client_app, server_app=server_app)
    pair.drive_until(lambda: "client" in got, 1_000)
    assert got == {"server": (b"from client", True), "client": (b"from server", True)}


class FrameLog:
    """A qlog tracer that keeps the names of the frames each sent packet carried."""

    def __init__(self) -> None:
        self.sent: list = []

    def event(self, name, data, time) -> None:
        if name == "transport:packet_sent":
            self.sent.append(data.get("frames", []))

    def close(self) -> None:
        pass

    def frames(self, frame_type: str) -> list:
        return [f for frames in self.sent for f in frames if f["frame_type"] == frame_type]


def test_blocked_frames_sent_once_per_limit():
    """A sender out of credit says so (RFC 9000 §4.1): STREAM_DATA_BLOCKED when
    the stream window binds, DATA_BLOCKED when the connection window does,
    once for each limit, and again after the peer raises the limit."""
    log = FrameLog()
    cfg = Config(initial_stream_receive_window=16 * 1024, max_stream_receive_window=16 * 1024,
                 initial_connection_receive_window=24 * 1024, max_connection_receive_window=24 * 1024)
    sids = []

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for _ in range(2):
                sids.append(conn.open_stream())
                conn.send_stream_data(sids[-1], bytes(64 * 1024), end_stream=True)

    pair = Pair(seed=23, server_config=cfg, client_app=client_app, tracer=log)
    pair.drive_for(2.0)
    stream_blocked = log.frames("stream_data_blocked")
    data_blocked = log.frames("data_blocked")
    # Stream 0 fills its 16 KiB window; stream 4 gets the other 8 KiB of the
    # connection window: one frame each, however often the sender tried.
    assert len(stream_blocked) == 1
    assert len(data_blocked) == 1
    # Reading raises both limits: the sender runs into them again and reports again.
    for sid in sids:
        pair.server.read_stream(sid)
    pair.drive_for(2.0)
    assert len(log.frames("stream_data_blocked")) >= 2
    assert len(log.frames("data_blocked")) >= 2


def test_streams_blocked_sent_when_limit_reached():
    """Asking for a stream past the peer's limit queues one STREAMS_BLOCKED
    (RFC 9000 §19.14), not one per attempt."""
    log = FrameLog()
    pair = Pair(seed=24, server_config=Config(max_incoming_streams=2), tracer=log)
    pair.handshake()
    for _ in range(2):
        pair.client.open_stream()
    assert not pair.client.can_open_stream()
    assert not pair.client.can_open_stream()
    with pytest.raises(StreamLimitReachedError):
        pair.client.open_stream()
    pair.drive_for(0.5)
    assert len(log.frames("streams_blocked")) == 1


def test_drain_events_returns_everything_next_event_would():
    """drain_events() hands over the queued events and then one
    StreamDataAvailable per readable stream, as next_event() would, and
    leaves nothing behind."""
    pair = Pair(seed=25)
    pair.handshake()
    sids = []
    for body in (b"a", b"bb", b"ccc"):
        sids.append(pair.client.open_stream())
        pair.client.send_stream_data(sids[-1], body, end_stream=True)
    buf = bytearray(64 * 1500)
    count, seg, total = pair.client.fill_send_buffer(buf, 64, pair.now)
    assert count >= 1
    pair.server.receive_segments(buf, total, seg, ("127.0.0.1", 50000), pair.now)
    drained = pair.server.drain_events()
    assert drained == [events.StreamOpened(sid) for sid in sids] + [events.StreamDataAvailable(sid) for sid in sids]
    assert pair.server.drain_events() == [] and pair.server.next_event() is None
    assert [pair.server.read_stream(sid) for sid in sids] == [(b"a", True), (b"bb", True), (b"ccc", True)]


def test_streams_opened_past_the_limit_wait_for_credit():
    """open_stream(past_limit=True) hands out streams beyond the peer's
    limit; their data is held (the server would close the connection with
    STREAM_LIMIT_ERROR otherwise) and goes out as MAX_STREAMS credit
    returns. Every request arrives and is answered."""
    received, answered = {}, set()

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable):
            data, fin = conn.read_stream(event.stream_id)
            received[event.stream_id] = received.get(event.stream_id, b"") + data
            if fin:
                conn.send_stream_data(event.stream_id, b"ok", end_stream=True)

    def client_app(conn, event):
        if isinstance(event, events.StreamDataAvailable):
            data, fin = conn.read_stream(event.stream_id)
            if fin:
                answered.add(event.stream_id)

    pair = Pair(seed=26, server_config=Config(max_incoming_streams=4), server_app=server_app, client_app=client_app)
    pair.handshake()
    bodies = {}
    for i in range(20):
        sid = pair.client.open_stream(past_limit=True)
        bodies[sid] = b"request %d" % i
        pair.client.send_stream_data(sid, bodies[sid], end_stream=True)
    assert not pair.client.can_open_stream()
    assert pair.client.peer_stream_limit() == 4 and pair.client.streams_past_limit() == 16
    pair.drive_until(lambda: len(answered) == len(bodies))
    assert pair.client.streams_past_limit() == 0 and pair.client.peer_stream_limit() >= 20
    assert received == bodies
    assert not pair.client.is_closed and not pair.server.is_closed
    # The server saw at most 4 streams at a time: it opened them in id order, as credit allowed.
    assert [e.stream_id for e in pair.events_of("server", events.StreamOpened)] == sorted(bodies)


def test_open_stream_past_the_limit_needs_the_flag():
    pair = Pair(seed=27, server_config=Config(max_incoming_streams=1))
    pair.handshake()
    pair.client.open_stream()
    with pytest.raises(StreamLimitReachedError):
        pair.client.open_stream()
    assert pair.client.open_stream(past_limit=True) == 4


def test_next_event_interleaved_with_new_events_keeps_order():
    """A driver that takes one event per datagram never empties the queue
    (the engine compacts it as it goes): every event still comes out once,
    in order."""
    pair = Pair(seed=28, server_config=Config(max_incoming_streams=1000))
    pair.handshake()
    taken = []
    for i in range(400):
        sid = pair.client.open_stream()
        pair.client.send_stream_data(sid, b"x", end_stream=True)
        buf = bytearray(64 * 1500)
        count, seg, total = pair.client.fill_send_buffer(buf, 64, pair.now)
        pair.server.receive_segments(buf, total, seg, ("127.0.0.1", 50000), pair.now)
        taken.append(pair.server.next_event())
    rest = pair.server.drain_events()
    opened = [e.stream_id for e in taken + rest if isinstance(e, events.StreamOpened)]
    readable = [e.stream_id for e in taken + rest if isinstance(e, events.StreamDataAvailable)]
    # No ACKs go back, so the client's congestion window stops it after a
    # few hundred streams: those that arrived are reported, in order.
    arrived = [sid for sid in opened if pair.server.stream_readable(sid) > 0]
    assert len(arrived) > 200
    assert opened == [4 * i for i in range(len(opened))]
    assert readable == arrived
