"""Congestion controllers (NewReno, CUBIC) and the pacer.

Implements RFC 9002 §7 and Appendix B (NewReno, byte counting, recovery
period, persistent congestion, under-utilised window), RFC 9438 (CUBIC:
cubic curve, Reno-friendly region, fast convergence) and RFC 9002 §7.7
(pacing, as a token bucket in the style of quinn's and ngtcp2's pacers).

Theory of operation
-------------------
A controller is owned by `LossRecovery`, which calls, per packet:

1. `on_packet_sent(size, now)` for every in-flight packet;
2. exactly one of `on_packet_acked(size, time_sent, now, srtt, min_rtt)`,
   `on_packet_lost(size)` (bookkeeping only) or `on_packet_discarded(size)`
   for it later;

and, per loss detection pass that found in-flight losses (or per ECN-CE
increase), `on_congestion_event(time_sent of the newest lost packet, now)`,
which reduces the window at most once per recovery period; then, if RFC 9002
§7.6 says so, `on_persistent_congestion(now)`. The engine asks `can_send` /
`available` before building a packet. `reset()` (new path, RFC 9000 §9.4)
restores the initial window but keeps `bytes_in_flight`, so acknowledgments
for packets already sent still balance.

All times are integer nanoseconds; nothing here reads a clock.
"""

from libc.math cimport cbrt, ceil
from libc.stdint cimport uint64_t, int64_t, UINT64_MAX, INT64_MAX

# kInitialWindow = min(10 * max_datagram_size, max(14720, 2 * max_datagram_size)), RFC 9002 §7.2
cdef enum:
    INITIAL_WINDOW_PACKETS = 10
    INITIAL_WINDOW_BYTES = 14720
    # kMinimumWindow = 2 * max_datagram_size, RFC 9002 §7.2
    MINIMUM_WINDOW_PACKETS = 2
    DEFAULT_BURST_PACKETS = 10

# kLossReductionFactor, RFC 9002 §7.3.2 (NewReno halves the window)
cdef double LOSS_REDUCTION_FACTOR = 0.5
# C, RFC 9438 §5.1 (window growth aggressiveness, segments / s^3)
cdef double CUBIC_C = 0.4
# beta_cubic, RFC 9438 §4.6 (multiplicative decrease factor)
cdef double CUBIC_BETA = 0.7
# alpha_cubic = 3 * (1 - beta_cubic) / (1 + beta_cubic), RFC 9438 §4.3
cdef double CUBIC_ALPHA = 3.0 * (1.0 - 0.7) / (1.0 + 0.7)
# Pacing gain N = 1.25, RFC 9002 §7.7 (pace slightly faster than cwnd/srtt)
cdef double PACING_GAIN = 1.25
# kInitialRtt, RFC 9002 §6.2.2; used by the pacer before the first RTT sample
cdef int64_t INITIAL_RTT = 333000000
# The bucket holds at least this much time at the pacing rate: an event loop
# wakes timers with about 1 ms granularity, so a smaller bucket would leave
# the path idle between wakeups (quic-go sizes its burst the same way).
cdef double PACING_BURST_NS = 2000000.0
cdef double NS_PER_S = 1e9


