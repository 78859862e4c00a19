"""Handshake and bulk transfer over the simulated network (tests/pair/sim.py).

Sizes: handshakes only; 64 MiB uploads (clean, 5% and 20% loss, reordering);
8 MiB through a 100 Mbit/s bottleneck; 4 MiB with reordering + duplication +
corruption. Every run is
seeded; times are simulated seconds.
"""

import hashlib
import random

import pytest

from quicfast.proto import events
from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def payload_of(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("seed", range(5))
def test_handshake_clean(seed):
    pair = Pair(seed=seed)
    pair.handshake(max_steps=50)
    done = pair.events_of("client", events.HandshakeCompleted)
    assert len(done) == 1 and done[0].alpn_protocol == "quicfast-test"
    assert pair.events_of("server", events.HandshakeConfirmed)
    assert pair.events_of("client", events.HandshakeConfirmed)
    # One round trip for the handshake, one more for HANDSHAKE_DONE.
    assert pair.now < 0.05


@pytest.mark.parametrize("seed", range(20))
def test_handshake_survives_30_percent_loss(seed):
    """30% of datagrams lost each way while the handshake runs."""
    lossy = LinkConfig(loss=0.3, delay=0.01)
    pair = Pair(seed=seed, c2s=lossy, s2c=dataclass_copy(lossy))
    pair.handshake(max_steps=2_000)
    assert pair.now < 10
    assert not pair.client.is_closed and not pair.server.is_closed


def dataclass_copy(cfg):
    import dataclasses
    return dataclasses.replace(cfg)


def run_upload(size: int, c2s: LinkConfig, s2c: LinkConfig, seed: int, max_steps: int = 400_000):
    app = Upload(payload_of(size, seed))
    pair = Pair(seed=seed, c2s=c2s, s2c=s2c, client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: app.done, max_steps)
    assert len(app.received) == size
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    assert not pair.client.is_closed and not pair.server.is_closed
    return pair


def bottleneck(**kw) -> LinkConfig:
    """100 Mbit/s, 10 ms one way, 256 KiB drop-tail queue."""
    return LinkConfig(delay=0.010, rate=12.5e6, queue_limit=256 * 1024, **kw)


@pytest.mark.parametrize("size", [0, 1, 1500, 8 * MiB])
def test_upload_clean(size):
    pair = run_upload(size, bottleneck(), LinkConfig(delay=0.010), seed=1)
    if size == 8 * MiB:
        # Slow start overshoots the queue once; then the link stays busy.
        rate = size / pair.now
        assert rate > 5e6, f"{rate / 1e6:.1f} MB/s in the simulation"


def fast_link(**kw) -> LinkConfig:
    """1 Gbit/s, 10 ms one way, 1 MiB drop-tail queue."""
    return LinkConfig(delay=0.010, rate=125e6, queue_limit=1024 * 1024, **kw)


@pytest.mark.parametrize("condition", ["clean", "loss 5%", "loss 20%", "reordering"])
def test_64_mib_upload_arrives_intact(condition):
    """64 MiB on one stream, SHA-256 checked, in each condition of the
    engine issue: random loss both ways (handshake included), or 10% of the
    datagrams each way held back 5 ms behind the ones sent after them."""
    links = {
        "clean": (fast_link(), LinkConfig(delay=0.010)),
        "loss 5%": (fast_link(loss=0.05), LinkConfig(delay=0.010, loss=0.05)),
        "loss 20%": (fast_link(loss=0.2), LinkConfig(delay=0.010, loss=0.2)),
        "reordering": (fast_link(reorder=0.1, reorder_delay=0.005),
                       LinkConfig(delay=0.010, reorder=0.1, reorder_delay=0.005)),
    }
    c2s, s2c = links[condition]
    pair = run_upload(64 * MiB, c2s, s2c, seed=11, max_steps=3_000_000)
    if condition == "reordering":
        assert pair.c2s.stats.reordered > 1000


@pytest.mark.parametrize("seed", [5, 6])
def test_upload_reorder_duplicate_corrupt(seed):
    """4 MiB; each way 10% reordered by 15 ms, 5% duplicated, 2% corrupted, 5 ms jitter."""
    def messy():
        return LinkConfig(delay=0.010, jitter=0.005, reorder=0.1, reorder_delay=0.015,
                          duplicate=0.05, corrupt=0.02, rate=12.5e6, queue_limit=512 * 1024)
    pair = run_upload(4 * MiB, messy(), messy(), seed=seed)
    assert pair.c2s.stats.corrupted and pair.c2s.stats.duplicated and pair.c2s.stats.reordered
    # A corrupted datagram fails authentication and is dropped, never delivered as data.
    assert pair.server.stats()["packets_received"] < pair.c2s.stats.delivered + pair.c2s.stats.duplicated * 2


def test_download_with_loss():
    """The server sends 4 MiB to the client with 5% loss both ways."""
    data = payload_of(4 * MiB, 9)
    received = bytearray()
    state = {"done": False}

    def client_app(conn, event):
        if isinstance(event, events.HandshakeCompleted):
            sid = conn.open_stream()
            conn.send_stream_data(sid, b"GET", end_stream=True)
        elif isinstance(event, events.StreamDataAvailable):
            chunk, fin = conn.read_stream(event.stream_id)
            received.extend(chunk)
            state["done"] = state["done"] or fin

    def server_app(conn, event):
        if isinstance(event, events.StreamDataAvailable):
            request, fin = conn.read_stream(event.stream_id)
            if fin:
                conn.send_stream_data(event.stream_id, data, end_stream=True)

    pair = Pair(seed=10, c2s=LinkConfig(delay=0.01, loss=0.05), s2c=bottleneck(loss=0.05),
                client_app=client_app, server_app=server_app)
    pair.drive_until(lambda: state["done"], 400_000)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("lost", [[1], [1, 2], [1, 2, 3, 4]])
def test_client_finished_lost_after_1rtt_data_sent(lost):
    """Regression: the client's Finished is lost while 1-RTT data it sent with
    it fills the congestion window. The server must not process (and ack)
    1-RTT before its handshake completes, and the Finished must still go out."""
    app = Upload(payload_of(200_000))
    pair = Pair(seed=11, c2s=LinkConfig(delay=0.01, drop=lambda i, d: i in lost),
                client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: app.done, 20_000)
    assert bytes(app.received) == app.payload
    assert pair.now < 5
