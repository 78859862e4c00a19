"""NewReno (RFC 9002 §7 / App. B), CUBIC (RFC 9438) and the pacer (RFC 9002 §7.7)."""

import math

import pytest

from quicfast.proto.congestion import Cubic, NewReno, Pacer, make_congestion_controller

MS = 1_000_000
S = 1_000_000_000
MDS = 1200


@pytest.mark.parametrize(
    "mds, expected",
    [(1200, 12000), (1500, 14720), (9000, 18000)],  # min(10*mds, max(14720, 2*mds))
)
def test_initial_and_minimum_window(mds, expected):
    for cls in (NewReno, Cubic):
        cc = cls(mds)
        assert cc.congestion_window == expected
        assert cc.minimum_window_bytes == 2 * mds


def test_factory_names_and_error():
    assert make_congestion_controller("cubic", 1200).name == "cubic"
    assert make_congestion_controller("newreno", 1200).name == "newreno"
    assert make_congestion_controller("reno", 1350).max_datagram_size == 1350
    with pytest.raises(ValueError, match="cubic.*newreno"):
        make_congestion_controller("bbr", 1200)


def send_and_ack(cc, n, time_sent, now, srtt=100 * MS):
    for _ in range(n):
        cc.py_on_packet_sent(MDS, time_sent)
    for _ in range(n):
        cc.py_on_packet_acked(MDS, time_sent, now, srtt, srtt)


def test_newreno_slow_start_doubles_per_window():
    cc = NewReno(MDS)
    send_and_ack(cc, 10, 0, 100 * MS)
    assert cc.congestion_window == 24000
    assert cc.bytes_in_flight == 0


def test_newreno_congestion_avoidance_one_datagram_per_window():
    cc = NewReno(MDS)
    cc.congestion_window = cc.ssthresh = 12000
    send_and_ack(cc, 9, 0, 1)
    assert cc.congestion_window == 12000
    send_and_ack(cc, 1, 0, 1)
    assert cc.congestion_window == 13200


def test_newreno_one_reduction_per_recovery_period():
    cc = NewReno(MDS)
    cc.congestion_window = 48000
    cc.py_on_congestion_event(10 * MS, 100 * MS)
    assert cc.congestion_window == cc.ssthresh == 24000
    # Another loss of a packet sent before recovery started: ignored.
    cc.py_on_congestion_event(90 * MS, 150 * MS)
    assert cc.congestion_window == 24000
    assert cc.congestion_events == 1
    # ACKs of packets sent before recovery do not grow the window.
    send_and_ack(cc, 5, 50 * MS, 160 * MS)
    assert cc.congestion_window == 24000
    # A loss of a packet sent after the period began is a new event.
    cc.py_on_congestion_event(101 * MS, 200 * MS)
    assert cc.congestion_window == 12000
    # Never below the minimum window.
    for i in range(10):
        cc.py_on_congestion_event((300 + i * 100) * MS, (301 + i * 100) * MS)
    assert cc.congestion_window == 2 * MDS


def test_app_limited_does_not_grow():
    for cls in (NewReno, Cubic):
        cc = cls(MDS)
        cc.app_limited = True
        send_and_ack(cc, 10, 0, 100 * MS)
        assert cc.congestion_window == 12000


def test_persistent_congestion_collapses_to_minimum():
    for cls in (NewReno, Cubic):
        cc = cls(MDS)
        cc.py_on_congestion_event(0, 1 * MS)
        cc.py_on_persistent_congestion(2 * MS)
        assert cc.congestion_window == 2 * MDS
        # Recovery is over: the next ACK grows the window (slow start to ssthresh).
        send_and_ack(cc, 1, 1 * MS, 3 * MS)
        assert cc.congestion_window == 3 * MDS


def test_lost_and_discarded_only_adjust_flight():
    cc = NewReno(MDS)
    cc.py_on_packet_sent(1000, 0)
    cc.py_on_packet_sent(500, 0)
    assert cc.py_available() == 12000 - 1500
    cc.py_on_packet_lost(1000)
    cc.py_on_packet_discarded(500)
    assert cc.bytes_in_flight == 0 and cc.congestion_window == 12000
    cc.py_on_packet_lost(10)  # saturates, never wraps
    assert cc.bytes_in_flight == 0
    assert cc.py_can_send(12000) and not cc.py_can_send(12001)


def test_reset_keeps_bytes_in_flight():
    cc = Cubic(MDS)
    cc.py_on_packet_sent(5000, 0)
    cc.congestion_window = 99999
    cc.py_reset()
    assert cc.congestion_window == 12000 and cc.bytes_in_flight == 5000


# -- CUBIC -----------------------------------------------------------------

C, BETA = 0.4, 0.7


def cubic_after_loss(w_max_packets=100):
    cc = Cubic(MDS)
    cc.congestion_window = w_max_packets * MDS
    cc.py_on_congestion_event(0, 1 * S)
    return cc


def test_cubic_multiplicative_decrease():
    cc = cubic_after_loss()
    assert cc.w_max == 120000
    assert cc.congestion_window == cc.ssthresh == 84000


