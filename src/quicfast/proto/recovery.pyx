"""Loss recovery: RTT estimation, sent-packet records, loss detection, PTO.

Implements RFC 9002 §5 (RTT estimation), §6 (packet- and time-threshold
loss detection, probe timeout), §7 (congestion signals, persistent
congestion, ECN-CE) and the pseudo-code of Appendix A.

Theory of operation
-------------------
One `LossRecovery` per connection; it owns the `RttEstimator`, the
`CongestionController` and the `Pacer`, and one `SentPacketLog` per
packet-number space. The engine drives it with:

1. **Sending.** `prepare_packet(space, pn)` returns a zeroed `SentPacket`
   (``largest_acked_sent`` preset to UINT64_MAX) that the engine fills while
   building the packet (size, ack_eliciting, in_flight, frames...). Then
   `on_packet_sent(space, packet, now)` records it: bytes in flight, the
   controller and the pacer are charged. A prepared packet that is not sent
   is dropped by `on_packet_not_sent(space, pn)` or by the next prepare.
   Packet numbers must increase; skipped numbers are remembered, so an ACK
   for one is a protocol violation.
2. **Receiving an ACK.** `on_ack_received(space, starts, ends, n, ack_delay,
   now, handler)` validates the ranges first (returns 1, touching nothing,
   if they cover a pn never sent), then updates the RTT, calls
   ``handler.on_frame_acked`` for every frame of every newly acknowledged
   packet and ``handler.on_ack_of_ack``, runs loss detection
   (``handler.on_frame_lost``), signals congestion and resets the PTO
   backoff. ECN-CE increases are reported with `on_ecn_ce`.
3. **Timer.** After each of the above, the engine asks
   `get_loss_detection_timer(now, has_handshake_keys, amplification_limited)`
   and, when it expires, calls `on_loss_detection_timeout(now, handler)`.
   A return value >= 0 is the space in which `probes_to_send` ack-eliciting
   packets must be sent right away (RFC 9002 §6.2.4).
4. **Keys discarded / path changed.** `discard_space(space, now)` (§6.4) and
   `on_path_change()` (RFC 9000 §9.4).

Rules
-----
* Each frame gets at most one callback: acked or lost, once. A packet
  declared lost and acknowledged later (a spurious loss) does not call
  ``on_frame_acked`` again, because the engine has already scheduled its
  frames for retransmission (quinn and ngtcp2 behave the same way); it is
  counted in `spurious_losses` and still reports ``on_ack_of_ack`` -- but
  only while the log still holds the record (it forgets settled records
  once everything older is settled, so late ACKs are usually just ignored).
  Packets of a discarded space get no callback.
* Persistent congestion (§7.6.2) is judged per space among the packets
  declared lost by one detection pass; an acknowledged packet sent between
  two lost ones ends the period. (RFC 9002 allows looking across spaces;
  in practice the periods that matter are in the application space.)
* Handler callbacks may prepare and send new packets: records live in
  fixed-size blocks, so SentPacket pointers stay valid until their pn is
  forgotten (settled and every older packet settled too).
"""

from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t, UINT64_MAX, INT64_MAX
from libc.string cimport memset, memmove

from quicfast.proto.congestion cimport CongestionController, Pacer

from quicfast.proto.congestion import make_congestion_controller

# kPacketThreshold, RFC 9002 §6.1.1
cdef enum:
    PACKET_THRESHOLD = 3
    # kPersistentCongestionThreshold, RFC 9002 §7.6.1
    PERSISTENT_CONGESTION_THRESHOLD = 3
    SLOTS_PER_BLOCK = 64
    SLOT_SHIFT = 6
    # Largest pn jump a non-empty log accepts (skipped pns are single).
    MAX_PN_GAP = 4096
    # PTO backoff stops doubling after this many PTOs (avoids overflow).
    MAX_PTO_SHIFT = 30

# kTimeThreshold = 9/8, RFC 9002 §6.1.2
cdef int64_t TIME_THRESHOLD_NUM = 9
cdef int64_t TIME_THRESHOLD_DEN = 8
# kGranularity = 1 ms, RFC 9002 §6.1.2
cdef int64_t GRANULARITY = 1000000
# kInitialRtt = 333 ms, RFC 9002 §6.2.2
cdef int64_t INITIAL_RTT = 333000000
# Default max_ack_delay = 25 ms, RFC 9000 §18.2
cdef int64_t DEFAULT_MAX_ACK_DELAY = 25000000

INITIAL = SPACE_INITIAL
HANDSHAKE = SPACE_HANDSHAKE
APPLICATION = SPACE_APPLICATION
NO_TIMER = INT64_MAX


