"""ClosedConnection: when the record of a closed connection answers a
datagram with its close datagram (RFC 9000 §10.2.1: with backoff and within
three times the bytes received; never while draining, §10.2.2)."""

from quicfast.closed_conn import ClosedConnection

CLOSE = b"\x40" + b"c" * 39      # a 40-byte close datagram


def test_closing_answers_the_1st_2nd_4th_8th_datagram():
    record = ClosedConnection([b"cid1"], CLOSE, ("127.0.0.1", 4433))
    answered = [n for n in range(1, 20) if record.answer(1200) is not None]
    assert answered == [1, 2, 4, 8, 16]
    assert (record.received, record.sent) == (19, 5)


def test_the_answer_is_the_close_datagram_itself():
    record = ClosedConnection([b"cid1"], CLOSE, ("127.0.0.1", 4433))
    assert record.answer(1200) is CLOSE


def test_no_answer_larger_than_three_times_the_datagram_received():
    record = ClosedConnection([b"cid1"], CLOSE, ("127.0.0.1", 4433))
    assert record.answer(13) is None            # 40 > 3 * 13
    assert record.answer(14) == CLOSE           # 40 <= 3 * 14 (2nd datagram)
    assert record.sent == 1


def test_draining_never_answers():
    record = ClosedConnection([b"cid1", b"cid2"], None, ("127.0.0.1", 4433))
    assert all(record.answer(1200) is None for _ in range(10))
    assert (record.received, record.sent) == (10, 0)
