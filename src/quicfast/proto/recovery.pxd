# Loss recovery for the engine: RTT estimation, sent-packet records, ACK
# processing, loss detection, the PTO timer and the congestion signals
# derived from them. Implements RFC 9002 §5 (RTT), §6 (loss detection, PTO),
# §7 (congestion signals, persistent congestion) and Appendix A.
#
# Times are int64_t nanoseconds passed in by the caller; TIME_NONE
# (INT64_MAX) means "no timer". Sizes are bytes.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from quicfast.proto.congestion cimport CongestionController, Pacer

cdef extern from *:
    """
    #define QF_TIME_NONE INT64_MAX
    """
    int64_t TIME_NONE "QF_TIME_NONE"

cdef enum:
    SPACE_INITIAL = 0
    SPACE_HANDSHAKE = 1
    SPACE_APPLICATION = 2
    SPACE_COUNT = 3
    # MAX_FRAME_RECORDS is how many frames one SentPacket remembers.
    MAX_FRAME_RECORDS = 6

# SentPacket.state values. PACKET_UNUSED marks a slot of the log whose pn
# was never sent (skipped, or prepared and abandoned); the engine never sees it.
cdef enum:
    PACKET_OUTSTANDING = 0
    PACKET_ACKED = 1
    PACKET_LOST = 2
    PACKET_DISCARDED = 3
    PACKET_UNUSED = 4

cdef enum FrameKind:
    FRAME_STREAM = 1
    FRAME_CRYPTO = 2
    FRAME_RESET_STREAM = 3
    FRAME_STOP_SENDING = 4
    FRAME_MAX_DATA = 5
    FRAME_MAX_STREAM_DATA = 6
    FRAME_MAX_STREAMS_BIDI = 7
    FRAME_MAX_STREAMS_UNI = 8
    FRAME_NEW_CONNECTION_ID = 9
    FRAME_RETIRE_CONNECTION_ID = 10
    FRAME_HANDSHAKE_DONE = 11
    FRAME_NEW_TOKEN = 12
    FRAME_DATA_BLOCKED = 13
    FRAME_STREAM_DATA_BLOCKED = 14
    FRAME_STREAMS_BLOCKED = 15
    FRAME_PATH_CHALLENGE = 16
    FRAME_PATH_RESPONSE = 17
    FRAME_PING = 18
    FRAME_ACK_FREQUENCY = 19
    FRAME_DATAGRAM = 20
    FRAME_OTHER = 21


cdef struct FrameRecord:
    # kind is a FrameKind.
    uint8_t kind
    # fin is the STREAM frame's FIN bit.
    uint8_t fin
    # stream_id is the stream id, or the crypto level, or a sequence number.
    int64_t stream_id
    # offset is the data offset (STREAM/CRYPTO) or a kind-specific value.
    uint64_t offset
    # length is the data length (STREAM/CRYPTO) or a kind-specific value.
    uint64_t length


cdef struct SentPacket:
    # pn is the packet number.
    uint64_t pn
    # time_sent is when on_packet_sent recorded it (ns).
    int64_t time_sent
    # size is the bytes on the wire counted in flight (0 if not in flight).
    uint32_t size
    # ack_eliciting is 1 when the packet elicits an ACK.
    uint8_t ack_eliciting
    # in_flight is 1 when the packet counts toward bytes in flight.
    uint8_t in_flight
    # is_mtu_probe is 1 for a PMTU probe (its loss is no congestion signal).
    uint8_t is_mtu_probe
    # state is a PACKET_* value.
    uint8_t state
    # largest_acked_sent is the largest pn this packet's ACK frame
    # acknowledged, or UINT64_MAX when it carried none ("ack of ack").
    uint64_t largest_acked_sent
    # frame_count is the number of valid entries in frames.
    uint8_t frame_count
    # frames are the retransmittable frames the packet carried.
    FrameRecord frames[MAX_FRAME_RECORDS]


cdef class FrameHandler:
    # The engine's Connection subclasses this. Every frame of every sent
    # packet gets at most one of on_frame_acked / on_frame_lost, never both
    # and never twice; discarded spaces get neither.
    cdef void on_frame_acked(self, int space, SentPacket* packet, FrameRecord* frame)
    cdef void on_frame_lost(self, int space, SentPacket* packet, FrameRecord* frame)
    cdef void on_ack_of_ack(self, int space, uint64_t largest_acked_sent)


cdef class RttEstimator:
    # latest_rtt, smoothed_rtt, rttvar and min_rtt are RFC 9002 §5 values (ns);
    # first_sample_time is when the first sample was taken (TIME_NONE before).
    cdef public int64_t latest_rtt, smoothed_rtt, rttvar, min_rtt, first_sample_time
    # has_sample is set by the first update().
    cdef public bint has_sample

    cdef void reset(self) noexcept
    cdef void update(self, int64_t latest_rtt, int64_t ack_delay, bint handshake_confirmed, int64_t max_ack_delay) noexcept
    cdef int64_t pto_base(self) noexcept
    cdef int64_t loss_delay(self) noexcept