cdef class CongestionController:
    """`CongestionController(max_datagram_size=1200)`: window bookkeeping shared by all algorithms.

    On its own it never changes the window after an ACK or a loss (a fixed
    window); subclasses implement the growth and reduction rules.
    """

    def __init__(self, uint64_t max_datagram_size=1200):
        self.max_datagram_size = max_datagram_size
        self.bytes_in_flight = 0
        self.reset()

    cdef uint64_t minimum_window(self) noexcept:
        return MINIMUM_WINDOW_PACKETS * self.max_datagram_size

    cdef uint64_t initial_window(self) noexcept:
        cdef uint64_t mds = self.max_datagram_size
        cdef uint64_t cap = INITIAL_WINDOW_BYTES
        if 2 * mds > cap:
            cap = 2 * mds
        return min(INITIAL_WINDOW_PACKETS * mds, cap)

    cdef bint in_recovery(self, int64_t time_sent) noexcept:
        # RFC 9002 §7.3.2: the recovery period covers packets sent up to its start.
        return time_sent <= self.recovery_start_time

    cdef void _remove_from_flight(self, uint64_t size) noexcept:
        if size >= self.bytes_in_flight:
            self.bytes_in_flight = 0
        else:
            self.bytes_in_flight -= size

    cdef void on_packet_sent(self, uint64_t size, int64_t now) noexcept:
        self.bytes_in_flight += size

    cdef void on_packet_acked(self, uint64_t size, int64_t time_sent, int64_t now, int64_t smoothed_rtt, int64_t min_rtt) noexcept:
        self._remove_from_flight(size)

    cdef void on_congestion_event(self, int64_t time_sent, int64_t now) noexcept:
        pass

    cdef void on_persistent_congestion(self, int64_t now) noexcept:
        # RFC 9002 §7.6.2: collapse to the minimum window, leave recovery.
        self.congestion_window = self.minimum_window()
        self.recovery_start_time = TIME_NEVER

    cdef void on_packet_discarded(self, uint64_t size) noexcept:
        self._remove_from_flight(size)

    cdef void on_packet_lost(self, uint64_t size) noexcept:
        self._remove_from_flight(size)

    cdef bint can_send(self, uint64_t size) noexcept:
        return self.bytes_in_flight + size <= self.congestion_window

    cdef uint64_t available(self) noexcept:
        if self.bytes_in_flight >= self.congestion_window:
            return 0
        return self.congestion_window - self.bytes_in_flight

    cdef void reset(self) noexcept:
        self.congestion_window = self.initial_window()
        self.ssthresh = UINT64_MAX
        self.recovery_start_time = TIME_NEVER
        self.app_limited = False
        self.congestion_events = 0

    # Python-visible mirrors of the cdef API (tests, slow path).

    @property
    def name(self):
        return "fixed"

    @property
    def minimum_window_bytes(self):
        return self.minimum_window()

    @property
    def initial_window_bytes(self):
        return self.initial_window()

    def py_on_packet_sent(self, uint64_t size, int64_t now):
        self.on_packet_sent(size, now)

    def py_on_packet_acked(self, uint64_t size, int64_t time_sent, int64_t now, int64_t smoothed_rtt=INITIAL_RTT, int64_t min_rtt=0):
        self.on_packet_acked(size, time_sent, now, smoothed_rtt, min_rtt)

    def py_on_congestion_event(self, int64_t time_sent, int64_t now):
        self.on_congestion_event(time_sent, now)

    def py_on_persistent_congestion(self, int64_t now):
        self.on_persistent_congestion(now)

    def py_on_packet_lost(self, uint64_t size):
        self.on_packet_lost(size)

    def py_on_packet_discarded(self, uint64_t size):
        self.on_packet_discarded(size)

    def py_can_send(self, uint64_t size):
        return self.can_send(size)

    def py_available(self):
        return self.available()

    def py_reset(self):
        self.reset()


cdef class NewReno(CongestionController):
    """`NewReno(max_datagram_size=1200)`: RFC 9002 Appendix B.

    Slow start grows the window by the bytes acknowledged; congestion
    avoidance by one datagram per window acknowledged (byte counting); a
    congestion event halves it, at most once per recovery period.
    """

    @property
    def name(self):
        return "newreno"

    cdef void reset(self) noexcept:
        CongestionController.reset(self)
        self.bytes_acked = 0

    cdef void on_packet_acked(self, uint64_t size, int64_t time_sent, int64_t now, int64_t smoothed_rtt, int64_t min_rtt) noexcept:
        self._remove_from_flight(size)
        if self.in_recovery(time_sent):
            return  # RFC 9002 §7.3.2: no growth during recovery
        if self.app_limited:
            return  # RFC 9002 §7.8: do not grow an under-utilised window
        if self.congestion_window < self.ssthresh:
            self.congestion_window += size  # slow start, RFC 9002 §7.3.1
            return
        # Congestion avoidance, RFC 9002 §7.3.3: one datagram per window acked.
        self.bytes_acked += size
        if self.bytes_acked >= self.congestion_window:
            self.bytes_acked -= self.congestion_window
            self.congestion_window += self.max_datagram_size

    cdef void on_congestion_event(self, int64_t time_sent, int64_t now) noexcept:
        if self.in_recovery(time_sent):
            return  # one reduction per recovery period, RFC 9002 §7.3.2
        self.recovery_start_time = now
        self.congestion_events += 1
        cdef uint64_t w = <uint64_t>(self.congestion_window * LOSS_REDUCTION_FACTOR)
        self.ssthresh = max(w, self.minimum_window())
        self.congestion_window = self.ssthresh
        self.bytes_acked = 0

    cdef void on_persistent_congestion(self, int64_t now) noexcept:
        CongestionController.on_persistent_congestion(self, now)
        self.bytes_acked = 0