cdef inline int64_t _add_sat(int64_t a, int64_t b) noexcept:
    # a + b for b >= 0, saturating at TIME_NONE.
    if a >= INT64_MAX - b:
        return INT64_MAX
    return a + b


cdef inline int64_t _shift_sat(int64_t value, int shift) noexcept:
    if shift > MAX_PTO_SHIFT:
        shift = MAX_PTO_SHIFT
    if value > (INT64_MAX >> shift):
        return INT64_MAX
    return value << shift


cdef class FrameHandler:
    """Receives per-frame delivery outcomes; the engine's Connection subclasses it.

    The base class ignores everything (useful for tests and benchmarks).
    """

    cdef void on_frame_acked(self, int space, SentPacket* packet, FrameRecord* frame):
        pass

    cdef void on_frame_lost(self, int space, SentPacket* packet, FrameRecord* frame):
        pass

    cdef void on_ack_of_ack(self, int space, uint64_t largest_acked_sent):
        pass


cdef class RecordingFrameHandler(FrameHandler):
    """Test handler: appends `(space, pn, kind, stream_id, offset, length, fin)`
    to `acked` / `lost`, and `(space, largest_acked_sent)` to `acks_of_acks`."""

    cdef public list acked, lost, acks_of_acks

    def __init__(self):
        self.acked = []
        self.lost = []
        self.acks_of_acks = []

    cdef void on_frame_acked(self, int space, SentPacket* packet, FrameRecord* frame):
        self.acked.append((space, packet.pn, frame.kind, frame.stream_id, frame.offset, frame.length, frame.fin))

    cdef void on_frame_lost(self, int space, SentPacket* packet, FrameRecord* frame):
        self.lost.append((space, packet.pn, frame.kind, frame.stream_id, frame.offset, frame.length, frame.fin))

    cdef void on_ack_of_ack(self, int space, uint64_t largest_acked_sent):
        self.acks_of_acks.append((space, largest_acked_sent))


cdef class RttEstimator:
    """RTT estimate per RFC 9002 §5: min_rtt, smoothed_rtt, rttvar (ns).

    Before the first sample smoothed_rtt = kInitialRtt and rttvar = kInitialRtt / 2.
    """

    def __init__(self):
        self.reset()

    cdef void reset(self) noexcept:
        self.latest_rtt = 0
        self.smoothed_rtt = INITIAL_RTT
        self.rttvar = INITIAL_RTT // 2
        self.min_rtt = 0
        self.first_sample_time = TIME_NONE
        self.has_sample = False

    cdef void update(self, int64_t latest_rtt, int64_t ack_delay, bint handshake_confirmed, int64_t max_ack_delay) noexcept:
        if latest_rtt < 0:
            latest_rtt = 0
        if ack_delay < 0:
            ack_delay = 0
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            # RFC 9002 §5.3: the first sample initialises the estimator.
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt // 2
            return
        # RFC 9002 §5.2: min_rtt ignores ack_delay.
        if latest_rtt < self.min_rtt:
            self.min_rtt = latest_rtt
        # RFC 9002 §5.3: cap the peer's delay at max_ack_delay once the
        # handshake is confirmed, and never subtract below min_rtt.
        if handshake_confirmed and ack_delay > max_ack_delay:
            ack_delay = max_ack_delay
        cdef int64_t adjusted = latest_rtt
        if latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        cdef int64_t diff = self.smoothed_rtt - adjusted
        if diff < 0:
            diff = -diff
        self.rttvar = (3 * self.rttvar + diff) // 4
        self.smoothed_rtt = (7 * self.smoothed_rtt + adjusted) // 8

    cdef int64_t pto_base(self) noexcept:
        # smoothed_rtt + max(4 * rttvar, kGranularity), RFC 9002 §6.2.1
        cdef int64_t var = 4 * self.rttvar
        if var < GRANULARITY:
            var = GRANULARITY
        return self.smoothed_rtt + var

    cdef int64_t loss_delay(self) noexcept:
        # max(kTimeThreshold * max(smoothed_rtt, latest_rtt), kGranularity), RFC 9002 §6.1.2
        cdef int64_t rtt = self.smoothed_rtt
        if self.latest_rtt > rtt:
            rtt = self.latest_rtt
        rtt = rtt * TIME_THRESHOLD_NUM // TIME_THRESHOLD_DEN
        if rtt < GRANULARITY:
            rtt = GRANULARITY
        return rtt

    def py_update(self, int64_t latest_rtt, int64_t ack_delay=0, bint handshake_confirmed=False, int64_t max_ack_delay=DEFAULT_MAX_ACK_DELAY):
        self.update(latest_rtt, ack_delay, handshake_confirmed, max_ack_delay)

    @property
    def pto_base_duration(self):
        return self.pto_base()

    @property
    def loss_delay_duration(self):
        return self.loss_delay()


