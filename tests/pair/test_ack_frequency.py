"""The ACK Frequency extension (draft-ietf-quic-ack-frequency): a sender
with a large window asks its peer to ACK less often, and a receiver honours
such requests within bounds and rejects malformed ones."""

import random

from quicfast.errors import TransportErrorCode as E
from tests.hostile.attacker import established, frame
from tests.pair.sim import LinkConfig, Pair, Upload
from tests.pair.test_streams import FrameLog

MiB = 1024 * 1024
ACK_FREQUENCY = 0xAF
IMMEDIATE_ACK = 0x1F


def test_fast_sender_asks_for_fewer_acks():
    """4 MiB over a 40 ms RTT, the client paced (so its packets arrive one by
    one, not in batches): both sides advertise min_ack_delay, the client asks
    the server to ACK every 11 packets once its window is large, and the
    server sends far fewer datagrams than one ACK per two packets would need."""
    log = FrameLog()
    app = Upload(random.Random(81).randbytes(4 * MiB))
    pair = Pair(seed=81, c2s=LinkConfig(delay=0.02), s2c=LinkConfig(delay=0.02),
                client_app=app.client, server_app=app.server, tracer=log)
    pair.handshake()
    assert pair.server.ack_eliciting_threshold == 2           # RFC 9000's default until asked
    pair.drive_until(lambda: app.done, 200_000)
    assert app.received == app.payload
    requests = log.frames("ack_frequency")
    assert 1 <= len(requests) <= 20                           # renewed at most once per RTT
    assert pair.server.ack_eliciting_threshold == 11
    assert pair.s2c.stats.sent < pair.c2s.stats.sent / 6


def test_request_below_min_ack_delay_is_protocol_violation():
    a = established()
    a.send(frame(ACK_FREQUENCY, 0, 5, 999, 1))     # 999 µs < our min_ack_delay of 1000 µs
    assert a.closed_with == E.PROTOCOL_VIOLATION


def test_huge_threshold_is_bounded_and_stale_requests_ignored():
    a = established()
    a.send(frame(ACK_FREQUENCY, 5, 1 << 40, 25_000, 1))
    assert a.server.close_error is None
    assert a.server.ack_eliciting_threshold == 256            # bounded, not 2^40
    a.send(frame(ACK_FREQUENCY, 4, 3, 25_000, 1))           # older sequence number: ignored
    assert a.server.ack_eliciting_threshold == 256
    a.send(frame(ACK_FREQUENCY, 6, 3, 25_000, 1))
    assert a.server.ack_eliciting_threshold == 4


def test_immediate_ack_is_answered_at_once():
    a = established()
    a.send(frame(ACK_FREQUENCY, 0, 100, 1_000_000, 1))     # ACK only every 101 packets or after 1 s
    assert a.send(frame(0x01)) == []                        # a PING alone waits
    assert len(a.send(frame(IMMEDIATE_ACK))) == 1           # IMMEDIATE_ACK does not
