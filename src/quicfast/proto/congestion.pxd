# Congestion control and pacing for the engine: a byte-counting base class,
# NewReno (RFC 9002 §7 + Appendix B), CUBIC (RFC 9438) and a token-bucket
# Pacer (RFC 9002 §7.7).
#
# The controllers never read a clock and know nothing of packet records:
# LossRecovery (recovery.pyx) feeds them sizes and integer-nanosecond
# timestamps. Time values are int64_t nanoseconds, sizes are bytes.

from libc.stdint cimport uint64_t, int64_t

# The "no recovery period" sentinel: every time_sent is after it.
cdef extern from *:
    """
    #define QF_TIME_NEVER INT64_MIN
    """
    int64_t TIME_NEVER "QF_TIME_NEVER"


cdef class CongestionController:
    # congestion_window is the number of bytes that may be in flight.
    # ssthresh is the slow start threshold (UINT64_MAX until the first loss).
    # bytes_in_flight is the sum of the sizes of in-flight packets neither
    #   acknowledged, declared lost nor discarded (never negative: saturates).
    # max_datagram_size is the current path MTU for QUIC payloads; setting it
    #   changes the minimum window at once, the initial window on reset().
    cdef public uint64_t congestion_window, ssthresh, bytes_in_flight, max_datagram_size
    # app_limited is set by the engine when it had less to send than the
    # window allowed; while set the window does not grow (RFC 9002 §7.8).
    cdef public bint app_limited
    # recovery_start_time is when the current recovery period began
    # (TIME_NEVER outside recovery); packets sent at or before it neither
    # grow the window nor cause another reduction (RFC 9002 §7.3.2).
    cdef public int64_t recovery_start_time
    # congestion_events counts window reductions (stats, tests).
    cdef public uint64_t congestion_events

    cdef uint64_t minimum_window(self) noexcept
    cdef uint64_t initial_window(self) noexcept
    cdef bint in_recovery(self, int64_t time_sent) noexcept
    cdef void _remove_from_flight(self, uint64_t size) noexcept

    cdef void on_packet_sent(self, uint64_t size, int64_t now) noexcept
    cdef void on_packet_acked(self, uint64_t size, int64_t time_sent, int64_t now, int64_t smoothed_rtt, int64_t min_rtt) noexcept
    cdef void on_congestion_event(self, int64_t time_sent, int64_t now) noexcept
    cdef void on_persistent_congestion(self, int64_t now) noexcept
    cdef void on_packet_discarded(self, uint64_t size) noexcept
    cdef void on_packet_lost(self, uint64_t size) noexcept
    cdef bint can_send(self, uint64_t size) noexcept
    cdef uint64_t available(self) noexcept
    cdef void reset(self) noexcept


cdef class NewReno(CongestionController):
    # bytes_acked counts bytes acknowledged in congestion avoidance since the
    # window last grew by one datagram (RFC 9002 §7.3.3 byte counting).
    cdef public uint64_t bytes_acked


cdef class Cubic(CongestionController):
    # w_max is the window (bytes) just before the last reduction (W_max).
    # w_est is the Reno-friendly estimate (W_est), bytes.
    # k is the time (s) the cubic curve takes to climb back to w_max (K).
    # cwnd_epoch is the window when the current congestion avoidance stage began.
    cdef public double w_max, w_est, k, cwnd_epoch
    # epoch_start is when the current congestion avoidance stage began
    # (TIME_NEVER until the first ACK after slow start or recovery).
    cdef public int64_t epoch_start
    # increment_fraction holds sub-byte window growth until it adds up.
    cdef double increment_fraction
    # fast_convergence enables RFC 9438 §4.7 (on by default).
    cdef public bint fast_convergence

    cdef double w_cubic(self, double t) noexcept


cdef class Pacer:
    # burst_packets is the bucket depth in datagrams (default 10; raise it
    #   to the GSO batch size, e.g. 64, to let one batch leave at once).
    # capacity is the bucket depth in bytes (burst_packets * max_datagram_size).
    # max_datagram_size is the size used to derive capacity.
    cdef public uint64_t burst_packets, capacity, max_datagram_size
    # tokens is the number of bytes that may leave now; negative when the
    # engine sent ahead of the schedule (that debt is paid back first).
    cdef public double tokens
    # rate is the refill rate in bytes per nanosecond: 1.25 * cwnd / srtt.
    cdef public double rate
    # last_refill is the time tokens were last topped up (TIME_NEVER: never).
    cdef public int64_t last_refill

    cdef void _refill(self, int64_t now) noexcept
    cdef int64_t next_send_time(self, uint64_t size, int64_t now) noexcept
    cdef void on_packet_sent(self, uint64_t size, int64_t now) noexcept
    cdef void update(self, uint64_t cwnd, int64_t smoothed_rtt, uint64_t max_datagram_size) noexcept
    cdef void reset(self) noexcept