cdef class Cubic(CongestionController):
    """`Cubic(max_datagram_size=1200)`: RFC 9438.

    Slow start as NewReno. In congestion avoidance the window follows
    W_cubic(t) = C * (t - K)^3 + W_max (in datagrams, t in seconds since the
    stage began), aiming at W_cubic(t + srtt) but never below the
    Reno-friendly estimate W_est. A congestion event sets W_max (lowered
    further under fast convergence) and multiplies the window by 0.7.
    Window arithmetic is in bytes: one "segment" is `max_datagram_size`.
    """

    @property
    def name(self):
        return "cubic"

    cdef void reset(self) noexcept:
        CongestionController.reset(self)
        self.w_max = 0.0
        self.w_est = 0.0
        self.k = 0.0
        self.cwnd_epoch = 0.0
        self.epoch_start = TIME_NEVER
        self.increment_fraction = 0.0
        self.fast_convergence = True

    cdef double w_cubic(self, double t) noexcept:
        # RFC 9438 §4.2 eq. 1, scaled from segments to bytes.
        cdef double d = t - self.k
        return CUBIC_C * <double>self.max_datagram_size * d * d * d + self.w_max

    cdef void on_packet_acked(self, uint64_t size, int64_t time_sent, int64_t now, int64_t smoothed_rtt, int64_t min_rtt) noexcept:
        self._remove_from_flight(size)
        if self.in_recovery(time_sent):
            return  # RFC 9002 §7.3.2 / RFC 9438 §4.6
        if self.app_limited:
            return  # RFC 9438 §5.8 / RFC 9002 §7.8: not cwnd-limited
        if self.congestion_window < self.ssthresh:
            self.congestion_window += size  # slow start, RFC 9438 §4.10
            return
        cdef double mds = <double>self.max_datagram_size
        cdef double cwnd = <double>self.congestion_window
        if self.epoch_start == TIME_NEVER:
            # First ACK of a congestion avoidance stage, RFC 9438 §4.2.
            self.epoch_start = now
            self.cwnd_epoch = cwnd
            self.w_est = cwnd
            if self.w_max <= cwnd:
                # Left slow start without a loss (or grew past W_max): the
                # plateau is here, RFC 9438 §4.2 ("K is set to 0").
                self.w_max = cwnd
                self.k = 0.0
            else:
                self.k = cbrt((self.w_max - cwnd) / (CUBIC_C * mds))
        # Reno-friendly estimate, RFC 9438 §4.3: alpha_cubic until W_est
        # reaches W_max, then 1 (plain Reno).
        cdef double alpha = 1.0 if self.w_est >= self.w_max else CUBIC_ALPHA
        self.w_est += alpha * <double>size * mds / cwnd
        cdef double t = <double>(now - self.epoch_start) / NS_PER_S
        cdef double rtt = <double>smoothed_rtt / NS_PER_S
        cdef double target, inc
        if self.w_cubic(t) < self.w_est:
            # Reno-friendly region, RFC 9438 §4.3.
            if self.w_est > cwnd:
                self.congestion_window = <uint64_t>self.w_est
            return
        # Concave / convex region, RFC 9438 §4.4-4.5.
        target = self.w_cubic(t + rtt)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        inc = (target - cwnd) * <double>size / cwnd + self.increment_fraction
        self.congestion_window += <uint64_t>inc
        self.increment_fraction = inc - <double>(<uint64_t>inc)

    cdef void on_congestion_event(self, int64_t time_sent, int64_t now) noexcept:
        if self.in_recovery(time_sent):
            return
        self.recovery_start_time = now
        self.congestion_events += 1
        self.epoch_start = TIME_NEVER
        self.increment_fraction = 0.0
        cdef double cwnd = <double>self.congestion_window
        # Fast convergence, RFC 9438 §4.7: release bandwidth to new flows
        # when losses come before the previous W_max was reached.
        if self.fast_convergence and cwnd < self.w_max:
            self.w_max = cwnd * (1.0 + CUBIC_BETA) / 2.0
        else:
            self.w_max = cwnd
        # Multiplicative decrease, RFC 9438 §4.6.
        self.ssthresh = max(<uint64_t>(cwnd * CUBIC_BETA), self.minimum_window())
        self.congestion_window = self.ssthresh

    cdef void on_persistent_congestion(self, int64_t now) noexcept:
        CongestionController.on_persistent_congestion(self, now)
        self.epoch_start = TIME_NEVER
        self.increment_fraction = 0.0

    def py_w_cubic(self, double t):
        """W_cubic(t) in bytes for the current K and W_max (tests)."""
        return self.w_cubic(t)