cdef class SentPacketLog:
    # Records of one packet-number space, indexed by pn. Storage is a list of
    # fixed blocks of SLOTS_PER_BLOCK records: a SentPacket* stays valid until
    # the log forgets that pn (after it is acked/lost and every older packet
    # is settled), even while newer packets are prepared.
    # blocks[i] holds pns [base_pn + i*SLOTS_PER_BLOCK, ... + SLOTS_PER_BLOCK).
    cdef SentPacket** blocks
    cdef Py_ssize_t block_count, block_capacity
    # spare_block is a freed block kept for reuse (or NULL).
    cdef SentPacket* spare_block
    # base_pn is the pn of slot 0 of blocks[0].
    cdef uint64_t base_pn
    # Slots [first_pn, end_pn) are held; pns below first_pn are forgotten.
    cdef public uint64_t first_pn, end_pn
    # largest_sent is the largest pn passed to on_packet_sent (valid if has_sent).
    cdef public uint64_t largest_sent
    cdef public bint has_sent
    # pending_pn is a prepared, not yet sent pn (valid if has_pending).
    cdef uint64_t pending_pn
    cdef bint has_pending
    # unused_count is the number of PACKET_UNUSED slots held.
    cdef Py_ssize_t unused_count
    # ack_eliciting_in_flight counts outstanding ack-eliciting packets.
    cdef public Py_ssize_t ack_eliciting_in_flight
    # bytes_in_flight is this space's share of the connection's bytes in flight.
    cdef public uint64_t bytes_in_flight

    cdef SentPacket* get(self, uint64_t pn) noexcept
    cdef SentPacket* prepare(self, uint64_t pn) except NULL
    cdef int _ensure(self, uint64_t pn) except -1
    cdef void _release_block(self, SentPacket* block) noexcept
    cdef void trim(self) noexcept
    cdef void clear(self) noexcept


cdef class LossRecovery:
    cdef public RttEstimator rtt
    cdef public CongestionController cc
    cdef public Pacer pacer
    # pto_count is the number of PTOs since the last acknowledgment.
    cdef public int pto_count
    # probes_to_send is set by on_loss_detection_timeout: ack-eliciting
    # packets the engine must send now in the returned space (1 or 2).
    cdef public int probes_to_send
    # max_ack_delay is the peer's max_ack_delay transport parameter (ns).
    cdef public int64_t max_ack_delay
    # is_client selects the client's address validation rules.
    cdef public bint is_client
    cdef public bint handshake_confirmed, peer_completed_address_validation
    # has_handshake_keys: the engine holds Handshake keys (client anti-deadlock PTO).
    cdef public bint has_handshake_keys
    # Statistics.
    cdef public uint64_t bytes_in_flight, packets_sent, packets_lost, bytes_sent, bytes_lost
    cdef public uint64_t spurious_losses, persistent_congestion_events, pto_events
    # Per-space state, RFC 9002 A.3.
    # initial_log, handshake_log, application_log hold each space's records.
    cdef public SentPacketLog initial_log, handshake_log, application_log
    cdef int64_t loss_time[3]
    cdef int64_t time_of_last_ack_eliciting[3]
    # largest_acked is UINT64_MAX until the space's first ACK.
    cdef uint64_t largest_acked[3]
    cdef bint discarded[3]

    cdef SentPacketLog _log(self, int space)
    cdef SentPacket* prepare_packet(self, int space, uint64_t pn) except NULL
    cdef void on_packet_sent(self, int space, SentPacket* packet, int64_t now) noexcept
    cdef void on_packet_not_sent(self, int space, uint64_t pn) noexcept
    cdef int on_ack_received(self, int space, const uint64_t* range_starts, const uint64_t* range_ends, Py_ssize_t range_count, int64_t ack_delay, int64_t now, FrameHandler handler) except -1
    cdef void on_ecn_ce(self, int space, int64_t time_sent, int64_t now) noexcept
    cdef int _detect_lost(self, int space, int64_t now, FrameHandler handler) except -1
    cdef int64_t get_loss_detection_timer(self, int64_t now, bint has_handshake_keys, bint amplification_limited) noexcept
    cdef int on_loss_detection_timeout(self, int64_t now, FrameHandler handler) except -2
    cdef void discard_space(self, int space, int64_t now) noexcept
    cdef void on_path_change(self) noexcept
    cdef bint ack_eliciting_in_flight(self, int space) noexcept
    cdef int64_t pto_duration(self, int space) noexcept
    cdef int64_t _pto_time(self, int64_t now, int* space_out) noexcept
    cdef int64_t _earliest_loss_time(self, int* space_out) noexcept
    cdef void _update_pacer(self) noexcept
    cdef void _remove_bytes(self, SentPacketLog log, uint64_t size) noexcept