def test_cubic_k_and_window_curve_match_rfc_formula():
    cc = cubic_after_loss()
    send_and_ack(cc, 1, 1 * S + 1, 1 * S + 2)  # starts the avoidance epoch
    k = math.pow(120000 * (1 - BETA) / (C * MDS), 1 / 3)  # RFC 9438 eq. 2 (segments)
    assert cc.k == pytest.approx(k)
    for t in (0.0, 1.0, k, 5.0, 8.0):
        expected = (C * (t - k) ** 3 + 100) * MDS  # eq. 1 in segments, scaled
        assert cc.py_w_cubic(t) == pytest.approx(expected)
    assert cc.py_w_cubic(0.0) == pytest.approx(84000)
    assert cc.py_w_cubic(k) == pytest.approx(120000)


def test_cubic_follows_curve_over_time():
    cc = cubic_after_loss()
    srtt = 100 * MS
    now = 1 * S + 1
    epoch = None
    samples = []
    while now < 1 * S + 8 * S:
        cc.py_on_packet_sent(MDS, now)
        cc.py_on_packet_acked(MDS, now, now, srtt, srtt)
        if epoch is None:
            epoch = cc.epoch_start
        t = (now - epoch) / S
        samples.append((t, cc.congestion_window, cc.w_est))
        # One ACK per datagram: a window's worth per RTT.
        now += srtt * MDS // cc.congestion_window
    k = cc.k
    for t, cwnd, w_est in samples:
        # Never above the larger of the target W_cubic(t + RTT) and the
        # Reno-friendly estimate (plus one datagram of slack).
        assert cwnd <= max(cc.py_w_cubic(t + 0.1), w_est, 84000) + MDS
    # The plateau: close to W_max around t = K, well past it later (convex).
    near_k = [cwnd for t, cwnd, _ in samples if abs(t - k) < 0.05]
    assert near_k and all(abs(c - 120000) < 0.05 * 120000 for c in near_k)
    t_end, cwnd_end, _ = samples[-1]
    assert cwnd_end > 1.15 * 120000
    assert cwnd_end == pytest.approx(cc.py_w_cubic(t_end), rel=0.05)


def test_cubic_reno_friendly_region():
    # All ACKs at t = 0: W_cubic(0) = cwnd_epoch, so W_est (Reno) leads.
    cc = cubic_after_loss()
    now = 1 * S + 1
    alpha = 3 * (1 - BETA) / (1 + BETA)
    windows = 10
    for _ in range(windows):
        n = cc.congestion_window // MDS
        send_and_ack(cc, n, now, now)
    assert cc.w_est == pytest.approx(cc.congestion_window, abs=1)
    expected = 84000 + windows * alpha * MDS
    assert cc.congestion_window == pytest.approx(expected, rel=0.02)


def test_cubic_fast_convergence():
    cc = cubic_after_loss()
    cc.py_on_congestion_event(2 * S, 3 * S)  # loss before reaching W_max
    assert cc.w_max == pytest.approx(84000 * (1 + BETA) / 2)
    assert cc.congestion_window == int(84000 * BETA)
    cc2 = cubic_after_loss()
    cc2.fast_convergence = False
    cc2.py_on_congestion_event(2 * S, 3 * S)
    assert cc2.w_max == 84000


def test_cubic_slow_start_exit_without_loss_sets_plateau_here():
    cc = Cubic(MDS)
    cc.ssthresh = 12000
    send_and_ack(cc, 10, 0, 1)
    assert cc.k == 0.0 and cc.w_max >= 12000


# -- pacer -------------------------------------------------------------------

def test_pacer_burst_then_spacing():
    p = Pacer(MDS, 10)
    p.py_update(120000, 100 * MS, MDS)  # 1.25 * 120000 B / 100 ms = 1.5 B/us
    now = 0
    for _ in range(10):
        assert p.py_next_send_time(MDS, now) == now
        p.py_on_packet_sent(MDS, now)
    interval = MDS / (1.25 * 120000 / (100 * MS))  # 800 us
    t = p.py_next_send_time(MDS, now)
    assert t == pytest.approx(interval, abs=2)
    now = t
    for _ in range(5):
        assert p.py_next_send_time(MDS, now) == now
        p.py_on_packet_sent(MDS, now)
        nxt = p.py_next_send_time(MDS, now)
        assert nxt - now == pytest.approx(interval, abs=2)
        now = nxt


def test_pacer_refill_capped_at_burst_and_configurable():
    p = Pacer(MDS, 64)
    p.py_update(120000, 100 * MS, MDS)
    assert p.capacity == 64 * MDS
    for _ in range(64):
        p.py_on_packet_sent(MDS, 0)
    assert p.py_next_send_time(MDS, 0) > 0
    # Long idle: bucket refills to capacity, not beyond.
    assert p.py_next_send_time(MDS, 10 * S) == 10 * S
    assert p.tokens == 64 * MDS


def test_pacer_mtu_change_updates_capacity():
    p = Pacer(1200, 10)
    p.py_update(120000, 100 * MS, 1500)
    assert p.capacity == 15000