def make_congestion_controller(name="cubic", max_datagram_size=1200):
    """Build the controller called `name` ("cubic", "newreno" or "reno").

    :param name: algorithm name, case-insensitive.
    :param max_datagram_size: initial path datagram size in bytes.
    :raises ValueError: for an unknown name (the message lists the choices).
    """
    key = name.lower() if isinstance(name, str) else name
    if key == "cubic":
        return Cubic(max_datagram_size)
    if key in ("newreno", "reno"):
        return NewReno(max_datagram_size)
    raise ValueError(f"unknown congestion control algorithm {name!r}: choose 'cubic', 'newreno' or 'reno'")


cdef class Pacer:
    """`Pacer(max_datagram_size=1200, burst_packets=10)`: token bucket, RFC 9002 §7.7.

    Tokens (bytes) refill at 1.25 * cwnd / smoothed_rtt up to `capacity`:
    `burst_packets` full datagrams, or 2 ms at that rate if that is more. Call order: `update()` whenever the
    window or RTT changes, `next_send_time(size, now)` before sending (send
    when it returns `now`, else arm a timer for the returned time), then
    `on_packet_sent(size, now)`. The first `burst_packets` datagrams leave at
    once; after that datagrams are spaced by size / rate.
    """

    def __init__(self, uint64_t max_datagram_size=1200, uint64_t burst_packets=DEFAULT_BURST_PACKETS):
        self.burst_packets = burst_packets if burst_packets > 0 else 1
        self.max_datagram_size = max_datagram_size
        self.reset()

    cdef void reset(self) noexcept:
        self.capacity = self.burst_packets * self.max_datagram_size
        self.tokens = <double>self.capacity
        self.last_refill = TIME_NEVER
        cdef uint64_t iw = min(INITIAL_WINDOW_PACKETS * self.max_datagram_size,
                               max(<uint64_t>INITIAL_WINDOW_BYTES, 2 * self.max_datagram_size))
        self.rate = PACING_GAIN * <double>iw / <double>INITIAL_RTT

    cdef void _refill(self, int64_t now) noexcept:
        if self.last_refill != TIME_NEVER and now > self.last_refill:
            self.tokens += <double>(now - self.last_refill) * self.rate
            if self.tokens > <double>self.capacity:
                self.tokens = <double>self.capacity
        if self.last_refill == TIME_NEVER or now > self.last_refill:
            self.last_refill = now

    cdef int64_t next_send_time(self, uint64_t size, int64_t now) noexcept:
        self._refill(now)
        # A datagram larger than the bucket waits only for a full bucket.
        cdef double need = <double>size
        if need > <double>self.capacity:
            need = <double>self.capacity
        if self.tokens >= need:
            return now
        if self.rate <= 0.0:
            return INT64_MAX
        return now + <int64_t>ceil((need - self.tokens) / self.rate)

    cdef void on_packet_sent(self, uint64_t size, int64_t now) noexcept:
        self._refill(now)
        self.tokens -= <double>size
        # Debt is bounded to one bucket so a burst the engine forced through
        # cannot stall the connection for long.
        if self.tokens < -<double>self.capacity:
            self.tokens = -<double>self.capacity

    cdef void update(self, uint64_t cwnd, int64_t smoothed_rtt, uint64_t max_datagram_size) noexcept:
        if smoothed_rtt <= 0:
            smoothed_rtt = 1
        self.rate = PACING_GAIN * <double>cwnd / <double>smoothed_rtt
        if max_datagram_size != self.max_datagram_size:
            self.max_datagram_size = max_datagram_size
        self.capacity = self.burst_packets * self.max_datagram_size
        if self.rate * PACING_BURST_NS > <double>self.capacity:
            self.capacity = <uint64_t>(self.rate * PACING_BURST_NS)
        if self.tokens > <double>self.capacity:
            self.tokens = <double>self.capacity

    def py_next_send_time(self, uint64_t size, int64_t now):
        return self.next_send_time(size, now)

    def py_on_packet_sent(self, uint64_t size, int64_t now):
        self.on_packet_sent(size, now)

    def py_update(self, uint64_t cwnd, int64_t smoothed_rtt, uint64_t max_datagram_size):
        self.update(cwnd, smoothed_rtt, max_datagram_size)
