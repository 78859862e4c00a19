"""RFC 9002 loss recovery: RTT (§5), loss detection and PTO (§6), congestion signals (§7)."""

from hypothesis import given, settings, strategies as st

from quicfast.proto.recovery import (
    APPLICATION,
    FRAME_KINDS,
    HANDSHAKE,
    INITIAL,
    NO_TIMER,
    PACKET_STATES,
    LossRecovery,
    RecordingFrameHandler,
    RttEstimator,
)

MS = 1_000_000
STREAM = FRAME_KINDS["stream"]
ACKED, LOST, OUT = PACKET_STATES["acked"], PACKET_STATES["lost"], PACKET_STATES["outstanding"]


def stream_frame(pn):
    return [(STREAM, 4, pn * 1000, 1000, 0)]


def confirmed(**kw):
    r = LossRecovery(**kw)
    r.handshake_confirmed = True
    return r


# -- RTT estimation, RFC 9002 §5 -----------------------------------------------

def test_rtt_initial_values():
    rtt = RttEstimator()
    assert rtt.smoothed_rtt == 333 * MS and rtt.rttvar == 333 * MS // 2
    assert not rtt.has_sample
    # PTO before any sample: 333 + 4 * 166.5 ms = 999 ms.
    assert rtt.pto_base_duration == 999 * MS


def test_rtt_first_sample():
    rtt = RttEstimator()
    rtt.py_update(100 * MS, 40 * MS)  # ack_delay ignored for the first sample
    assert (rtt.min_rtt, rtt.smoothed_rtt, rtt.rttvar) == (100 * MS, 100 * MS, 50 * MS)


def test_rtt_subsequent_sample_with_ack_delay():
    rtt = RttEstimator()
    rtt.py_update(100 * MS)
    rtt.py_update(200 * MS, 50 * MS)  # adjusted = 150 ms
    assert rtt.rttvar == (3 * 50 * MS + 50 * MS) // 4
    assert rtt.smoothed_rtt == (7 * 100 * MS + 150 * MS) // 8
    assert rtt.latest_rtt == 200 * MS and rtt.min_rtt == 100 * MS


def test_rtt_ack_delay_capped_after_handshake_confirmed():
    rtt = RttEstimator()
    rtt.py_update(100 * MS)
    rtt.py_update(200 * MS, 50 * MS, True, 25 * MS)  # adjusted = 175 ms
    assert rtt.smoothed_rtt == (7 * 100 * MS + 175 * MS) // 8
    assert rtt.rttvar == (3 * 50 * MS + 75 * MS) // 4


def test_rtt_ack_delay_not_subtracted_below_min_rtt():
    rtt = RttEstimator()
    rtt.py_update(100 * MS)
    rtt.py_update(120 * MS, 50 * MS)  # 120 < 100 + 50: use 120
    assert rtt.smoothed_rtt == (7 * 100 * MS + 120 * MS) // 8
    rtt.py_update(80 * MS)
    assert rtt.min_rtt == 80 * MS


def test_rtt_sample_only_from_newly_acked_largest():
    r = confirmed()
    r.send(APPLICATION, 0, 0)
    r.send(APPLICATION, 1, 10 * MS, ack_eliciting=False, in_flight=False)
    assert r.ack(APPLICATION, [(0, 1)], 50 * MS) == 0
    assert r.rtt.latest_rtt == 50 * MS
    # Largest acked (1) is not ack-eliciting and nothing else new: no sample.
    assert r.ack(APPLICATION, [(0, 2)], 90 * MS) == 0
    assert r.rtt.latest_rtt == 50 * MS and r.rtt.first_sample_time == 50 * MS


def test_ack_delay_ignored_in_initial_space():
    r = LossRecovery()
    r.send(INITIAL, 0, 0)
    r.send(INITIAL, 1, 0)
    r.ack(INITIAL, [(0, 1)], 100 * MS)
    r.ack(INITIAL, [(1, 2)], 200 * MS, ack_delay=100 * MS)
    assert r.rtt.smoothed_rtt == (7 * 100 * MS + 200 * MS) // 8


# -- loss detection, RFC 9002 §6.1 ---------------------------------------------

