"""Connection-level behaviour over the simulated network: close codes,
idle and handshake timeouts, the server's anti-amplification limit,
DATAGRAM frames, key updates mid-transfer and the stats() counters.
Transfers here are 2-4 MiB."""

import hashlib
import random

import pytest

from quicfast import errors
from quicfast.config import Config
from quicfast.proto import events
from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def terminated(pair, side):
    found = pair.events_of(side, events.ConnectionTerminated)
    assert len(found) <= 1
    return found[0].error if found else None


def test_application_close_reaches_peer():
    pair = Pair(seed=30)
    pair.handshake()
    pair.client.close(0x1234, "bye now")
    pair.drive_until(lambda: terminated(pair, "server") is not None, 1_000)
    err = terminated(pair, "server")
    assert isinstance(err, errors.ApplicationError)
    assert (err.error_code, err.reason, err.remote) == (0x1234, "bye now", True)
    pair.drive_until(lambda: terminated(pair, "client") is not None, 1_000)
    own = terminated(pair, "client")
    assert isinstance(own, errors.ApplicationError) and own.remote is False and own.error_code == 0x1234
    assert pair.client.is_closed and pair.server.is_closed
    # After the closing/draining periods nothing is left to happen.
    assert pair.next_wakeup() is None


def test_transport_close_from_server_reaches_client():
    pair = Pair(seed=31)
    pair.handshake()
    pair.server.close(errors.TransportErrorCode.PROTOCOL_VIOLATION, "nope", is_application=False, frame_type=0x08)
    pair.drive_until(lambda: terminated(pair, "client") is not None, 1_000)
    err = terminated(pair, "client")
    assert isinstance(err, errors.TransportError) and err.remote
    assert (err.error_code, err.frame_type, err.reason) == (0x0A, 0x08, "nope")


def test_close_is_delivered_despite_loss():
    """The closing endpoint answers further packets with CONNECTION_CLOSE: the
    server, still sending a download, learns the code although the client's
    first CONNECTION_CLOSE is lost."""
    state = {"closing": False, "dropped": 0, "received": 0}

    def drop_first_close(index, data):
        if state["closing"] and not state["dropped"]:
            state["dropped"] = index + 1
            return True
        return False

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            conn.send_stream_data(conn.open_stream(), b"GET", end_stream=True)
        elif isinstance(event, events.StreamDataAvailable):
            state["received"] += len(conn.read_stream(event.stream_id)[0])

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable) and conn.read_stream(event.stream_id)[1]:
            conn.send_stream_data(event.stream_id, b"d" * (4 * MiB), end_stream=True)

    pair = Pair(seed=32, c2s=LinkConfig(delay=0.01, drop=drop_first_close),
                client_app=client_app, server_app=server_app)
    pair.drive_until(lambda: state["received"] > 100_000, 10_000)
    state["closing"] = True
    pair.client.close(7, "abort")
    pair.drive_until(lambda: terminated(pair, "server") is not None, 5_000)
    assert state["dropped"]
    assert pair.c2s.stats.sent > state["dropped"]     # it answered again
    err = terminated(pair, "server")
    assert isinstance(err, errors.ApplicationError) and err.error_code == 7 and err.remote


def test_idle_timeout_when_peer_goes_silent():
    cfg = Config(max_idle_timeout=2.0)
    pair = Pair(seed=33, client_config=cfg, server_config=Config(max_idle_timeout=2.0))
    pair.handshake()
    start = pair.now
    pair.server_alive = False     # the server vanishes without a word
    pair.drive_until(lambda: terminated(pair, "client") is not None, 1_000)
    assert isinstance(terminated(pair, "client"), errors.IdleTimeoutError)
    assert 2.0 <= pair.now - start < 3.0