cdef class SentPacketLog:
    """Sent-packet records of one packet-number space, indexed by pn.

    Records live in blocks of 64 C structs; `blocks` is a growable array of
    block pointers, so growing never moves a record. Slots below `first_pn`
    are forgotten: `trim()` advances it past settled (acked, lost, unused)
    records once everything older is settled, and frees whole blocks.
    """

    def __cinit__(self):
        self.blocks = NULL
        self.block_count = 0
        self.block_capacity = 0
        self.spare_block = NULL
        self.base_pn = 0
        self.first_pn = 0
        self.end_pn = 0
        self.largest_sent = 0
        self.has_sent = False
        self.has_pending = False
        self.unused_count = 0
        self.ack_eliciting_in_flight = 0
        self.bytes_in_flight = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.block_count):
            PyMem_Free(self.blocks[i])
        PyMem_Free(self.blocks)
        PyMem_Free(self.spare_block)

    def __len__(self):
        return self.end_pn - self.first_pn

    cdef SentPacket* get(self, uint64_t pn) noexcept:
        """Return the record of `pn`, or NULL when the log does not hold it."""
        if pn < self.first_pn or pn >= self.end_pn:
            return NULL
        cdef uint64_t off = pn - self.base_pn
        return &self.blocks[off >> SLOT_SHIFT][off & (SLOTS_PER_BLOCK - 1)]

    cdef int _ensure(self, uint64_t pn) except -1:
        # Allocate blocks until pn has a slot; new slots start PACKET_UNUSED.
        cdef Py_ssize_t needed = <Py_ssize_t>((pn - self.base_pn) >> SLOT_SHIFT) + 1
        cdef Py_ssize_t capacity, i
        cdef SentPacket** blocks
        cdef SentPacket* block
        while self.block_count < needed:
            if self.block_count == self.block_capacity:
                capacity = self.block_capacity * 2 if self.block_capacity else 4
                blocks = <SentPacket**>PyMem_Realloc(self.blocks, capacity * sizeof(SentPacket*))
                if blocks == NULL:
                    raise MemoryError()
                self.blocks = blocks
                self.block_capacity = capacity
            if self.spare_block != NULL:
                block = self.spare_block
                self.spare_block = NULL
            else:
                block = <SentPacket*>PyMem_Malloc(SLOTS_PER_BLOCK * sizeof(SentPacket))
                if block == NULL:
                    raise MemoryError()
            memset(block, 0, SLOTS_PER_BLOCK * sizeof(SentPacket))
            for i in range(SLOTS_PER_BLOCK):
                block[i].state = PACKET_UNUSED
            self.blocks[self.block_count] = block
            self.block_count += 1
        return 0

    cdef void _release_block(self, SentPacket* block) noexcept:
        if self.spare_block == NULL:
            self.spare_block = block
        else:
            PyMem_Free(block)

    cdef SentPacket* prepare(self, uint64_t pn) except NULL:
        """Return a zeroed record for `pn` (> every pn prepared before)."""
        cdef SentPacket* p
        cdef Py_ssize_t i
        if self.has_pending:
            if pn == self.pending_pn:
                p = self.get(pn)
            else:
                # The previous prepared packet was abandoned.
                self.get(self.pending_pn).state = PACKET_UNUSED
                self.unused_count += 1
                self.has_pending = False
                p = NULL
        else:
            p = NULL
        if p == NULL:
            if self.first_pn == self.end_pn and (self.block_count == 0 or pn < self.end_pn or pn - self.end_pn > MAX_PN_GAP):
                # Empty log: start afresh at pn.
                if pn < self.end_pn:
                    raise ValueError(f"packet number {pn} already used (next is {self.end_pn})")
                for i in range(self.block_count):
                    self._release_block(self.blocks[i])
                self.block_count = 0
                self.unused_count = 0
                self.base_pn = pn & ~(<uint64_t>(SLOTS_PER_BLOCK - 1))
                self.first_pn = pn
                self.end_pn = pn
            elif pn < self.end_pn:
                raise ValueError(f"packet number {pn} already used (next is {self.end_pn})")
            elif pn - self.end_pn > MAX_PN_GAP:
                raise ValueError(f"packet number {pn} skips too far ahead of {self.end_pn}")
            self._ensure(pn)
            self.unused_count += <Py_ssize_t>(pn - self.end_pn)
            self.end_pn = pn + 1
            p = self.get(pn)
        memset(p, 0, sizeof(SentPacket))
        p.pn = pn
        p.largest_acked_sent = UINT64_MAX
        p.state = PACKET_OUTSTANDING
        self.has_pending = True
        self.pending_pn = pn
        return p

    cdef void trim(self) noexcept:
        """Forget the settled records at the low end; free whole blocks."""
        cdef SentPacket* p
        while self.first_pn < self.end_pn:
            if self.has_pending and self.first_pn == self.pending_pn:
                break
            p = self.get(self.first_pn)
            if p.state == PACKET_OUTSTANDING:
                break
            if p.state == PACKET_UNUSED:
                self.unused_count -= 1
            self.first_pn += 1
        cdef Py_ssize_t n = 0
        while n < self.block_count and self.base_pn + <uint64_t>((n + 1) * SLOTS_PER_BLOCK) <= self.first_pn:
            self._release_block(self.blocks[n])
            n += 1
        if n:
            memmove(self.blocks, self.blocks + n, (self.block_count - n) * sizeof(SentPacket*))
            self.block_count -= n
            self.base_pn += <uint64_t>(n * SLOTS_PER_BLOCK)

    cdef void clear(self) noexcept:
        """Forget every record (pns stay monotonic: the next prepare must exceed end_pn - 1)."""
        cdef Py_ssize_t i
        for i in range(self.block_count):
            self._release_block(self.blocks[i])
        self.block_count = 0
        self.first_pn = self.end_pn
        self.base_pn = self.end_pn & ~(<uint64_t>(SLOTS_PER_BLOCK - 1))
        self.has_pending = False
        self.unused_count = 0
        self.ack_eliciting_in_flight = 0
        self.bytes_in_flight = 0