def test_packet_threshold_loss():
    r = confirmed(congestion="newreno")
    h = RecordingFrameHandler()
    for pn in range(5):
        r.send(APPLICATION, pn, 0, frames=stream_frame(pn))
    assert r.ack(APPLICATION, [(3, 4)], 10 * MS, handler=h) == 0
    assert [x[1] for x in h.lost] == [0]  # 3 >= 0 + kPacketThreshold
    assert [x[1] for x in h.acked] == [3]
    assert r.packet_state(APPLICATION, 1) == OUT and r.packet_state(APPLICATION, 2) == OUT
    assert r.packets_lost == 1 and r.bytes_in_flight == 3 * 1200
    assert r.cc.congestion_events == 1


def test_time_threshold_loss_via_timer():
    r = confirmed()
    h = RecordingFrameHandler()
    r.send(APPLICATION, 0, 0, frames=stream_frame(0))
    r.send(APPLICATION, 1, 5 * MS, frames=stream_frame(1))
    r.ack(APPLICATION, [(1, 2)], 100 * MS, handler=h)  # latest_rtt = 95 ms
    delay = 95 * MS * 9 // 8  # kTimeThreshold * max(srtt, latest_rtt)
    assert r.get_loss_time(APPLICATION) == delay
    assert r.loss_detection_timer(100 * MS) == delay
    assert r.timeout(delay, h) == -1 and r.probes_to_send == 0
    assert [x[1] for x in h.lost] == [0]
    assert r.bytes_in_flight == 0
    assert r.loss_detection_timer(delay) == NO_TIMER


def test_time_threshold_loss_on_ack():
    r = confirmed()
    h = RecordingFrameHandler()
    r.send(APPLICATION, 0, 0)
    r.send(APPLICATION, 1, 0, frames=stream_frame(1))
    r.send(APPLICATION, 2, 200 * MS)
    r.ack(APPLICATION, [(0, 1)], 10 * MS, handler=h)  # srtt 10 ms
    r.ack(APPLICATION, [(2, 3)], 220 * MS, handler=h)
    assert [x[1] for x in h.lost] == [1]  # sent 220 ms ago > 9/8 * 20 ms


# -- PTO, RFC 9002 §6.2 ------------------------------------------------------------

def test_pto_timer_and_exponential_backoff():
    r = confirmed()
    r.send(APPLICATION, 0, 0)
    pto = 999 * MS + 25 * MS  # srtt + 4 rttvar + max_ack_delay
    assert r.py_pto_duration(APPLICATION) == pto
    assert r.py_pto_duration(HANDSHAKE) == 999 * MS
    assert r.loss_detection_timer(0) == pto
    assert r.timeout(pto) == APPLICATION and r.probes_to_send == 2 and r.pto_count == 1
    assert r.loss_detection_timer(pto) == 2 * pto
    assert r.timeout(2 * pto) == APPLICATION and r.pto_count == 2
    assert r.loss_detection_timer(2 * pto) == 4 * pto
    # An ACK resets the backoff.
    r.send(APPLICATION, 1, 4 * pto)
    r.ack(APPLICATION, [(1, 2)], 4 * pto + 50 * MS)
    assert r.pto_count == 0


def test_pto_after_rtt_sample():
    r = confirmed()
    r.send(APPLICATION, 0, 0)
    r.ack(APPLICATION, [(0, 1)], 100 * MS)
    r.send(APPLICATION, 1, 200 * MS)
    # srtt 100, rttvar 50: 100 + 200 + 25 ms after the last ack-eliciting packet
    assert r.loss_detection_timer(200 * MS) == 200 * MS + 325 * MS


def test_no_application_pto_before_handshake_confirmed():
    r = LossRecovery()
    r.send(APPLICATION, 0, 0)
    assert r.loss_detection_timer(0) == NO_TIMER
    r.send(HANDSHAKE, 0, 10 * MS)
    assert r.loss_detection_timer(10 * MS) == 10 * MS + 999 * MS
    assert r.timeout(1009 * MS) == HANDSHAKE


def test_earliest_space_wins():
    r = LossRecovery()
    r.send(INITIAL, 0, 0)
    r.send(HANDSHAKE, 0, 5 * MS)
    assert r.loss_detection_timer(5 * MS) == 999 * MS
    assert r.timeout(999 * MS) == INITIAL