def test_idle_timeout_is_the_smaller_of_both_sides():
    pair = Pair(seed=34, client_config=Config(max_idle_timeout=10.0), server_config=Config(max_idle_timeout=1.5))
    pair.handshake()
    start = pair.now
    pair.drive_until(lambda: terminated(pair, "client") is not None and terminated(pair, "server") is not None, 1_000)
    assert isinstance(terminated(pair, "client"), errors.IdleTimeoutError)
    assert isinstance(terminated(pair, "server"), errors.IdleTimeoutError)
    assert 1.5 <= pair.now - start < 2.5


def test_keep_alive_prevents_idle_timeout():
    cfg = Config(max_idle_timeout=1.0, keep_alive_period=0.3)
    pair = Pair(seed=35, client_config=cfg, server_config=Config(max_idle_timeout=1.0))
    pair.handshake()
    pair.drive_for(10.0, max_steps=10_000)
    assert not pair.client.is_closed and not pair.server.is_closed


def test_handshake_timeout_when_server_is_silent():
    cfg = Config(handshake_idle_timeout=1.0)
    pair = Pair(seed=36, client_config=cfg, c2s=LinkConfig(drop=lambda i, d: True))
    pair.drive_until(lambda: terminated(pair, "client") is not None, 1_000)
    assert isinstance(terminated(pair, "client"), errors.HandshakeTimeoutError)
    assert pair.server is None
    assert pair.now <= 2.0 + 1e-6
    assert pair.c2s.stats.sent >= 3    # it retried (PTO) before giving up


def test_handshake_timeout_when_client_goes_silent():
    """The client stops after its first flight: the server gives up too."""
    pair = Pair(seed=37, server_config=Config(handshake_idle_timeout=1.0))
    pair.drive_until(lambda: pair.server is not None, 100)
    pair.client_alive = False
    pair.drive_until(lambda: terminated(pair, "server") is not None, 1_000)
    assert isinstance(terminated(pair, "server"), errors.HandshakeTimeoutError)


def test_server_anti_amplification_limit():
    """Only the client's first flight reaches the server (the ClientHello with
    its post-quantum key share may take two datagrams); every later client
    datagram is dropped. Before the address is validated the server sends at
    most 3x what it received, PTOs included."""
    first_flight = {"n": None}
    pair = Pair(seed=38, c2s=LinkConfig(drop=lambda i, d: first_flight["n"] is not None and i >= first_flight["n"]))
    first_flight["n"] = pair.c2s.stats.sent
    pair.drive_for(8.0, max_steps=10_000)
    received = pair.c2s.stats.delivered_bytes
    sent = pair.s2c.stats.sent_bytes
    assert received >= 1200
    assert sent > received          # it did send its flight...
    assert sent <= 3 * received     # ...but no more than the limit
    assert pair.server.stats()["bytes_sent"] == sent


def test_anti_amplification_limit_lifts_once_client_validated():
    """With a big certificate-sized flight the server is blocked at 3x until
    the client's Handshake packet validates the address; then it completes."""
    pair = Pair(seed=39)
    pair.handshake()
    s = pair.server.stats()
    assert s["bytes_sent"] > 0 and pair.server.is_handshake_confirmed


def test_datagrams_delivered_both_ways():
    cfg = Config(enable_datagrams=True)
    got = {"client": [], "server": []}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            for i in range(20):
                conn.send_datagram_frame(b"c%d" % i)
        elif isinstance(event, events.DatagramReceived):
            got["client"].append(event.data)

    def server_app(conn, event):
        if isinstance(event, events.DatagramReceived):
            got["server"].append(event.data)
            conn.send_datagram_frame(b"echo " + event.data)

    pair = Pair(seed=40, client_config=cfg, server_config=Config(enable_datagrams=True),
                client_app=client_app, server_app=server_app)
    pair.drive_until(lambda: len(got["client"]) == 20, 1_000)
    assert got["server"] == [b"c%d" % i for i in range(20)]
    assert got["client"] == [b"echo c%d" % i for i in range(20)]
    assert pair.client.max_datagram_payload > 1000
    with pytest.raises(errors.DatagramTooLargeError):
        pair.client.send_datagram_frame(b"x" * (pair.client.max_datagram_payload + 1))


