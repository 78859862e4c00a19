"""Flow-control windows (RFC 9000 §4) with auto-tuning; time is simulated."""

from hypothesis import given, strategies as st

from quicfast.proto.flow_control import ReceiveWindow, SendWindow

FLOW_CONTROL_ERROR = 0x03
MS = 1_000_000  # nanoseconds
RTT = 50 * MS


# --- ReceiveWindow ------------------------------------------------------------


def test_initial_limit_and_overrun_is_flow_control_error():
    w = ReceiveWindow(1000, 8000)
    assert w.max_allowed == 1000
    assert w.data_received(1000) == 0
    assert w.highest_received == 1000
    assert w.data_received(1001) == FLOW_CONTROL_ERROR
    assert w.highest_received == 1000
    assert w.data_received(500) == 0  # retransmitted lower data is fine
    assert w.highest_received == 1000


def test_update_due_once_half_the_window_is_consumed():
    w = ReceiveWindow(1000)
    w.data_received(1000)
    w.consume(499, 0, RTT)
    assert not w.is_update_due()
    w.consume(1, 0, RTT)  # remaining credit 500 = window / 2
    assert w.is_update_due()
    assert w.take_limit() == 1500
    assert w.max_allowed == 1500
    assert not w.is_update_due()
    assert w.data_received(1500) == 0
    assert w.data_received(1501) == FLOW_CONTROL_ERROR


def test_limit_never_shrinks():
    w = ReceiveWindow(1000)
    w.consume(600, 0, RTT)
    assert w.take_limit() == 1600
    assert w.take_limit() == 1600


def test_window_grows_when_consumption_is_fast_relative_to_rtt():
    w = ReceiveWindow(1000, 16000)
    now = 0
    w.consume(100, now, RTT)  # epoch starts
    now += RTT // 2
    w.consume(400, now, RTT)  # half a window in 0.5 RTT: the window limits us
    assert w.is_update_due()
    assert w.window == 2000
    assert w.take_limit() == 500 + 2000


def test_window_stays_when_consumption_is_slow():
    w = ReceiveWindow(1000, 16000)
    now = 0
    w.consume(100, now, RTT)
    now += 3 * RTT  # half a window took 3 RTTs: the reader is the bottleneck
    w.consume(400, now, RTT)
    assert w.is_update_due()
    assert w.window == 1000
    assert w.take_limit() == 1500


def test_no_growth_without_an_rtt_sample():
    w = ReceiveWindow(1000, 16000)
    w.consume(500, 0, 0)
    assert w.window == 1000


def test_window_never_exceeds_maximum():
    w = ReceiveWindow(1000, 5000)
    now = 0
    for _ in range(50):
        w.data_received(w.max_allowed)
        while not w.is_update_due():
            w.consume(100, now, RTT)
            now += MS
        w.take_limit()
        assert w.window <= 5000
    assert w.window == 5000
    assert w.max_allowed - w.consumed <= 5000


@given(
    steps=st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 10 * RTT)), max_size=200),
    initial=st.integers(1, 5000),
    factor=st.integers(1, 64),
)
def test_window_bounds_property(steps, initial, factor):
    maximum = initial * factor
    w = ReceiveWindow(initial, maximum)
    now = 0
    for nbytes, dt in steps:
        nbytes = min(nbytes, w.max_allowed - w.consumed)
        assert w.data_received(w.consumed + nbytes) == 0
        now += dt
        w.consume(nbytes, now, RTT)
        if w.is_update_due():
            before = w.max_allowed
            assert w.take_limit() >= before
        assert initial <= w.window <= maximum
        assert w.max_allowed <= w.consumed + w.window
        assert w.max_allowed >= w.consumed


def test_grow_to_follows_stream_window_capped_by_maximum():
    conn = ReceiveWindow(1500, 6000)
    conn.grow(3000)
    assert conn.window == 3000
    conn.grow(2000)  # never shrinks
    assert conn.window == 3000
    conn.grow(1 << 40)
    assert conn.window == 6000


# --- SendWindow ---------------------------------------------------------------


def test_send_window_only_increases():
    w = SendWindow(1000)
    assert w.available_bytes() == 1000
    w.sent(400)
    assert w.available_bytes() == 600
    assert w.update_limit(900) is False
    assert w.limit == 1000
    assert w.update_limit(2000) is True
    assert w.available_bytes() == 1600


def test_blocked_frame_once_per_limit():
    w = SendWindow(1000)
    assert not w.is_blocked_frame_due()
    w.sent(1000)
    assert w.available_bytes() == 0
    assert w.is_blocked_frame_due()
    assert not w.is_blocked_frame_due()  # already reported for this limit
    w.update_limit(1000)
    assert not w.is_blocked_frame_due()
    w.update_limit(1500)
    assert not w.is_blocked_frame_due()  # not blocked any more
    w.sent(500)
    assert w.is_blocked_frame_due()  # blocked again, at a new limit
    assert not w.is_blocked_frame_due()


def test_lost_blocked_frame_rearms_only_for_current_limit():
    w = SendWindow(100)
    w.sent(100)
    assert w.is_blocked_frame_due()
    w.blocked_lost(100)
    assert w.is_blocked_frame_due()
    w.update_limit(200)
    w.sent(100)
    assert w.is_blocked_frame_due()
    w.blocked_lost(100)  # stale: the limit moved on
    assert not w.is_blocked_frame_due()