def test_client_anti_deadlock_pto():
    r = LossRecovery(is_client=True)
    r.send(INITIAL, 0, 0)
    r.ack(INITIAL, [(0, 1)], 100 * MS)  # nothing in flight, address not validated
    assert r.loss_detection_timer(100 * MS) == 100 * MS + 300 * MS
    assert r.timeout(400 * MS) == INITIAL and r.probes_to_send == 1
    assert r.loss_detection_timer(400 * MS, has_handshake_keys=True) == 400 * MS + 600 * MS
    assert r.timeout(1000 * MS) == HANDSHAKE and r.pto_count == 2
    # pto_count is not reset by Initial ACKs while unvalidated...
    r.send(INITIAL, 1, 1000 * MS)
    r.ack(INITIAL, [(1, 2)], 1100 * MS)
    assert r.pto_count == 2
    # ...but a Handshake ACK validates the address.
    r.send(HANDSHAKE, 0, 1100 * MS)
    r.ack(HANDSHAKE, [(0, 1)], 1200 * MS)
    assert r.peer_completed_address_validation and r.pto_count == 0
    assert r.loss_detection_timer(1200 * MS) == NO_TIMER


def test_server_amplification_limited_has_no_pto():
    r = LossRecovery()
    r.send(INITIAL, 0, 0)
    assert r.loss_detection_timer(0, amplification_limited=True) == NO_TIMER
    assert r.loss_detection_timer(0) == 999 * MS


def test_server_with_nothing_in_flight_has_no_timer():
    r = LossRecovery()
    assert r.loss_detection_timer(0) == NO_TIMER
    assert r.timeout(0) == -1


# -- validation -------------------------------------------------------------------------

def test_ack_of_unsent_pn_returns_1_without_state_change():
    r = confirmed()
    h = RecordingFrameHandler()
    for pn in range(5):
        r.send(APPLICATION, pn, 0, frames=stream_frame(pn))
    assert r.ack(APPLICATION, [(0, 6)], 10 * MS, handler=h) == 1
    assert r.ack(APPLICATION, [(7, 8), (0, 2)], 10 * MS, handler=h) == 1
    assert r.ack(HANDSHAKE, [(0, 1)], 10 * MS, handler=h) == 1
    assert h.acked == [] and h.lost == []
    assert r.bytes_in_flight == 5 * 1200 and not r.rtt.has_sample
    assert all(r.packet_state(APPLICATION, pn) == OUT for pn in range(5))
    # Largest acked was not moved to 5: acking 1 loses nothing.
    assert r.ack(APPLICATION, [(1, 2)], 10 * MS, handler=h) == 0
    assert h.lost == []


def test_ack_of_skipped_pn_is_a_violation():
    r = confirmed()
    for pn in (0, 1, 3):
        r.send(APPLICATION, pn, 0)
    assert r.ack(APPLICATION, [(0, 4)], 10 * MS) == 1
    assert r.ack(APPLICATION, [(3, 4), (0, 2)], 10 * MS) == 0
    assert r.bytes_in_flight == 0


def test_prepared_but_not_sent_pn_is_not_ackable():
    r = confirmed()
    r.send(APPLICATION, 0, 0)
    r.send(APPLICATION, 2, 0)  # 1 skipped
    assert r.ack(APPLICATION, [(1, 2)], MS) == 1
    r.not_sent(APPLICATION, 2)  # not pending any more: no effect
    assert r.ack(APPLICATION, [(2, 3)], MS) == 0


# -- callbacks ---------------------------------------------------------------------------

def test_each_frame_reported_once_and_spurious_loss_ignored():
    r = confirmed()
    h = RecordingFrameHandler()
    r.send(APPLICATION, 0, 0, frames=stream_frame(0) + [(FRAME_KINDS["max_data"], 0, 5000, 0, 0)], largest_acked_sent=7)
    for pn in range(1, 5):
        r.send(APPLICATION, pn, 0, frames=stream_frame(pn))
    r.ack(APPLICATION, [(3, 5)], 10 * MS, handler=h)
    assert sorted(x[1] for x in h.lost) == [0, 0, 1]
    assert [x[2] for x in h.lost if x[1] == 0] == [STREAM, FRAME_KINDS["max_data"]]
    # Late ACK of the declared-lost packets 0 and 1: no on_frame_acked. (Their
    # records are already forgotten, so not even counted as spurious.)
    r.ack(APPLICATION, [(0, 5)], 20 * MS, handler=h)
    assert sorted(x[1] for x in h.acked) == [2, 3, 4]
    # Duplicate ACK: nothing more.
    r.ack(APPLICATION, [(0, 5)], 30 * MS, handler=h)
    assert len(h.acked) == 3 and len(h.lost) == 3


