"""Stream send/receive buffers (RFC 9000 §2.2, §3, §4.5) against a bytes model."""

import random
import sys

import pytest
from hypothesis import given, settings, strategies as st

from quicfast.proto.streams import RecvBuffer, SendBuffer

FINAL_SIZE_ERROR = 0x06


def chunks_of(data, cuts):
    """Split `data` at the sorted cut points into (offset, bytes) pieces."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [(a, data[a:b]) for a, b in zip(points, points[1:])]


# --- RecvBuffer: reassembly -------------------------------------------------


def test_in_order_reassembly_and_fin():
    r = RecvBuffer()
    assert r.receive_bytes(0, b"hello ") == 0
    assert r.readable_bytes() == 6
    assert r.receive_bytes(6, b"world", True) == 0
    assert r.final_size == 11
    assert r.read_bytes(3) == b"hel"
    assert not r.finished()
    assert r.read_bytes() == b"lo world"
    assert r.finished()
    assert r.read_bytes() == b""


def test_out_of_order_data_waits_for_the_gap():
    r = RecvBuffer()
    r.receive_bytes(5, b"56789")
    assert r.readable_bytes() == 0
    assert r.read_bytes() == b""
    assert r.highest_offset == 10
    r.receive_bytes(0, b"01234")
    assert r.read_bytes() == b"0123456789"


def test_overlap_keeps_first_copy_and_duplicates_are_ignored():
    r = RecvBuffer()
    r.receive_bytes(2, b"cd")
    r.receive_bytes(0, b"XXXXXX")  # overlaps [2, 4): the held "cd" wins
    r.receive_bytes(0, b"ab")  # duplicate of what is now held
    assert r.read_bytes() == b"XXcdXX"
    r.receive_bytes(0, b"old")  # entirely below read_offset
    assert r.readable_bytes() == 0
    assert r.read_offset == 6


def test_empty_frame_with_fin_sets_final_size():
    r = RecvBuffer()
    r.receive_bytes(0, b"abc")
    assert r.receive_bytes(3, b"", True) == 0
    assert r.final_size == 3
    assert r.read_bytes() == b"abc"
    assert r.finished()


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=30),
    extra=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 400)), max_size=10),
    seed=st.integers(0, 2**32),
    read_sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8),
)
def test_reassembly_matches_bytes_model(data, cuts, extra, seed, read_sizes):
    """Random chunking, permutation, duplication and overlapping frames, with
    reads interleaved: the bytes read equal the bytes sent."""
    rng = random.Random(seed)
    frames = chunks_of(data, cuts)
    frames += [rng.choice(frames) for _ in range(len(frames) // 2)]  # duplicates
    for start, length in extra:  # overlapping frames with identical content
        start = min(start, len(data))
        frames.append((start, data[start : start + length]))
    rng.shuffle(frames)
    r = RecvBuffer()
    out = bytearray()
    for i, (offset, piece) in enumerate(frames):
        fin = offset + len(piece) == len(data) and rng.random() < 0.5
        assert r.receive_bytes(offset, piece, fin) == 0
        out += r.read_bytes(read_sizes[i % len(read_sizes)])
    assert r.receive_bytes(len(data), b"", True) == 0
    out += r.read_bytes()
    assert bytes(out) == data
    assert r.finished()
    assert r.highest_offset == len(data)


def test_whole_read_hands_over_bytes_that_later_data_does_not_touch():
    """A read of everything held returns the receive area itself (no copy);
    what arrives afterwards goes to a new area, so bytes already returned
    never change."""
    r = RecvBuffer()
    first = bytes(range(256)) * 40  # 10,240 bytes, above the hand-over size
    r.receive_bytes(0, first)
    got = r.read_bytes()
    assert got == first and len(got) == len(first)
    # Later data, at the next offset and out of order, then a whole read again.
    second = bytes(reversed(first))
    r.receive_bytes(len(first) + 5000, second[5000:])
    r.receive_bytes(len(first), second[:5000])
    assert got == first
    again = r.read_bytes()
    assert again == second
    assert got == first
    assert r.read_offset == 2 * len(first)
    # Small reads copy; the buffer keeps working after either kind.
    r.receive_bytes(2 * len(first), b"tail", True)
    assert r.read_bytes(2) == b"ta" and r.read_bytes() == b"il"
    assert r.finished()


def test_partial_and_gapped_reads_copy_and_keep_the_rest():
    r = RecvBuffer()
    data = bytes(range(256)) * 64  # 16 KiB
    r.receive_bytes(0, data[:8000])
    r.receive_bytes(9000, data[9000:])  # a gap at [8000, 9000)
    assert r.read_bytes() == data[:8000]  # not everything held: copied out
    r.receive_bytes(8000, data[8000:9000])
    head = r.read_bytes(3000)
    assert head == data[8000:11000]
    assert r.read_bytes() == data[11000:]


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=30),
    seed=st.integers(0, 2**32),
)
def test_bulk_in_order_reads_match_model(sizes, seed):
    """In-order frames of mixed sizes with whole and partial reads mixed, as
    a bulk receiver sees them: every byte comes out once, in order, and no
    returned bytes object changes afterwards."""
    rng = random.Random(seed)
    data = rng.randbytes(sum(sizes))
    r = RecvBuffer()
    reads, offset = [], 0
    for size in sizes:
        r.receive_bytes(offset, data[offset : offset + size], offset + size == len(data))
        offset += size
        if rng.random() < 0.6:
            chunk = r.read_bytes(-1 if rng.random() < 0.7 else rng.randint(1, 5000))
            reads.append((chunk, bytes(chunk)))
    reads.append((r.read_bytes(), None))
    assert b"".join(chunk for chunk, _ in reads) == data
    assert all(snapshot is None or chunk == snapshot for chunk, snapshot in reads)
    assert r.finished()


# --- RecvBuffer: final size (RFC 9000 §4.5) -----------------------------------


def test_data_past_known_final_size_is_an_error():
    r = RecvBuffer()
    assert r.receive_bytes(0, b"abc", True) == 0
    assert r.receive_bytes(2, b"cd") == FINAL_SIZE_ERROR


def test_fin_changing_known_final_size_is_an_error():
    r = RecvBuffer()
    assert r.receive_bytes(5, b"fghij", True) == 0
    assert r.receive_bytes(0, b"abc", True) == FINAL_SIZE_ERROR
    assert r.receive_bytes(0, b"abcdefghijk", True) == FINAL_SIZE_ERROR
    assert r.receive_bytes(5, b"fghij", True) == 0  # same final size again is fine
    assert r.final_size == 10


def test_fin_below_received_data_is_an_error():
    r = RecvBuffer()
    assert r.receive_bytes(10, b"xyz") == 0
    assert r.receive_bytes(0, b"abc", True) == FINAL_SIZE_ERROR
    assert r.final_size == -1


def test_reset_stream_final_size_checks_and_drops_data():
    r = RecvBuffer()
    r.receive_bytes(0, b"abc")
    r.receive_bytes(10, b"xyz")
    assert r.reset_stream(12) == FINAL_SIZE_ERROR  # below data received
    assert r.reset_stream(20) == 0
    assert r.final_size == 20
    assert r.highest_offset == 20  # the engine charges the connection for it
    assert r.readable_bytes() == 0
    assert r.reset_received
    assert r.reset_stream(21) == FINAL_SIZE_ERROR  # changes a known final size
    assert r.reset_stream(20) == 0
    assert r.receive_bytes(5, b"later") == 0  # within final size: ignored
    assert r.readable_bytes() == 0
    assert r.receive_bytes(18, b"past!") == FINAL_SIZE_ERROR


def test_reset_stream_must_match_fin():
    r = RecvBuffer()
    r.receive_bytes(0, b"abc", True)
    assert r.reset_stream(4) == FINAL_SIZE_ERROR
    assert r.reset_stream(3) == 0


def test_receive_buffer_compacts_consumed_prefix():
    r = RecvBuffer()
    block = bytes(range(256)) * 256  # 64 KiB
    out = bytearray()
    for i in range(64):  # 4 MiB through the buffer, read as it goes, with a hole
        base = i * len(block)
        r.receive_bytes(base + 1000, block[1000:])
        r.receive_bytes(base, block[:1000])
        out += r.read_bytes(len(block) - 7)
    out += r.read_bytes()
    assert bytes(out) == block * 64


# --- SendBuffer ---------------------------------------------------------------


def drain(s, flow_limit=1 << 62, max_length=1200):
    frames = []
    while True:
        frame = s.next_frame_py(flow_limit, max_length)
        if frame is None:
            return frames
        frames.append(frame)


def test_new_data_is_sent_once_with_fin_on_last_frame():
    s = SendBuffer()
    s.write_bytes(b"a" * 2500)
    s.write_eof()
    frames = drain(s)
    assert [(o, len(d), f) for o, d, f in frames] == [(0, 1200, False), (1200, 1200, False), (2400, 100, True)]
    assert s.sent_offset == 2500 and s.fin_sent
    assert not s.pending(1 << 62)
    assert drain(s) == []


def test_bare_fin_after_data_was_sent():
    s = SendBuffer()
    s.write_bytes(b"xyz")
    assert drain(s) == [(0, b"xyz", False)]
    assert not s.pending(100)
    s.write_eof()
    assert s.pending(100)
    assert drain(s) == [(3, b"", True)]
    with pytest.raises(ValueError):
        s.write_bytes(b"more")


def test_empty_stream_fin_only():
    s = SendBuffer()
    s.write_eof()
    assert s.next_frame_py(0, 1200) == (0, b"", True)  # a FIN needs no credit past the data
    s.ack(0, 0, True)
    assert s.is_all_acked()


def test_flow_limit_respected():
    s = SendBuffer()
    s.write_bytes(bytes(5000))
    s.write_eof()
    assert not s.pending(0)
    assert s.next_frame_py(0, 1200) is None
    frames = drain(s, flow_limit=1500)
    assert [(o, len(d), f) for o, d, f in frames] == [(0, 1200, False), (1200, 300, False)]
    assert s.pending(1500) is False
    assert s.pending(1501) is True
    frames = drain(s, flow_limit=5000)
    assert frames[-1][0] + len(frames[-1][1]) == 5000 and frames[-1][2]


def test_lost_ranges_resent_before_new_data():
    s = SendBuffer()
    data = bytes(range(256)) * 20  # 5120 bytes
    s.write_bytes(data)
    first = [s.next_frame_py(1 << 62, 1000) for _ in range(3)]  # [0,3000)
    s.lose(1000, 1000)
    offset, piece, fin = s.next_frame_py(1 << 62, 1200)
    assert (offset, piece) == (1000, data[1000:2000])
    offset, piece, fin = s.next_frame_py(1 << 62, 1200)
    assert offset == 3000  # then new data
    assert first[0][0] == 0


def test_lost_range_split_by_max_length():
    s = SendBuffer()
    s.write_bytes(bytes(range(250)) * 10)
    drain(s, max_length=2500)
    s.lose(0, 2500)
    assert [(o, len(d)) for o, d, _ in drain(s, max_length=1000)] == [(0, 1000), (1000, 1000), (2000, 500)]


def test_partially_acked_lost_range_resends_only_the_gaps():
    s = SendBuffer()
    data = bytes(range(256)) * 16  # 4096
    s.write_bytes(data)
    drain(s, max_length=4096)
    s.ack(1000, 500)  # e.g. acked through a retransmission
    s.ack(3000, 100)
    s.lose(0, 4096)
    assert s.lost_ranges() == [range(0, 1000), range(1500, 3000), range(3100, 4096)]
    frames = drain(s, max_length=4096)
    assert [(o, len(d)) for o, d, _ in frames] == [(0, 1000), (1500, 1500), (3100, 996)]
    assert all(d == data[o : o + len(d)] for o, d, _ in frames)


def test_ack_after_loss_cancels_pending_retransmission():
    s = SendBuffer()
    s.write_bytes(bytes(3000))
    drain(s)
    s.lose(0, 3000)
    s.ack(1200, 1200)  # a late ACK for a frame declared lost (spurious loss)
    assert s.lost_ranges() == [range(0, 1200), range(2400, 3000)]


def test_fin_lost_and_resent():
    s = SendBuffer()
    s.write_bytes(b"abcdef")
    s.write_eof()
    assert drain(s) == [(0, b"abcdef", True)]
    s.ack(0, 3)
    s.lose(0, 6, True)
    # The unacked data goes again, and the FIN with it.
    assert drain(s) == [(3, b"def", True)]
    s.lose(3, 3, True)
    s.ack(3, 3)  # the data made it in another packet, the FIN did not
    assert drain(s) == [(6, b"", True)]
    s.ack(6, 0, True)
    assert s.is_all_acked()


def test_late_ack_for_lost_fin_cancels_its_retransmission():
    s = SendBuffer()
    s.write_bytes(b"ab")
    s.write_eof()
    drain(s)
    s.lose(0, 2, True)
    s.ack(0, 2, True)  # the "lost" frame was only late
    assert drain(s) == []
    assert s.is_all_acked()


def test_acked_fin_not_resent():
    s = SendBuffer()
    s.write_bytes(b"ab")
    s.write_eof()
    drain(s)
    s.ack(0, 2, True)
    s.lose(0, 2, True)
    assert drain(s) == []
    assert s.is_all_acked()


def test_acked_prefix_is_freed():
    s = SendBuffer()
    s.write_bytes(bytes(100_000))
    drain(s, max_length=10_000)
    assert s.buffered_bytes() == 100_000
    s.ack(10_000, 10_000)  # out of order: nothing freed yet
    assert s.acked_offset == 0 and s.buffered_bytes() == 100_000
    s.ack(0, 10_000)
    assert s.acked_offset == 20_000 and s.buffered_bytes() == 80_000
    s.ack(20_000, 80_000)
    assert s.buffered_bytes() == 0
    assert not s.is_all_acked()  # no FIN yet
    s.write_eof()
    assert drain(s) == [(100_000, b"", True)]
    s.ack(100_000, 0, True)
    assert s.is_all_acked()


def test_frames_stop_at_segment_ends_and_segments_are_released_when_acked():
    """Copied bytes fill segments of our own (4 KiB, then 8 KiB, ...). A frame
    never spans two segments (the next frame carries on), retransmissions
    split the same way, and a segment goes once everything in it is acked."""
    s = SendBuffer()
    data = bytes(random.Random(7).randbytes(40_000))
    s.write_bytes(data[:3000])  # a 4 KiB segment
    assert drain(s, max_length=5000) == [(0, data[:3000], False)]
    s.ack(0, 2500)  # [2500, 3000) still held: the segment stays
    assert s.segment_count() == 1
    s.write_bytes(data[3000:6000])  # fills the first segment to 4096, then a second
    frames = drain(s, max_length=5000)
    assert frames == [(3000, data[3000:4096], False), (4096, data[4096:6000], False)]
    s.lose(3000, 3000)
    assert drain(s, max_length=5000) == frames
    s.write_bytes(data[6000:40_000])
    sent = drain(s, max_length=1200)
    assert b"".join(piece for _, piece, _ in sent) == data[6000:40_000]
    s.lose(2500, 37_500)
    resent = drain(s, max_length=1 << 20)
    assert b"".join(piece for _, piece, _ in resent) == data[2500:40_000]
    segments = s.segment_count()
    s.ack(2500, 1596)  # the first segment is now wholly acknowledged
    assert s.segment_count() == segments - 1
    s.ack(4096, 35_904)
    assert s.buffered_bytes() == 0 and s.acked_offset == 40_000 and s.segment_count() == 0


def test_large_bytes_objects_are_sent_by_reference_until_acked():
    s = SendBuffer()
    big = random.Random(3).randbytes(100_000)
    refs = sys.getrefcount(big)
    s.write_bytes_object(b"head")  # small: copied
    s.write_bytes_object(big)  # large: kept by reference
    assert sys.getrefcount(big) == refs + 1
    s.write_bytes_object(b"tail")  # a new segment after the lent one
    assert s.segment_count() == 3
    frames = drain(s, max_length=1 << 20)
    assert frames == [(0, b"head", False), (4, big, False), (100_004, b"tail", False)]
    s.ack(0, 50_004)
    assert sys.getrefcount(big) == refs + 1  # partly acked: still held
    s.lose(50_004, 50_004)
    assert drain(s, max_length=1 << 20) == [(50_004, big[50_000:], False), (100_004, b"tail", False)]
    s.ack(50_004, 50_000)
    assert sys.getrefcount(big) == refs and s.segment_count() == 1
    s.write_bytes_object(big)
    s.reset_stream()
    assert sys.getrefcount(big) == refs and s.segment_count() == 0
    with pytest.raises(ValueError):
        s.write_bytes_object(big)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from("wwossalAA"), st.integers(1, 3000), st.integers(0, 2**16)),
        min_size=1, max_size=150,
    ),
)
def test_send_segments_match_model(ops):
    """Copied and by-reference writes, sends, in- and out-of-order acks and
    losses in any order: each frame carries exactly the model's bytes at its
    offset, and the buffer holds exactly what is written and not yet
    acknowledged in order."""
    s = SendBuffer()
    model = bytearray()
    outstanding = []  # frames sent and neither acked nor lost
    acked = set()
    for op, size, pick in ops:
        if op in "wo":
            if op == "o":
                size *= 20  # up to 60,000: above and below the by-reference size
            piece = bytes((len(model) + i) % 251 for i in range(size))
            s.write_bytes(piece) if op == "w" else s.write_bytes_object(piece)
            model += piece
        elif op == "s":
            frame = s.next_frame_py(1 << 62, size)
            if frame is not None:
                offset, piece, _ = frame
                assert piece == bytes(model[offset : offset + len(piece)])
                outstanding.append((offset, len(piece)))
        elif outstanding:
            offset, length = outstanding.pop(pick % len(outstanding) if op != "A" else 0)
            if op == "l":
                s.lose(offset, length)
            else:
                s.ack(offset, length)
                acked.update(range(offset, offset + length))
        in_order = s.acked_offset
        assert all(i in acked for i in range(in_order)) and in_order not in acked
        assert s.buffered_bytes() == len(model) - in_order
    # Everything still held goes out again and matches.
    for offset, length in outstanding:
        s.lose(offset, length)
    for offset, piece, _ in drain(s, max_length=7000):
        assert piece == bytes(model[offset : offset + len(piece)])


def test_reset_drops_everything():
    s = SendBuffer()
    s.write_bytes(bytes(5000))
    drain(s, flow_limit=2000)
    s.lose(0, 1000)
    s.reset_stream()
    assert s.is_reset
    assert s.buffered_bytes() == 0
    assert not s.pending(1 << 62)
    assert s.next_frame_py(1 << 62, 1200) is None
    with pytest.raises(ValueError):
        s.write_bytes(b"x")


@settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(st.binary(min_size=1, max_size=5000), min_size=1, max_size=12),
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.6),
)
def test_send_receive_roundtrip_under_loss_and_reordering(writes, seed, loss):
    """Frames from a SendBuffer, randomly lost, reordered and acked late, fed
    to a RecvBuffer: the receiver gets exactly the written bytes, the sender
    ends fully acknowledged and holds nothing."""
    rng = random.Random(seed)
    s, r = SendBuffer(), RecvBuffer()
    expected = b"".join(writes)
    pending_writes = list(writes)
    in_flight = []
    flow_limit = 3000
    received = bytearray()
    for _ in range(10_000):
        if pending_writes and rng.random() < 0.5:
            s.write_bytes(pending_writes.pop(0))
            if not pending_writes:
                s.write_eof()
        frame = s.next_frame_py(flow_limit, rng.randint(1, 1500))
        if frame is not None:
            in_flight.append(frame)
        if in_flight and (frame is None or rng.random() < 0.4):
            offset, piece, fin = in_flight.pop(rng.randrange(len(in_flight)))
            if rng.random() < loss:
                s.lose(offset, len(piece), fin)
            else:
                assert r.receive_bytes(offset, piece, fin) == 0
                s.ack(offset, len(piece), fin)
                received += r.read_bytes(rng.randint(1, 4000))
                flow_limit = r.read_offset + 3000  # a receive window of 3000
        if s.is_all_acked():
            break
    received += r.read_bytes()
    assert s.is_all_acked()
    assert bytes(received) == expected
    assert r.finished()
    assert s.buffered_bytes() == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_large_reassembly_with_compaction_matches_model(seed):
    """Hundreds of KiB through one buffer, frames reordered within a sliding
    window and read in odd sizes, so compaction and growth both run."""
    rng = random.Random(seed)
    data = rng.randbytes(300_000)
    frames = chunks_of(data, [rng.randrange(len(data)) for _ in range(400)])
    # Reorder locally: swap each frame with one up to 8 places ahead.
    for i in range(len(frames)):
        j = min(len(frames) - 1, i + rng.randrange(8))
        frames[i], frames[j] = frames[j], frames[i]
    r = RecvBuffer()
    out = bytearray()
    for offset, piece in frames:
        r.receive_bytes(offset, piece, offset + len(piece) == len(data))
        if rng.random() < 0.3:
            r.receive_bytes(offset, piece)  # duplicate
        out += r.read_bytes(rng.randrange(1, 20_000))
    out += r.read_bytes()
    assert bytes(out) == data
    assert r.finished()
