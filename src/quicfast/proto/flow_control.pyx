"""Flow-control windows: how much the peer may send us, how much we may send.

Implements RFC 9000 §4.1 (MAX_DATA / MAX_STREAM_DATA credit, BLOCKED
frames), §4.2 (when to send credit: we advertise once half the window is
used, so one update per half window rather than per packet) and the
FLOW_CONTROL_ERROR check of §4.1. The same classes serve a stream and the
connection; the engine keeps one of each per stream plus one pair for the
connection.

Auto-tuning (after quic-go's flowcontrol): the window is the memory we are
willing to commit. It starts at `initial`; each time a limit update becomes
due, we look at the epoch since the previous one. If the application read at
least half a window and did so in less than 4 x (fraction of window read) x
smoothed RTT -- about 2 RTTs for half a window -- the window is limiting the
transfer rather than the reader, so it doubles, never past `maximum`. A slow
reader keeps the window where it is. Time is passed in (int64 nanoseconds).
"""

cimport cython
from libc.stdint cimport uint64_t, int64_t


@cython.freelist(256)   # one per stream: streams come and go by the thousand
cdef class ReceiveWindow:
    """`ReceiveWindow(initial, maximum=0)`: our limit on the peer's data.

    Drivers: `on_data_received` (or `on_data_added`) for every frame, before
    buffering it; `on_consumed` when the application reads; when
    `update_due`, write MAX_DATA / MAX_STREAM_DATA carrying `next_limit()`.
    A connection window calls `grow_to(1.5 x stream window)` when a stream
    window grows, so the connection never limits a single stream first.
    """

    def __cinit__(self, uint64_t initial=0, uint64_t maximum=0):
        self._epoch_start = -1
        self.set_initial(initial, maximum)

    cdef void set_initial(self, uint64_t initial, uint64_t maximum):
        """set_initial starts the window at |initial|, growing up to |maximum|
        (the engine makes windows with __new__ and calls this: no argument parsing)."""
        if maximum < initial:
            maximum = initial
        self.window = initial
        self.maximum = maximum
        self.max_allowed = initial

    cdef int on_data_received(self, uint64_t new_highest) except -1:
        """on_data_received records that the peer sent up to |new_highest|;
        returns FLOW_CONTROL_ERROR if that exceeds the advertised limit."""
        if new_highest > self.max_allowed:
            return FLOW_CONTROL_ERROR
        if new_highest > self.highest_received:
            self.highest_received = new_highest
        return 0

    cdef int on_data_added(self, uint64_t nbytes) except -1:
        """on_data_added charges |nbytes| newly received bytes (connection
        level: the sum of each stream's highest_offset increase)."""
        return self.on_data_received(self.highest_received + nbytes)

    cdef void on_consumed(self, uint64_t nbytes, int64_t now, int64_t smoothed_rtt):
        """on_consumed records that the application read |nbytes| at |now|."""
        if self._epoch_start < 0:
            self._epoch_start = now
            self._epoch_offset = self.consumed
        self.consumed += nbytes
        if self.update_due():
            self._autotune(now, smoothed_rtt)

    cdef void _autotune(self, int64_t now, int64_t smoothed_rtt):
        cdef uint64_t in_epoch = self.consumed - self._epoch_offset
        cdef double fraction
        if in_epoch * 2 < self.window:
            # Too little read to judge the rate; keep the epoch going.
            return
        if smoothed_rtt > 0 and self.window < self.maximum:
            fraction = <double>in_epoch / <double>self.window
            if <double>(now - self._epoch_start) < 4.0 * fraction * <double>smoothed_rtt:
                self.window = self.window * 2 if self.window * 2 < self.maximum else self.maximum
        self._epoch_start = now
        self._epoch_offset = self.consumed

    cdef bint update_due(self):
        """update_due: the credit not yet advertised reached half the window."""
        if self.consumed >= self.max_allowed:
            return True
        return (self.max_allowed - self.consumed) * 2 <= self.window

    cdef uint64_t next_limit(self):
        """next_limit returns consumed + window and commits it as max_allowed
        (limits never shrink, RFC 9000 §4.1)."""
        cdef uint64_t limit = self.consumed + self.window
        if limit > self.max_allowed:
            self.max_allowed = limit
        return self.max_allowed

    cdef void grow_to(self, uint64_t window):
        """grow_to raises the window to at least |window| (capped by maximum)
        and starts a new auto-tuning epoch."""
        if window > self.maximum:
            window = self.maximum
        if window > self.window:
            self.window = window
            self._epoch_start = -1

    # Python-visible API (tests, slow path).

    def data_received(self, uint64_t new_highest):
        return self.on_data_received(new_highest)

    def consume(self, uint64_t nbytes, int64_t now, int64_t smoothed_rtt):
        self.on_consumed(nbytes, now, smoothed_rtt)

    def is_update_due(self):
        return self.update_due()

    def take_limit(self):
        return self.next_limit()

    def grow(self, uint64_t window):
        self.grow_to(window)


@cython.freelist(256)
cdef class SendWindow:
    """`SendWindow(limit=0)`: the peer's limit on our data.

    Drivers: `update` on MAX_DATA / MAX_STREAM_DATA (and the transport
    parameters), `available` before sending new data, `on_sent` after;
    when data is waiting and `available()` is 0, `blocked_frame_due` says
    whether to write DATA_BLOCKED / STREAM_DATA_BLOCKED (once per limit).
    """

    def __cinit__(self, uint64_t limit=0):
        self.limit = limit

    cdef bint update(self, uint64_t new_limit):
        """update takes a new limit from the peer; only increases count
        (RFC 9000 §4.1: smaller values are ignored). True when it grew."""
        if new_limit > self.limit:
            self.limit = new_limit
            return True
        return False

    cdef uint64_t available(self):
        return self.limit - self.used if self.limit > self.used else 0

    cdef void on_sent(self, uint64_t nbytes):
        self.used += nbytes

    cdef bint blocked_frame_due(self):
        """blocked_frame_due is True at most once per limit value, when the
        limit is used up; calling it commits (the frame is assumed written).
        Call it only when data is waiting to be sent."""
        if self.used < self.limit:
            return False
        if self._blocked_reported and self._blocked_limit == self.limit:
            return False
        self._blocked_reported = True
        self._blocked_limit = self.limit
        return True

    cdef void on_blocked_lost(self, uint64_t limit):
        """on_blocked_lost re-arms the BLOCKED frame sent for |limit| if that
        limit is still current (RFC 9000 §13.3: resend while still blocked)."""
        if self._blocked_reported and limit == self._blocked_limit:
            self._blocked_reported = False

    # Python-visible API (tests, slow path).

    def update_limit(self, uint64_t new_limit):
        return self.update(new_limit)

    def available_bytes(self):
        return self.available()

    def sent(self, uint64_t nbytes):
        self.on_sent(nbytes)

    def is_blocked_frame_due(self):
        return self.blocked_frame_due()

    def blocked_lost(self, uint64_t limit):
        self.on_blocked_lost(limit)