def test_late_ack_after_time_threshold_loss_does_not_ack_frames():
    r = confirmed()
    h = RecordingFrameHandler()
    r.send(APPLICATION, 0, 0)  # stays outstanding, keeps the log from trimming
    r.send(APPLICATION, 1, 50 * MS, frames=stream_frame(1), largest_acked_sent=3)
    r.send(APPLICATION, 2, 60 * MS)
    r.ack(APPLICATION, [(0, 1)], 70 * MS, handler=h)  # srtt 70 ms
    r.send(APPLICATION, 3, 300 * MS)
    r.ack(APPLICATION, [(3, 4)], 310 * MS, handler=h)  # 1 and 2 lost by time
    assert [x[1] for x in h.lost] == [1]
    r.ack(APPLICATION, [(1, 2)], 320 * MS, handler=h)
    assert h.acked == []


def test_ack_of_ack_called_per_newly_acked_packet():
    r = confirmed()
    h = RecordingFrameHandler()
    r.send(APPLICATION, 0, 0, largest_acked_sent=10)
    r.send(APPLICATION, 1, 0)
    r.send(APPLICATION, 2, 0, ack_eliciting=False, in_flight=False, largest_acked_sent=12)
    r.ack(APPLICATION, [(0, 3)], MS, handler=h)
    r.ack(APPLICATION, [(0, 3)], MS, handler=h)
    assert sorted(h.acks_of_acks) == [(APPLICATION, 10), (APPLICATION, 12)]


# -- congestion signals ---------------------------------------------------------------

def test_persistent_congestion_collapses_cwnd():
    r = confirmed(congestion="newreno")
    r.send(APPLICATION, 0, 0)
    r.ack(APPLICATION, [(0, 1)], 100 * MS)  # srtt 100, rttvar 50
    # Persistent congestion duration: (100 + 200 + 25) * 3 = 975 ms.
    for i, pn in enumerate(range(1, 11)):
        r.send(APPLICATION, pn, 200 * MS + i * 200 * MS)
    r.send(APPLICATION, 11, 3000 * MS)
    r.ack(APPLICATION, [(11, 12)], 3100 * MS)
    assert r.persistent_congestion_events == 1
    assert r.cc.congestion_window == 2 * 1200
    assert r.bytes_in_flight == 0


def test_short_loss_burst_is_not_persistent():
    r = confirmed(congestion="newreno")
    r.send(APPLICATION, 0, 0)
    r.ack(APPLICATION, [(0, 1)], 100 * MS)
    for pn in range(1, 5):
        r.send(APPLICATION, pn, 200 * MS + pn * MS)
    r.send(APPLICATION, 5, 300 * MS)
    r.ack(APPLICATION, [(5, 6)], 400 * MS)
    assert r.persistent_congestion_events == 0
    assert r.cc.congestion_window == 7200  # (12000 + 2 acked datagrams) / 2


def test_acked_packet_in_between_prevents_persistent_congestion():
    r = confirmed(congestion="newreno")
    r.send(APPLICATION, 0, 0)
    r.ack(APPLICATION, [(0, 1)], 100 * MS)
    for i, pn in enumerate(range(1, 11)):
        r.send(APPLICATION, pn, 200 * MS + i * 200 * MS)
    r.send(APPLICATION, 11, 3000 * MS)
    # pn 5 (sent at 1000 ms) acknowledged: runs 1..4 (600 ms) and 6..10 (800 ms) are short.
    r.ack(APPLICATION, [(11, 12), (5, 6)], 3100 * MS)
    assert r.persistent_congestion_events == 0


def test_mtu_probe_loss_is_not_congestion():
    r = confirmed(congestion="newreno")
    r.send(APPLICATION, 0, 0, size=1500, is_mtu_probe=True)
    for pn in range(1, 4):
        r.send(APPLICATION, pn, 0)
    r.ack(APPLICATION, [(1, 4)], 10 * MS)
    assert r.packet_state(APPLICATION, 0) in (LOST, None)
    assert r.cc.congestion_events == 0 and r.bytes_in_flight == 0


def test_ecn_ce_is_a_congestion_event():
    r = confirmed(congestion="newreno")
    r.send(APPLICATION, 0, 10 * MS)
    r.ecn_ce(APPLICATION, 10 * MS, 50 * MS)
    assert r.cc.congestion_window == 6000
    r.ecn_ce(APPLICATION, 10 * MS, 60 * MS)  # same recovery period
    assert r.cc.congestion_window == 6000