def test_datagrams_are_not_retransmitted():
    cfg = Config(enable_datagrams=True)
    got = []

    def client_app(conn, event):
        if isinstance(event, events.HandshakeConfirmed):
            for i in range(200):   # one per packet, so loss hits single datagrams
                conn.send_datagram_frame(b"d%d " % i + b"." * 1000)

    def server_app(conn, event):
        if isinstance(event, events.DatagramReceived):
            got.append(event.data)

    pair = Pair(seed=41, client_config=cfg, server_config=Config(enable_datagrams=True),
                c2s=LinkConfig(delay=0.01, loss=0.3), client_app=client_app, server_app=server_app)
    pair.handshake(max_steps=5_000)
    pair.drive_for(3.0)
    assert 0 < len(got) < 200
    assert len(set(got)) == len(got)


def test_datagrams_refused_when_not_negotiated():
    pair = Pair(seed=42, client_config=Config(enable_datagrams=True))
    pair.handshake()
    assert not pair.client.datagrams_supported
    with pytest.raises(errors.DatagramNotSupportedError):
        pair.client.send_datagram_frame(b"x")


@pytest.mark.parametrize("who", ["client", "server", "both"])
def test_key_update_mid_transfer(who):
    """4 MiB upload with 2% loss; key updates requested part-way through."""
    app = Upload(random.Random(43).randbytes(4 * MiB))
    pair = Pair(seed=43, c2s=LinkConfig(delay=0.01, loss=0.02, rate=12.5e6, queue_limit=256 * 1024),
                s2c=LinkConfig(delay=0.01, loss=0.02), client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: len(app.received) > 1 * MiB, 200_000)
    if who in ("client", "both"):
        pair.client.request_key_update()
    if who == "server":
        pair.server.request_key_update()
    pair.drive_until(lambda: len(app.received) > 2 * MiB, 200_000)
    if who == "both":
        pair.server.request_key_update()
    pair.drive_until(lambda: app.done, 200_000)
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    assert not pair.client.is_closed and not pair.server.is_closed


def test_key_update_before_confirmation_is_refused():
    pair = Pair(seed=44)
    with pytest.raises(errors.QuicError):
        pair.client.request_key_update()


def test_stats_counters():
    """2 MiB upload with 5% loss: stats() agrees with what the network saw."""
    app = Upload(random.Random(45).randbytes(2 * MiB))
    pair = Pair(seed=45, c2s=LinkConfig(delay=0.02, loss=0.05), s2c=LinkConfig(delay=0.02),
                client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: app.done, 200_000)
    pair.drive_for(0.5)   # let the last ACKs land
    c, s = pair.client.stats(), pair.server.stats()
    assert c["bytes_sent"] == pair.c2s.stats.sent_bytes
    assert s["bytes_sent"] == pair.s2c.stats.sent_bytes
    assert c["bytes_received"] == pair.s2c.stats.delivered_bytes
    assert s["bytes_received"] == pair.c2s.stats.delivered_bytes
    assert c["packets_sent"] >= pair.c2s.stats.sent        # coalesced packets count each
    assert s["packets_received"] >= pair.c2s.stats.delivered - pair.c2s.stats.lost
    assert c["packets_lost"] > 0 and c["bytes_lost"] > 0
    # 5% loss: declared losses are near what the network dropped (spurious ones allowed).
    assert 0.5 * pair.c2s.stats.lost <= c["packets_lost"] <= 2 * pair.c2s.stats.lost + 10
    assert s["packets_lost"] == 0
    assert c["min_rtt"] == pytest.approx(0.04, abs=0.002)
    assert 0.04 <= c["smoothed_rtt"] < 0.2
    assert c["congestion_window"] >= 2 * 1200
    assert c["bytes_sent"] > 2 * MiB
