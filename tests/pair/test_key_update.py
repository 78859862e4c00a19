"""Automatic 1-RTT key updates (RFC 9001 §6) and the AEAD limits (§6.6)."""

import hashlib
import os
import random

from quicfast import errors
from quicfast.config import Config
from quicfast.proto import events
from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def test_key_updates_every_interval_during_lossy_upload():
    """4 MiB with 2% loss both ways and a key update every 300 packets on
    both sides: many phases pass, nothing is lost or rejected."""
    app = Upload(random.Random(61).randbytes(4 * MiB))
    config = Config(key_update_interval=300)
    pair = Pair(seed=61, client_config=config, server_config=config,
                c2s=LinkConfig(delay=0.01, loss=0.02, rate=12.5e6, queue_limit=256 * 1024),
                s2c=LinkConfig(delay=0.01, loss=0.02), client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: app.done, 300_000)
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    # ~3,400 packets at 300 per phase: at least 8 updates, whoever started them.
    assert pair.client.key_updates >= 8
    assert pair.server.key_updates >= 8
    assert not pair.client.is_closed and not pair.server.is_closed


def test_no_automatic_update_when_interval_is_off():
    app = Upload(random.Random(62).randbytes(1 * MiB))
    config = Config(key_update_interval=0)
    pair = Pair(seed=62, client_config=config, server_config=config,
                client_app=app.client, server_app=app.server)
    pair.drive_until(lambda: app.done, 100_000)
    assert pair.client.key_updates == 0 and pair.server.key_updates == 0


def test_integrity_limit_closes_with_aead_limit_reached():
    """RFC 9001 §6.6: past the integrity limit of forged packets the
    endpoint closes with AEAD_LIMIT_REACHED (limit lowered for the test)."""
    pair = Pair(seed=63)
    pair.handshake()
    pair.server.aead_integrity_limit = 5
    dcid = pair.server.host_connection_ids[0]
    for _ in range(5):
        forged = bytes([0x40 | (os.urandom(1)[0] & 0x03)]) + dcid + os.urandom(60)
        pair.server.receive_datagram(forged, ("127.0.0.1", 50000), pair.now)
    assert pair.server.auth_failures == 5
    pair.drive_until(lambda: pair.events_of("client", events.ConnectionTerminated), 2_000)
    err = pair.events_of("client", events.ConnectionTerminated)[0].error
    assert isinstance(err, errors.TransportError) and err.error_code == errors.TransportErrorCode.AEAD_LIMIT_REACHED


def test_old_keys_discarded_three_ptos_after_update():
    """RFC 9001 §6.5: the previous phase's read keys are kept for reordered
    packets, then dropped three PTOs after the new phase began; a packet of
    the old phase arriving later is dropped, not decrypted."""
    pair = Pair(seed=64, c2s=LinkConfig(delay=0.02), s2c=LinkConfig(delay=0.02))
    pair.handshake()
    pair.drive_for(0.2)
    # Two packets of the current phase that the network "delays".
    sid = pair.client.open_stream()
    held = []
    buf = bytearray(1500)
    for chunk in (b"early", b"late"):
        pair.client.send_stream_data(sid, chunk)
        count, seg, total = pair.client.fill_send_buffer(buf, 1, pair.now)
        assert count == 1
        held.append(bytes(buf[:total]))
    pair.client.request_key_update()
    pair.client.send_stream_data(sid, b"new phase")
    pair.drive_for(0.1)
    assert pair.server.key_updates == 1 and pair.server.previous_keys_retained
    dropped = pair.server.packets_dropped
    pair.server.receive_datagram(held[0], ("127.0.0.1", 50000), pair.now)
    assert pair.server.packets_dropped == dropped          # old keys still open it
    pair.drive_for(3.0)
    assert not pair.server.previous_keys_retained and not pair.client.previous_keys_retained
    pair.server.receive_datagram(held[1], ("127.0.0.1", 50000), pair.now)
    assert pair.server.packets_dropped == dropped + 1      # too late: dropped
    assert not pair.server.is_closed