# -- discard, path change ---------------------------------------------------------------

def test_discard_space_removes_bytes_in_flight():
    r = LossRecovery()
    h = RecordingFrameHandler()
    for pn in range(3):
        r.send(INITIAL, pn, 0, frames=[(FRAME_KINDS["crypto"], 0, pn * 100, 100, 0)])
    r.send(HANDSHAKE, 0, 0, size=500)
    r.pto_count = 3
    r.discard(INITIAL, 5 * MS)
    assert r.bytes_in_flight == 500 and r.cc.bytes_in_flight == 500
    assert r.space_bytes_in_flight(INITIAL) == 0
    assert not r.py_ack_eliciting_in_flight(INITIAL)
    assert r.pto_count == 0 and r.cc.congestion_window == 12000
    assert r.ack(INITIAL, [(0, 3)], 10 * MS, handler=h) == 0  # ignored
    assert h.acked == [] and h.lost == []
    assert r.loss_detection_timer(5 * MS) == 999 * MS  # Handshake packet only


def test_path_change_resets_rtt_and_cc():
    r = confirmed()
    r.send(APPLICATION, 0, 0)
    r.send(APPLICATION, 1, 0)
    r.ack(APPLICATION, [(0, 1)], 10 * MS)
    r.cc.congestion_window = 50000
    r.path_change()
    assert not r.rtt.has_sample and r.rtt.smoothed_rtt == 333 * MS
    assert r.cc.congestion_window == 12000 and r.cc.bytes_in_flight == 1200


# -- invariants ---------------------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 2), st.integers(1, 1500), st.booleans(), st.booleans()),
        st.tuples(st.just("ack"), st.integers(0, 2), st.lists(st.tuples(st.integers(0, 40), st.integers(1, 8)), min_size=1, max_size=4)),
        st.tuples(st.just("timeout")),
        st.tuples(st.just("discard"), st.integers(0, 1)),
        st.tuples(st.just("skip"), st.integers(0, 2)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.sampled_from(["cubic", "newreno"]))
def test_random_sequences_keep_bytes_in_flight_consistent(sequence, congestion):
    r = confirmed(congestion=congestion)
    h = RecordingFrameHandler()
    now = 0
    next_pn = [0, 0, 0]
    sent = {}  # (space, pn) -> (size, in_flight)
    discarded = set()
    for op in sequence:
        now += 7 * MS
        if op[0] == "send":
            _, space, size, eliciting, in_flight = op
            if space in discarded:
                continue
            in_flight = in_flight or eliciting
            pn = next_pn[space]
            next_pn[space] += 1
            r.send(space, pn, now, size=size, ack_eliciting=eliciting, in_flight=in_flight, frames=stream_frame(pn))
            sent[(space, pn)] = (size if in_flight else 0)
        elif op[0] == "skip":
            next_pn[op[1]] += 1
        elif op[0] == "ack":
            _, space, pairs = op
            ranges, top = [], None
            for gap_start, length in sorted(pairs, reverse=True):
                end = gap_start + length
                if top is not None and end >= top:
                    continue
                ranges.append((gap_start, end))
                top = gap_start
            before = (r.bytes_in_flight, len(h.acked), len(h.lost))
            res = r.ack(space, ranges, now, handler=h)
            if res == 1:
                assert (r.bytes_in_flight, len(h.acked), len(h.lost)) == before
        elif op[0] == "timeout":
            t = r.loss_detection_timer(now)
            if t != NO_TIMER:
                now = max(now, t)
                r.timeout(now, h)
        else:
            r.discard(op[1], now)
            discarded.add(op[1])
        # Oracle: bytes in flight = sizes of packets neither acked, lost nor discarded.
        settled = {(x[0], x[1]) for x in h.acked} | {(x[0], x[1]) for x in h.lost}
        expected = sum(
            size for (space, pn), size in sent.items()
            if space not in discarded and (space, pn) not in settled
        )
        assert r.bytes_in_flight == expected
        assert r.cc.bytes_in_flight == expected
        assert sum(r.space_bytes_in_flight(s) for s in range(3)) == expected
    # Every frame settled at most once, and never both ways.
    acked = [(x[0], x[1]) for x in h.acked]
    lost = [(x[0], x[1]) for x in h.lost]
    assert len(acked) == len(set(acked)) and len(lost) == len(set(lost))
    assert not set(acked) & set(lost)
