"""Hostile peers against the sans-I/O server engine.

A real handshake, then an attacker who holds the client's keys sends
crafted 1-RTT packets (tests/hostile/attacker.py). For every attack the
server must either end the connection with the error RFC 9000 names, or
stay up with bounded memory, bounded CPU and bounded answers. Time is
virtual. CPU is bounded relative to a benign baseline measured in the same
test (the same number of datagrams of PING frames), with a wide margin:
process CPU time of both, so other load on the machine moves both alike.
"""

import gc
import time
import tracemalloc

from quicfast.config import Config
from quicfast.errors import TransportErrorCode as E
from tests.hostile.attacker import established, frame

MAX_DATAGRAM = 60_000   # the engine accepts datagrams up to 64 KiB
# An attack may cost this many times the CPU of the benign baseline.
CPU_MARGIN = 20


def cpu_seconds(action) -> float:
    """Process CPU time of `action()`, with the cyclic GC held off (a
    collection landing in one measurement would swamp a short one)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        action()
        return time.process_time() - start
    finally:
        gc.enable()


def ping_baseline(datagrams: int, size: int) -> float:
    """CPU for `datagrams` datagrams of `size` bytes of PING frames on a fresh connection."""
    b = established()
    payload = frame(0x01) * size
    return cpu_seconds(lambda: [b.send(payload) for _ in range(datagrams)])


def packed(frames, limit=1100):
    """Group frames into payloads of at most `limit` bytes."""
    out, cur = [], b""
    for f in frames:
        if cur and len(cur) + len(f) > limit:
            out.append(cur)
            cur = b""
        cur += f
    if cur:
        out.append(cur)
    return out


# -- streams ---------------------------------------------------------------------


def test_stream_past_the_limit_is_stream_limit_error():
    a = established(server_config=Config(max_incoming_streams=10))
    a.send(frame(0x0B, 4 * 9, 1, b"x"))          # stream 36: the 10th, allowed
    assert a.server.close_error is None
    a.send(frame(0x0B, 4 * 10, 1, b"x"))         # stream 40: the 11th
    assert a.closed_with == E.STREAM_LIMIT_ERROR


def test_stream_open_flood_within_limits_keeps_state_bounded():
    """Open, finish and abandon streams as fast as credit allows; the
    application reads nothing. The server's state must not grow with the
    number of streams ever opened (it only grants MAX_STREAMS as streams close)."""
    a = established(server_config=Config(max_incoming_streams=100))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sid = 0
        for _ in range(20):
            frames = [frame(0x0F, sid + 4 * i, 0, 1, b"y") for i in range(100)]   # STREAM+OFF+LEN+FIN
            for payload in packed(frames):
                a.send(payload)
            sid += 400
            if a.server.close_error is not None:
                break
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # Unread streams hold their data: the peer is stopped by the limit.
    assert a.closed_with == E.STREAM_LIMIT_ERROR
    assert grown < 4 << 20


# -- ACK frames ------------------------------------------------------------------------


def test_ack_of_an_unsent_packet_number_is_protocol_violation():
    a = established()
    a.send(frame(0x01))
    assert a.server_largest_pn >= 0
    a.send(frame(0x02, a.server_largest_pn + 1000, 0, 0, 0))
    assert a.closed_with == E.PROTOCOL_VIOLATION


def test_ack_with_thousands_of_ranges_costs_bounded_cpu():
    a = established()
    for _ in range(5):
        a.send(frame(0x01))
    largest = a.server_largest_pn
    # 20,000 ranges descending past zero in one 60 KB datagram.
    ranges = b"".join(frame(0, 0)[1:] + b"\x00" for _ in range(20_000))   # gap 0, length 0
    ack = frame(0x02, largest, 0, 20_000, 0) + ranges
    cost = cpu_seconds(lambda: a.send(ack[:MAX_DATAGRAM]))
    baseline = ping_baseline(1, MAX_DATAGRAM)
    assert cost < CPU_MARGIN * baseline, f"{cost * 1e3:.2f} ms for one ACK frame, {baseline * 1e3:.2f} ms for 60 KB of PINGs"
    assert a.closed_with in (E.FRAME_ENCODING_ERROR, E.PROTOCOL_VIOLATION)


def test_many_valid_ack_frames_cost_bounded_cpu():
    """Thousands of valid, redundant ACK frames for what the server really sent."""
    a = established()
    for _ in range(50):
        a.send(frame(0x01))
    largest = a.server_largest_pn
    ack = frame(0x02, largest, 0, 0, 0)          # just the largest: always valid
    payload = ack * (MAX_DATAGRAM // len(ack))
    cost = cpu_seconds(lambda: [a.send(payload) for _ in range(20)])
    baseline = ping_baseline(20, len(payload))
    assert a.server.close_error is None
    assert cost < CPU_MARGIN * baseline, f"{cost:.3f} s for {20 * (MAX_DATAGRAM // len(ack))} ACK frames, {baseline:.3f} s for PINGs"


# -- flow control ---------------------------------------------------------------


def test_stream_data_past_the_window_is_flow_control_error():
    a = established(server_config=Config(initial_stream_receive_window=1000, max_stream_receive_window=1000))
    a.send(frame(0x0E, 0, 0, 1000, b"z" * 1000))   # exactly the window: fine
    assert a.server.close_error is None
    a.send(frame(0x0E, 0, 1000, 1, b"z"))
    assert a.closed_with == E.FLOW_CONTROL_ERROR


def test_tiny_window_games_do_not_amplify():
    """The attacker (as receiver) raises MAX_STREAM_DATA one byte at a time
    on a stream the server writes 1 MiB to: the server may answer each
    increment, but must not send more bytes than it is given credit for plus
    bounded overhead, and must not spin."""
    a = established(client_config=Config(initial_stream_receive_window=1, max_stream_receive_window=1,
                                         initial_connection_receive_window=1 << 20))
    sid = a.server.open_stream()                 # server-initiated bidi (1)
    a.server.send_stream_data(sid, b"w" * (1 << 20))
    a.drain()
    before = a.server_bytes
    cost = cpu_seconds(lambda: [a.send(frame(0x11, sid, limit)) for limit in range(2, 2002)])
    sent = a.server_bytes - before
    assert a.server.close_error is None
    assert sent <= 3 * a.sent_bytes, f"server sent {sent} B for {a.sent_bytes} B of 1-byte credit"
    baseline = ping_baseline(2000, 1)
    assert cost < CPU_MARGIN * baseline, f"{cost:.3f} s for 2,000 one-byte credits, {baseline:.3f} s for 2,000 PINGs"


def test_zero_window_probe_is_bounded_over_time():
    """The attacker never grants credit: the blocked server sends
    STREAM_DATA_BLOCKED/PTO probes with backoff, not a stream of packets."""
    a = established(client_config=Config(initial_stream_receive_window=1, max_stream_receive_window=1))
    sid = a.server.open_stream()
    a.server.send_stream_data(sid, b"w" * 100_000)
    a.drain()
    out = a.advance(20.0)
    assert len(out) < 40, f"{len(out)} datagrams in 20 s while blocked"


# -- CRYPTO ---------------------------------------------------------------------------


def test_crypto_far_beyond_the_read_offset_is_crypto_buffer_exceeded():
    a = established()
    a.send(frame(0x06, 10 << 20, 4, b"abcd"))
    assert a.closed_with == E.CRYPTO_BUFFER_EXCEEDED


def test_unbounded_in_order_crypto_data_is_refused():
    """A post-handshake TLS message that claims 16 MiB, streamed in order:
    the server must refuse it (TLS message size limit or CRYPTO buffer
    limit) before holding more than a bounded amount."""
    a = established()
    header = bytes([4]) + (0xFFFFFF).to_bytes(3, "big")   # NewSessionTicket, 16 MiB body
    offset = 0
    chunk = b"\x00" * 1000
    a.send(frame(0x06, offset, len(header), header))
    offset += len(header)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):                                # up to 2 MB
            a.send(frame(0x06, offset, len(chunk), chunk))
            offset += len(chunk)
            if a.server.close_error is not None:
                break
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert a.server.close_error is not None, "2 MB of one TLS message accepted"
    assert offset < 600_000
    assert grown < 1 << 20


# -- connection IDs -----------------------------------------------------------------


def new_cid(seq, retire_prior_to):
    cid = seq.to_bytes(8, "big")
    return frame(0x18, seq, retire_prior_to, bytes([8]) + cid + bytes(16 - 8) + cid)


def test_new_connection_id_past_the_limit_is_connection_id_limit_error():
    # The honest client already issued seqs 1..3; start far above and retire them.
    a = established(server_config=Config(active_connection_id_limit=4))
    a.send(b"".join(new_cid(seq, 1000) for seq in range(1000, 1004)))     # 4 active
    assert a.server.close_error is None
    a.send(new_cid(1004, 1000))
    assert a.closed_with == E.CONNECTION_ID_LIMIT_ERROR


def test_new_connection_id_flood_with_retirements_keeps_state_bounded():
    """Each frame retires every earlier CID (retire_prior_to = seq), so the
    active count stays legal while the server owes one RETIRE_CONNECTION_ID
    per frame. Delivered faster than the server can send (no draining), the
    owed retirements must stay bounded (RFC 9000 §5.1.2 allows closing with
    CONNECTION_ID_LIMIT_ERROR instead)."""
    a = established()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        seq = 1000
        for _ in range(40):
            frames = []
            while sum(map(len, frames)) < MAX_DATAGRAM - 64:
                frames.append(new_cid(seq, seq))
                seq += 1
            a.send(b"".join(frames), drain=False)
            if a.server.close_error is not None:
                break
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    if a.server.close_error is None:
        assert grown < 1 << 20, f"{seq} NEW_CONNECTION_ID frames grew traced memory by {grown >> 10} KiB"
    else:
        assert a.closed_with == E.CONNECTION_ID_LIMIT_ERROR


def test_stale_new_connection_id_frames_are_not_retired_again_and_again():
    """Re-sending NEW_CONNECTION_ID for a sequence number already retired
    must not queue one more RETIRE_CONNECTION_ID each time."""
    a = established()
    a.send(new_cid(1000, 1000))
    a.drain()
    before = a.server_bytes
    stale = new_cid(5, 0)                    # seq 5 < retire_prior_to 1000: already retired
    payload = stale * (MAX_DATAGRAM // len(stale))
    for _ in range(10):
        a.send(payload)
    sent = a.server_bytes - before
    assert a.server.close_error is None or a.closed_with == E.CONNECTION_ID_LIMIT_ERROR
    assert sent < 20_000, f"server sent {sent} B answering {10 * len(payload)} B of stale frames"


# -- paths ------------------------------------------------------------------------------


def test_path_challenge_flood_gets_bounded_responses():
    a = established()
    challenge = frame(0x1A, b"12345678")
    payload = challenge * (MAX_DATAGRAM // len(challenge))
    before = a.server_bytes
    for _ in range(20):
        a.send(payload)
    sent = a.server_bytes - before
    assert a.server.close_error is None
    # No amplification: the answers are smaller than the flood.
    assert sent < a.sent_bytes // 10, f"server sent {sent} B for {a.sent_bytes} B of PATH_CHALLENGE"


# -- datagrams -----------------------------------------------------------------------------


def test_datagram_frames_without_negotiation_are_protocol_violation():
    a = established()
    a.send(frame(0x31, 3, b"abc"))
    assert a.closed_with == E.PROTOCOL_VIOLATION
