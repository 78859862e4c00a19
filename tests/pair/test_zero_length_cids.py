"""Zero-length connection IDs (RFC 9000 §5.1, §7.2): a client that asks to be
addressed with an empty CID (as quic-go's clients may) gets a working
connection over a lossy path."""

import hashlib
import random

from quicfast.proto import events
from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def test_client_with_zero_length_cid_transfers_both_ways():
    app = Upload(random.Random(91).randbytes(2 * MiB))
    pair = Pair(seed=91, host_cid=b"", c2s=LinkConfig(delay=0.01, loss=0.02), s2c=LinkConfig(delay=0.01, loss=0.02),
                client_app=app.client, server_app=app.server)
    pair.handshake()
    assert pair.client.host_connection_ids == [b""]
    # The server addresses the client with the empty CID; the client never
    # issues more (there is nothing to rotate), the server still does.
    assert not pair.events_of("client", events.ConnectionIdIssued)
    assert len(pair.client.peer_transport_parameters.initial_source_connection_id) == 8
    pair.drive_until(lambda: app.done, 100_000)
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    assert not pair.client.is_closed and not pair.server.is_closed

