"""Pacing (RFC 9002 §7.7) seen from the simulated network: once the window
is larger than the pacer's bucket, a sender spreads its window over the RTT
instead of sending it in one burst."""

import collections
import hashlib
import random

from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def test_window_is_spread_over_the_rtt():
    """2 MiB over a 100 ms RTT: the window grows far past the pacer's
    bucket (10 datagrams, or 2 ms at the pacing rate), yet no instant of
    the simulated clock sees more than one bucket leave the client."""
    app = Upload(random.Random(71).randbytes(2 * MiB))
    pair = Pair(seed=71, c2s=LinkConfig(delay=0.05), s2c=LinkConfig(delay=0.05),
                client_app=app.client, server_app=app.server)
    sent_at = collections.Counter()
    original_send = pair.c2s.send

    def send(data, now):
        sent_at[now] += len(data)
        original_send(data, now)

    pair.c2s.send = send
    pair.handshake()
    pair.drive_until(lambda: app.done, 200_000)
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    pacer = pair.client.recovery.pacer.capacity
    cwnd = pair.client.stats()["congestion_window"]
    assert cwnd > 4 * pacer                   # the window did outgrow the bucket...
    assert max(sent_at.values()) <= pacer + 1500   # ...and never left in one burst
    # ...which spread the upload over many instants of the clock.
    assert len(sent_at) > 2 * MiB / pacer