cdef class LossRecovery:
    """`LossRecovery(is_client=False, congestion="cubic", max_datagram_size=1200,
    max_ack_delay=25 ms, burst_packets=10)`: RFC 9002 loss recovery for one connection.

    See the module docstring for the call order. `cc` may be replaced by any
    `CongestionController` before the first packet is sent.
    """

    def __init__(self, bint is_client=False, congestion="cubic", uint64_t max_datagram_size=1200,
                 int64_t max_ack_delay=DEFAULT_MAX_ACK_DELAY, uint64_t burst_packets=10):
        self.rtt = RttEstimator()
        if isinstance(congestion, CongestionController):
            self.cc = congestion
        else:
            self.cc = make_congestion_controller(congestion, max_datagram_size)
        self.pacer = Pacer(self.cc.max_datagram_size, burst_packets)
        self.initial_log = SentPacketLog()
        self.handshake_log = SentPacketLog()
        self.application_log = SentPacketLog()
        self.pto_count = 0
        self.probes_to_send = 0
        self.max_ack_delay = max_ack_delay
        self.is_client = is_client
        self.handshake_confirmed = False
        # RFC 9002 A.6: a server's address is validated by the handshake
        # itself, so from the server's side the peer "completed" it.
        self.peer_completed_address_validation = not is_client
        self.has_handshake_keys = False
        cdef int s
        for s in range(SPACE_COUNT):
            self.loss_time[s] = TIME_NONE
            self.time_of_last_ack_eliciting[s] = TIME_NONE
            self.largest_acked[s] = UINT64_MAX
            self.discarded[s] = False

    cdef SentPacketLog _log(self, int space):
        if space == SPACE_APPLICATION:
            return self.application_log
        if space == SPACE_HANDSHAKE:
            return self.handshake_log
        return self.initial_log

    cdef void _update_pacer(self) noexcept:
        self.pacer.update(self.cc.congestion_window, self.rtt.smoothed_rtt, self.cc.max_datagram_size)

    cdef bint ack_eliciting_in_flight(self, int space) noexcept:
        return self._log(space).ack_eliciting_in_flight > 0

    cdef int64_t pto_duration(self, int space) noexcept:
        """PTO period for `space` including backoff, RFC 9002 §6.2.1 (ns)."""
        cdef int64_t base = self.rtt.pto_base()
        if space == SPACE_APPLICATION:
            base += self.max_ack_delay
        return _shift_sat(base, self.pto_count)

    # -- sending ----------------------------------------------------------

    cdef SentPacket* prepare_packet(self, int space, uint64_t pn) except NULL:
        if self.discarded[space]:
            raise ValueError(f"packet number space {space} was discarded")
        return self._log(space).prepare(pn)

    cdef void on_packet_not_sent(self, int space, uint64_t pn) noexcept:
        cdef SentPacketLog log = self._log(space)
        if log.has_pending and log.pending_pn == pn:
            log.get(pn).state = PACKET_UNUSED
            log.unused_count += 1
            log.has_pending = False

    cdef void on_packet_sent(self, int space, SentPacket* packet, int64_t now) noexcept:
        cdef SentPacketLog log = self._log(space)
        if log.has_pending and log.pending_pn == packet.pn:
            log.has_pending = False
        packet.time_sent = now
        packet.state = PACKET_OUTSTANDING
        if not log.has_sent or packet.pn > log.largest_sent:
            log.largest_sent = packet.pn
            log.has_sent = True
        self.packets_sent += 1
        self.bytes_sent += packet.size
        if space == SPACE_HANDSHAKE:
            self.has_handshake_keys = True
        if packet.ack_eliciting:
            log.ack_eliciting_in_flight += 1
            self.time_of_last_ack_eliciting[space] = now
        if packet.in_flight:
            log.bytes_in_flight += packet.size
            self.bytes_in_flight += packet.size
            self.cc.on_packet_sent(packet.size, now)
            self.pacer.on_packet_sent(packet.size, now)

    # -- acknowledgments ---------------------------------------------------

    cdef int on_ack_received(self, int space, const uint64_t* range_starts, const uint64_t* range_ends, Py_ssize_t range_count, int64_t ack_delay, int64_t now, FrameHandler handler) except -1:
        """Process one ACK frame's ranges (largest first, [start, end)).

        :returns: 0, or 1 when a range covers a pn never sent in `space`
            (nothing is changed then; close with PROTOCOL_VIOLATION).
        """
        if range_count <= 0 or self.discarded[space]:
            return 0
        cdef SentPacketLog log = self._log(space)
        cdef Py_ssize_t i
        cdef uint64_t pn, lo, hi, start, end
        cdef uint64_t largest = 0
        cdef SentPacket* p
        cdef Py_ssize_t newly_acked = 0
        cdef bint includes_ack_eliciting = False
        cdef uint8_t j
        if not log.has_sent:
            return 1
        # Pass 1: validate, and learn whether anything new is acknowledged.
        for i in range(range_count):
            start = range_starts[i]
            end = range_ends[i]
            if start >= end:
                continue
            if end - 1 > log.largest_sent:
                return 1  # RFC 9000 §13.1: acknowledges a pn never sent
            if end - 1 > largest:
                largest = end - 1
            lo = start if start > log.first_pn else log.first_pn
            hi = end if end < log.largest_sent + 1 else log.largest_sent + 1
            pn = lo
            while pn < hi:
                p = log.get(pn)
                if p.state == PACKET_UNUSED:
                    return 1  # a skipped pn, RFC 9000 §21.4
                if p.state == PACKET_OUTSTANDING:
                    newly_acked += 1
                    if p.ack_eliciting:
                        includes_ack_eliciting = True
                pn += 1
        if self.is_client and space == SPACE_HANDSHAKE:
            # RFC 9002 A.6: a Handshake ACK proves the server validated us.
            self.peer_completed_address_validation = True
        if self.largest_acked[space] == UINT64_MAX or largest > self.largest_acked[space]:
            self.largest_acked[space] = largest
        if newly_acked == 0:
            return 0  # RFC 9002 A.7: nothing new, no RTT sample or loss pass
        # RFC 9002 §5.1: sample only when the largest acknowledged is newly
        # acknowledged and something ack-eliciting was newly acknowledged.
        p = log.get(largest)
        cdef bint first_sample
        if p != NULL and p.state == PACKET_OUTSTANDING and includes_ack_eliciting:
            if space != SPACE_APPLICATION:
                ack_delay = 0  # RFC 9002 §5.3: ignore ack_delay before 1-RTT
            first_sample = not self.rtt.has_sample
            self.rtt.update(now - p.time_sent, ack_delay, self.handshake_confirmed, self.max_ack_delay)
            if first_sample:
                self.rtt.first_sample_time = now
        cdef int64_t srtt = self.rtt.smoothed_rtt
        cdef int64_t min_rtt = self.rtt.min_rtt
        # Pass 2: settle newly acknowledged packets.
        for i in range(range_count):
            start = range_starts[i]
            end = range_ends[i]
            if start >= end:
                continue
            lo = start if start > log.first_pn else log.first_pn
            hi = end if end < log.largest_sent + 1 else log.largest_sent + 1
            pn = lo
            while pn < hi:
                p = log.get(pn)
                pn += 1
                if p.state == PACKET_LOST:
                    # Spurious loss: frames were already handed back as lost.
                    p.state = PACKET_ACKED
                    self.spurious_losses += 1
                    if p.largest_acked_sent != UINT64_MAX:
                        handler.on_ack_of_ack(space, p.largest_acked_sent)
                    continue
                if p.state != PACKET_OUTSTANDING:
                    continue
                p.state = PACKET_ACKED
                if p.ack_eliciting:
                    log.ack_eliciting_in_flight -= 1
                if p.in_flight:
                    self._remove_bytes(log, p.size)
                    self.cc.on_packet_acked(p.size, p.time_sent, now, srtt, min_rtt)
                for j in range(p.frame_count):
                    handler.on_frame_acked(space, p, &p.frames[j])
                if p.largest_acked_sent != UINT64_MAX:
                    handler.on_ack_of_ack(space, p.largest_acked_sent)
        self._detect_lost(space, now, handler)
        # RFC 9002 A.7: reset the backoff unless a client is unsure the
        # server validated its address.
        if self.peer_completed_address_validation:
            self.pto_count = 0
        log.trim()
        self._update_pacer()
        return 0

    cdef void _remove_bytes(self, SentPacketLog log, uint64_t size) noexcept:
        if size >= log.bytes_in_flight:
            log.bytes_in_flight = 0
        else:
            log.bytes_in_flight -= size
        if size >= self.bytes_in_flight:
            self.bytes_in_flight = 0
        else:
            self.bytes_in_flight -= size

    cdef void on_ecn_ce(self, int space, int64_t time_sent, int64_t now) noexcept:
        """The peer reported more ECN-CE marks (RFC 9002 §7.1); `time_sent`
        is the send time of the largest acknowledged packet."""
        self.cc.on_congestion_event(time_sent, now)
        self._update_pacer()

    # -- loss detection ----------------------------------------------------

    cdef int _detect_lost(self, int space, int64_t now, FrameHandler handler) except -1:
        # RFC 9002 A.10 DetectAndRemoveLostPackets, plus the congestion
        # signals of A.11 OnPacketsLost.
        self.loss_time[space] = TIME_NONE
        cdef uint64_t largest_acked = self.largest_acked[space]
        cdef SentPacketLog log = self._log(space)
        if largest_acked == UINT64_MAX or not log.has_sent:
            return 0
        cdef int64_t loss_delay = self.rtt.loss_delay()
        cdef int64_t lost_send_time = now - loss_delay
        cdef uint64_t hi = largest_acked if largest_acked < log.largest_sent else log.largest_sent
        cdef int64_t pc_duration = (self.rtt.pto_base() + self.max_ack_delay) * PERSISTENT_CONGESTION_THRESHOLD
        cdef int64_t latest_lost_sent = INT64_MAX
        cdef bint congestion = False
        cdef bint persistent = False
        cdef int64_t run_start = TIME_NONE
        cdef int64_t when
        cdef uint64_t pn = log.first_pn
        cdef SentPacket* p
        cdef uint8_t j
        while pn <= hi and pn < log.end_pn:
            p = log.get(pn)
            pn += 1
            if p.state == PACKET_ACKED:
                run_start = TIME_NONE  # an ACK in between ends the period
                continue
            if p.state != PACKET_OUTSTANDING:
                continue
            if p.time_sent <= lost_send_time or largest_acked >= p.pn + PACKET_THRESHOLD:
                p.state = PACKET_LOST
                if p.ack_eliciting:
                    log.ack_eliciting_in_flight -= 1
                if p.in_flight:
                    self._remove_bytes(log, p.size)
                    self.cc.on_packet_lost(p.size)
                    self.packets_lost += 1
                    self.bytes_lost += p.size
                    if not p.is_mtu_probe:
                        # A lost PMTU probe is no congestion signal (RFC 8899 §4.1).
                        if not congestion or p.time_sent > latest_lost_sent:
                            latest_lost_sent = p.time_sent
                        congestion = True
                        if p.ack_eliciting and self.rtt.has_sample and p.time_sent > self.rtt.first_sample_time:
                            if run_start == TIME_NONE:
                                run_start = p.time_sent
                            elif p.time_sent - run_start > pc_duration:
                                persistent = True
                for j in range(p.frame_count):
                    handler.on_frame_lost(space, p, &p.frames[j])
            else:
                when = _add_sat(p.time_sent, loss_delay)
                if when < self.loss_time[space]:
                    self.loss_time[space] = when
        if congestion:
            self.cc.on_congestion_event(latest_lost_sent, now)
            if persistent:
                # RFC 9002 §7.6.2: collapse the window.
                self.persistent_congestion_events += 1
                self.cc.on_persistent_congestion(now)
        return 0

    cdef int64_t _earliest_loss_time(self, int* space_out) noexcept:
        cdef int64_t t = TIME_NONE
        cdef int s
        space_out[0] = -1
        for s in range(SPACE_COUNT):
            if self.loss_time[s] < t:
                t = self.loss_time[s]
                space_out[0] = s
        return t

    cdef int64_t _pto_time(self, int64_t now, int* space_out) noexcept:
        # RFC 9002 A.8 GetPtoTimeAndSpace.
        cdef int64_t duration = _shift_sat(self.rtt.pto_base(), self.pto_count)
        cdef int64_t timeout = TIME_NONE, t
        cdef int s
        space_out[0] = -1
        if (self.initial_log.ack_eliciting_in_flight + self.handshake_log.ack_eliciting_in_flight
                + self.application_log.ack_eliciting_in_flight) == 0:
            # Anti-deadlock PTO of a client whose address is not validated yet.
            space_out[0] = SPACE_HANDSHAKE if self.has_handshake_keys else SPACE_INITIAL
            return _add_sat(now, duration)
        for s in range(SPACE_COUNT):
            if self.discarded[s] or self._log(s).ack_eliciting_in_flight == 0:
                continue
            if s == SPACE_APPLICATION:
                if not self.handshake_confirmed:
                    break  # no 1-RTT probes before the handshake is confirmed
                duration = _add_sat(duration, _shift_sat(self.max_ack_delay, self.pto_count))
            t = _add_sat(self.time_of_last_ack_eliciting[s], duration)
            if t < timeout:
                timeout = t
                space_out[0] = s
        return timeout

    cdef int64_t get_loss_detection_timer(self, int64_t now, bint has_handshake_keys, bint amplification_limited) noexcept:
        """When `on_loss_detection_timeout` is due (RFC 9002 A.8), or TIME_NONE.

        :param now: current time; the client's anti-deadlock PTO counts from it.
        :param has_handshake_keys: the engine holds Handshake keys (stored
            in `has_handshake_keys`, used by the next timeout).
        :param amplification_limited: a server blocked by the
            anti-amplification limit (RFC 9000 §8.1) arms no PTO.
        """
        if has_handshake_keys:
            self.has_handshake_keys = True
        cdef int space
        cdef int64_t t = self._earliest_loss_time(&space)
        if t != TIME_NONE:
            return t
        if amplification_limited:
            return TIME_NONE
        if (self.initial_log.ack_eliciting_in_flight + self.handshake_log.ack_eliciting_in_flight
                + self.application_log.ack_eliciting_in_flight) == 0 and self.peer_completed_address_validation:
            return TIME_NONE
        return self._pto_time(now, &space)

    cdef int on_loss_detection_timeout(self, int64_t now, FrameHandler handler) except -2:
        """RFC 9002 A.9 OnLossDetectionTimeout.

        :returns: the space in which to send `probes_to_send` ack-eliciting
            probes now, or -1 when only time-threshold loss detection ran.
        """
        cdef int space
        cdef int64_t t = self._earliest_loss_time(&space)
        self.probes_to_send = 0
        if t != TIME_NONE:
            self._detect_lost(space, now, handler)
            self._log(space).trim()
            self._update_pacer()
            return -1
        if (self.initial_log.ack_eliciting_in_flight + self.handshake_log.ack_eliciting_in_flight
                + self.application_log.ack_eliciting_in_flight) == 0:
            if self.peer_completed_address_validation:
                return -1
            # Client anti-deadlock probe: one padded Initial or a Handshake packet.
            space = SPACE_HANDSHAKE if self.has_handshake_keys else SPACE_INITIAL
            self.probes_to_send = 1
        else:
            if self._pto_time(now, &space) == TIME_NONE:
                return -1
            self.probes_to_send = 2  # RFC 9002 §6.2.4: one or two; two survive a single loss
        self.pto_count += 1
        self.pto_events += 1
        return space

    # -- keys discarded, path changed ----------------------------------------

    cdef void discard_space(self, int space, int64_t now) noexcept:
        """RFC 9002 §6.4 / A.10 OnPacketNumberSpaceDiscarded: forget the
        space's records without acknowledging or losing them."""
        cdef SentPacketLog log = self._log(space)
        cdef uint64_t pn = log.first_pn
        cdef SentPacket* p
        while pn < log.end_pn:
            p = log.get(pn)
            if p.state == PACKET_OUTSTANDING and p.in_flight and not (log.has_pending and pn == log.pending_pn):
                p.state = PACKET_DISCARDED
                self._remove_bytes(log, p.size)
                self.cc.on_packet_discarded(p.size)
            pn += 1
        log.clear()
        self.loss_time[space] = TIME_NONE
        self.time_of_last_ack_eliciting[space] = TIME_NONE
        self.discarded[space] = True
        self.pto_count = 0

    cdef void on_path_change(self) noexcept:
        """New path (RFC 9000 §9.4): restart RTT and congestion state; bytes
        already in flight stay counted so their ACKs balance."""
        self.rtt.reset()
        self.cc.reset()
        self.pacer.reset()
        self._update_pacer()

    # -- Python-visible mirrors (tests, slow path) ---------------------------

    def send(self, int space, uint64_t pn, int64_t now, uint32_t size=1200, bint ack_eliciting=True,
             bint in_flight=True, frames=(), largest_acked_sent=None, bint is_mtu_probe=False):
        """Prepare and record one packet; `frames` are
        `(kind, stream_id, offset, length, fin)` tuples (at most 6)."""
        cdef SentPacket* p = self.prepare_packet(space, pn)
        p.size = size
        p.ack_eliciting = ack_eliciting
        p.in_flight = in_flight
        p.is_mtu_probe = is_mtu_probe
        if largest_acked_sent is not None:
            p.largest_acked_sent = largest_acked_sent
        if len(frames) > MAX_FRAME_RECORDS:
            raise ValueError("too many frames")
        for kind, stream_id, offset, length, fin in frames:
            p.frames[p.frame_count].kind = kind
            p.frames[p.frame_count].stream_id = stream_id
            p.frames[p.frame_count].offset = offset
            p.frames[p.frame_count].length = length
            p.frames[p.frame_count].fin = fin
            p.frame_count += 1
        self.on_packet_sent(space, p, now)

    def not_sent(self, int space, uint64_t pn):
        self.on_packet_not_sent(space, pn)

    def ack(self, int space, ranges, int64_t now, int64_t ack_delay=0, FrameHandler handler=None):
        """`ranges`: `(start, end)` pairs or `range` objects, largest first.
        Returns what `on_ack_received` returns."""
        if handler is None:
            handler = FrameHandler()
        cdef Py_ssize_t n = len(ranges), i
        cdef uint64_t* starts = <uint64_t*>PyMem_Malloc((n + 1) * sizeof(uint64_t))
        cdef uint64_t* ends = <uint64_t*>PyMem_Malloc((n + 1) * sizeof(uint64_t))
        try:
            if starts == NULL or ends == NULL:
                raise MemoryError()
            for i, r in enumerate(ranges):
                if isinstance(r, range):
                    starts[i], ends[i] = r.start, r.stop
                else:
                    starts[i], ends[i] = r
            return self.on_ack_received(space, starts, ends, n, ack_delay, now, handler)
        finally:
            PyMem_Free(starts)
            PyMem_Free(ends)

    def ecn_ce(self, int space, int64_t time_sent, int64_t now):
        self.on_ecn_ce(space, time_sent, now)

    def loss_detection_timer(self, int64_t now, bint has_handshake_keys=False, bint amplification_limited=False):
        return self.get_loss_detection_timer(now, has_handshake_keys, amplification_limited)

    def timeout(self, int64_t now, FrameHandler handler=None):
        if handler is None:
            handler = FrameHandler()
        return self.on_loss_detection_timeout(now, handler)

    def discard(self, int space, int64_t now):
        self.discard_space(space, now)

    def path_change(self):
        self.on_path_change()

    def py_pto_duration(self, int space):
        return self.pto_duration(space)

    def py_ack_eliciting_in_flight(self, int space):
        return self.ack_eliciting_in_flight(space)

    def packet_state(self, int space, uint64_t pn):
        """The PACKET_* state of `pn`, or None when the log no longer holds it."""
        cdef SentPacket* p = self._log(space).get(pn)
        return None if p == NULL else p.state

    def get_loss_time(self, int space):
        return self.loss_time[space]

    def space_bytes_in_flight(self, int space):
        return self._log(space).bytes_in_flight


PACKET_STATES = {
    "outstanding": PACKET_OUTSTANDING,
    "acked": PACKET_ACKED,
    "lost": PACKET_LOST,
    "discarded": PACKET_DISCARDED,
    "unused": PACKET_UNUSED,
}
FRAME_KINDS = {
    "stream": FRAME_STREAM,
    "crypto": FRAME_CRYPTO,
    "max_data": FRAME_MAX_DATA,
    "ping": FRAME_PING,
}
