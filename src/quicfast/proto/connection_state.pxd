# The state a QUIC connection's parts share (RFC 9000, 9001, 9002): the
# per-stream and per-packet-number-space records, and ConnectionState, the
# base of the engine's class chain
#   ConnectionState -> PacketBuilder -> PacketReceiver -> Connection
# (connection_state, packet_builder, packet_receiver, connection), one module
# per concern as quinn splits its connection/. Every attribute of the engine
# is declared here, with the stream and connection-ID bookkeeping, closing
# and handshake-confirmation helpers that every layer uses.

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, INT64_MAX, UINT64_MAX
from libc.string cimport memcpy, memset
from libc.math cimport llround

from quicfast.proto.buffer cimport (
    Reader, Writer, writer_varint, writer_uint8, writer_bytes, reader_varint, reader_uint8, reader_skip, write_varint, varint_size,
    write_varint_fixed,
)
from quicfast.proto.crypto cimport PacketProtection, Aead, AEAD_TAG_SIZE, SAMPLE_SIZE
from quicfast.proto.packet cimport (
    PacketHeader, parse_header, decode_packet_number, packet_number_length, long_type_bits,
    PACKET_INITIAL, PACKET_ZERO_RTT, PACKET_HANDSHAKE, PACKET_RETRY, PACKET_ONE_RTT,
    PACKET_VERSION_NEGOTIATION, VERSION_1, VERSION_2, MIN_INITIAL_DATAGRAM_SIZE,
)
from quicfast.proto.ranges cimport RangeSet
from quicfast.proto.streams cimport SendBuffer, RecvBuffer
from quicfast.proto.stream_table cimport StreamTable
from quicfast.proto.flow_control cimport ReceiveWindow, SendWindow
from quicfast.proto.recovery cimport (
    FrameHandler, LossRecovery, SentPacket, FrameRecord, MAX_FRAME_RECORDS,
    SPACE_INITIAL, SPACE_HANDSHAKE, SPACE_APPLICATION,
    FRAME_STREAM, FRAME_CRYPTO, FRAME_RESET_STREAM, FRAME_STOP_SENDING, FRAME_MAX_DATA,
    FRAME_MAX_STREAM_DATA, FRAME_MAX_STREAMS_BIDI, FRAME_MAX_STREAMS_UNI,
    FRAME_NEW_CONNECTION_ID, FRAME_RETIRE_CONNECTION_ID, FRAME_HANDSHAKE_DONE,
    FRAME_NEW_TOKEN, FRAME_DATA_BLOCKED, FRAME_STREAM_DATA_BLOCKED, FRAME_STREAMS_BLOCKED,
    FRAME_PATH_CHALLENGE, FRAME_PATH_RESPONSE, FRAME_PING, FRAME_ACK_FREQUENCY, FRAME_DATAGRAM, FRAME_OTHER,
)
from quicfast.proto.recovery cimport TIME_NONE
from libc.math cimport llround

cdef enum:
    SCRATCH_SIZE = 65536 + 64
    MAX_ACK_RANGES_PARSED = 256     # ranges beyond this in one ACK frame are skipped
    MAX_ACK_RANGES_SENT = 64        # RFC 9000 §13.2.4: bound what we report
    MAX_ACK_RANGES_TRACKED = 256    # ...and what we remember
    MAX_CRYPTO_BUFFER = 256 * 1024  # out-of-order CRYPTO data held per level
    MAX_DATAGRAM_QUEUE = 256        # DATAGRAM frames queued each way
    MAX_PEER_CIDS = 8               # active_connection_id_limit we advertise ceiling
    MAX_PENDING_PATH_RESPONSES = 4
    MAX_PENDING_RETIREMENTS = 64    # RETIRE_CONNECTION_ID frames we may owe
    CLOSE_RESEND_INTERVAL_NS = 50000000
    # draft-ietf-quic-ack-frequency: the min_ack_delay we advertise (µs; our
    # ACK timer works in event-loop ticks of about 1 ms), and the most
    # ack-eliciting packets we ask a peer to receive before it ACKs.
    MIN_ACK_DELAY_US = 1000
    MAX_ACK_ELICITING_THRESHOLD_ASKED = 10
    MAX_ACK_ELICITING_THRESHOLD_HONOURED = 256
    PMTUD_START_RTTS = 5            # smoothed RTTs from handshake confirmation to the first MTU probe

cdef inline int64_t to_ns(double t) noexcept:
    # Round, not truncate: get_timer() returns t_ns / 1e9, and truncating that
    # back can give t_ns - 1, so handle_timer(get_timer()) would find nothing
    # due and a driver would spin at the same instant.
    return <int64_t>llround(t * 1e9)

# Connection states.
cdef enum State:
    S_FIRSTFLIGHT = 0
    S_CONNECTED = 1
    S_CLOSING = 2
    S_DRAINING = 3
    S_TERMINATED = 4


cdef class Stream:
    cdef readonly int64_t stream_id
    # send/recv are None for the half a unidirectional stream lacks.
    cdef SendBuffer send
    cdef RecvBuffer recv
    cdef SendWindow send_window
    cdef ReceiveWindow recv_window
    # reset_code is the RESET_STREAM code we sent (-1 none); reset_acked once acked.
    cdef int64_t reset_code
    cdef bint reset_pending, reset_acked
    # stop_code is the STOP_SENDING code we sent (-1 none).
    cdef int64_t stop_code
    cdef bint stop_pending
    # peer_reset: the peer reset its sending half; peer_stopped: it sent STOP_SENDING.
    cdef bint peer_reset, peer_stopped
    cdef bint max_stream_data_pending, blocked_pending
    # queued: in the connection's send queue; readable_reported: in its
    # readable list (an event pending this batch). Both are intrusive lists:
    # next_send / next_readable link to the next stream (None at the tail).
    cdef bint queued, readable_reported
    cdef Stream next_send, next_readable
    # discarded: forgotten by the connection (both halves closed); a stream
    # still linked from a list is skipped when the list is walked.
    cdef bint discarded
    # held: a local stream opened past the peer's stream limit (open_stream
    # with past_limit) that has frames to send; it joins the send queue when
    # MAX_STREAMS covers it (RFC 9000 §4.6 forbids sending on it before).
    cdef bint held
    cdef bint recv_done_reported

    cdef bint send_closed(self)
    cdef bint recv_closed(self)
    cdef bint wants_send(self)


cdef class PacketSpace:
    cdef PacketProtection send_keys
    cdef PacketProtection recv_keys
    cdef RangeSet received            # packet numbers to acknowledge
    cdef uint64_t ack_floor            # packets below are duplicates (already acked-of-acked)
    cdef int64_t largest_received_time
    cdef uint64_t largest_received     # UINT64_MAX before the first
    cdef int ack_eliciting_unacked     # ack-eliciting packets since our last ACK
    cdef bint ack_immediately
    cdef int64_t ack_deadline
    cdef uint64_t next_pn
    cdef uint64_t largest_acked_by_peer  # UINT64_MAX before the first ACK
    cdef SendBuffer crypto_send
    cdef RecvBuffer crypto_recv
    cdef bint discarded
    cdef int probes
    cdef uint64_t ecn_ce_seen
    # ecn_received counts received packets by codepoint: [ECT(0), ECT(1), CE].
    cdef uint64_t ecn_received[3]
    # peer_ecn holds the peer's last reported counts, [ECT(0), ECT(1), CE].
    cdef uint64_t peer_ecn[3]
    # ecn_first_marked_pn is the first pn we sent marked ECT(0) (UINT64_MAX: none).
    cdef uint64_t ecn_first_marked_pn

    cdef bint ack_due(self, int64_t now)


cdef class ConnectionState(FrameHandler):
    cdef readonly bint is_client
    cdef object config
    cdef object tls_config
    cdef object _tls
    cdef readonly uint32_t version
    cdef int state
    # _events: pending events; next_event() takes them from _events_head on,
    # drain_events() hands the whole list over.
    cdef list _events
    cdef Py_ssize_t _events_head
    cdef list spaces
    cdef PacketProtection zero_rtt_send, zero_rtt_recv
    # recovery is readable for diagnostics and tests (RTT, window, pacer).
    cdef readonly LossRecovery recovery
    # Connection IDs.
    cdef readonly bytes host_cid
    cdef int host_cid_len
    cdef readonly bytes peer_cid
    cdef bytes original_dcid, retry_scid, initial_peer_cid
    cdef list host_cids          # [seq, cid, token, retired_flag]
    cdef uint64_t host_cid_seq
    cdef list peer_cids          # [seq, cid, token]
    cdef uint64_t peer_cid_seq_in_use, peer_retire_prior_to
    cdef list retire_cid_pending
    cdef list new_tokens_pending
    cdef list new_cid_pending
    cdef bytes stateless_reset_key
    cdef object stateless_reset_token_peer
    # Paths (a single path; migration is in the transport features issue).
    cdef public object peer_addr
    cdef bint address_validated
    cdef uint64_t bytes_received_unvalidated, bytes_sent_unvalidated
    cdef list path_responses
    # path_challenge is the PATH_CHALLENGE data we wait to see echoed (None when
    # no validation runs); path_challenge_pending: it still has to be sent.
    cdef bytes path_challenge
    cdef bint path_challenge_pending
    # rx_non_probing: the last packet carried a non-probing frame (RFC 9000 §9.1).
    cdef bint rx_non_probing
    cdef readonly uint64_t migrations
    # Handshake.
    cdef bint handshake_complete, handshake_confirmed, handshake_done_pending
    cdef bint peer_params_applied
    cdef bint received_first_packet
    cdef bytes retry_token
    cdef bint retry_received
    cdef object peer_params
    cdef object local_params
    cdef object session_ticket
    cdef bint early_data_offered
    cdef bint zero_rtt_rejected_reported
    # Streams and flow control.
    cdef StreamTable streams
    # The send queue: streams with something to send, in turn order.
    cdef Stream send_head, send_tail
    # The readable list: streams with news for the driver, in arrival order.
    cdef Stream readable_head, readable_tail
    cdef uint64_t next_bidi, next_uni          # our next stream ids
    cdef uint64_t peer_max_bidi, peer_max_uni  # streams the peer lets us open (counts)
    cdef uint64_t local_max_bidi, local_max_uni  # streams we let the peer open (counts)
    cdef uint64_t peer_opened_bidi, peer_opened_uni  # highest count the peer opened
    cdef uint64_t closed_peer_bidi, closed_peer_uni
    cdef bint max_streams_bidi_pending, max_streams_uni_pending
    cdef bint streams_blocked_bidi_pending, streams_blocked_uni_pending
    # streams_blocked_*_reported: 1 + the limit a STREAMS_BLOCKED was queued for (0: none).
    cdef uint64_t streams_blocked_bidi_reported, streams_blocked_uni_reported
    cdef SendWindow conn_send_window
    # The peer's initial stream limits (transport parameters) and our own
    # window settings, kept as C values: every new stream reads them.
    cdef uint64_t peer_initial_max_stream_data_uni, peer_initial_max_stream_data_bidi_local
    cdef uint64_t peer_initial_max_stream_data_bidi_remote
    cdef uint64_t stream_receive_window, stream_receive_window_max
    cdef ReceiveWindow conn_recv_window
    cdef uint64_t conn_received_total    # sum of every stream's highest_offset
    cdef uint64_t conn_sent_total        # new stream bytes sent (flow-controlled)
    cdef bint max_data_pending, data_blocked_pending
    # Datagrams.
    cdef object datagrams_out
    # datagrams_dropped counts DATAGRAM frames dropped before sending (queue
    # full, or too large after the path size shrank).
    cdef readonly uint64_t datagrams_dropped
    cdef uint64_t peer_max_datagram_frame_size
    # Timers and idle.
    cdef int64_t idle_timeout_ns
    cdef int64_t last_activity
    cdef int64_t close_deadline
    cdef int64_t created
    cdef int64_t last_close_sent
    # close_reply_due: a packet arrived while closing; answer it (RFC 9000 §10.2.1).
    cdef bint close_reply_due
    cdef bint ping_pending
    cdef int64_t keep_alive_ns
    # keep_alive_sent: when the last keep-alive PING was scheduled.
    cdef int64_t keep_alive_sent
    cdef int64_t pacing_until
    # Closing.
    cdef object close_frame          # (code, frame_type, reason, is_app)
    cdef object terminated_error
    # Outgoing datagram size.
    cdef readonly int max_datagram_size
    # ack_eliciting_threshold: ack-eliciting packets we receive before we ACK
    # (2, as RFC 9000 §13.2.2 says, until the peer asks for more).
    cdef readonly int ack_eliciting_threshold
    cdef int64_t local_max_ack_delay_ns
    # ACK frequency (draft-ietf-quic-ack-frequency). As receiver:
    # ack_frequency_next_seq is 1 + the largest sequence number applied;
    # ack_on_reordering is the Reordering Threshold != 0. As sender:
    # peer_min_ack_delay_us is the peer's min_ack_delay (-1: not supported),
    # ack_frequency_sent_threshold the threshold last asked for (-1: none),
    # at ack_frequency_sent_time, with sequence ack_frequency_seq - 1.
    cdef uint64_t ack_frequency_next_seq
    cdef bint ack_on_reordering
    cdef int64_t peer_min_ack_delay_us
    cdef int ack_frequency_sent_threshold
    cdef int64_t ack_frequency_sent_time
    cdef uint64_t ack_frequency_seq
    cdef bint ack_frequency_pending
    cdef int ack_delay_exponent_peer
    # Key update.
    cdef int key_phase
    cdef bytes send_secret_1rtt, recv_secret_1rtt
    cdef PacketProtection next_recv_keys, prev_recv_keys
    # prev_keys_discard_at: when prev_recv_keys go (RFC 9001 §6.5: three PTOs
    # after the first packet under the new keys); TIME_NONE while not armed.
    cdef int64_t prev_keys_discard_at
    cdef bint key_update_pending_confirm
    # packets_in_phase counts 1-RTT packets sent under the current send key;
    # key_update_after is when we start an update (RFC 9001 §6.6 limits).
    cdef uint64_t packets_in_phase
    cdef public uint64_t key_update_after
    # aead_confidentiality_limit / aead_integrity_limit are RFC 9001 §6.6's
    # limits for the negotiated AEAD (public so tests can lower them).
    cdef public uint64_t aead_confidentiality_limit, aead_integrity_limit
    cdef readonly uint64_t auth_failures, key_updates
    cdef uint64_t key_phase_first_pn
    cdef bint _last_packet_ack_eliciting
    # Scratch buffer for received datagrams (decrypted in place).
    cdef bytearray scratch
    cdef uint8_t* scratch_ptr
    # Stats.
    cdef readonly uint64_t packets_received, bytes_received_total, packets_dropped
    cdef readonly uint64_t datagrams_sent, bytes_sent_total
    # send_buffered: bytes written to the application's streams and not yet
    # acknowledged, all streams together (a reset stream holds none); the
    # asyncio shell's connection-wide send backpressure reads it.
    cdef readonly uint64_t send_buffered
    # tracer is the qlog ConnectionTracer, or None (then no qlog work is done).
    cdef object tracer
    cdef uint64_t last_lost_logged
    # clock_ns is the latest time any input carried (for events with no time of their own).
    cdef int64_t clock_ns
    # first_1rtt_pn is the first application-space pn sent with 1-RTT keys
    # (0-RTT packets share the space; their ACKs confirm nothing).
    cdef uint64_t first_1rtt_pn
    # rx_ecn is the ECN codepoint of the datagram being processed (0-3).
    cdef int rx_ecn
    # ecn_enabled: we mark ECT(0) and validate (RFC 9000 §13.4.2); cleared
    # for good when the path or the peer fails validation.
    cdef readonly bint ecn_enabled
    # DPLPMTUD (RFC 8899): pmtud_low is the largest size known to work,
    # pmtud_high the largest still worth trying, pmtud_probe the size of the
    # probe in flight (0: none), pmtud_probe_building the size being built now,
    # pmtud_start the time before which no probe is sent (ns).
    cdef readonly int pmtud_low, pmtud_high
    cdef int64_t pmtud_start
    cdef int pmtud_probe, pmtud_probe_building
    cdef bint pmtud_enabled
    cdef readonly uint64_t pmtud_black_holes
    cdef readonly uint64_t ecn_ce_reported

    cdef Stream _get_or_create_peer_stream(self, uint64_t sid, bint for_receive)
    cdef void _check_stream_id_receivable(self, uint64_t sid, uint64_t ftype) except *
    cdef Stream _create_stream(self, uint64_t sid)
    cdef Stream _stream_for_sending(self, uint64_t sid)
    cdef Stream _sending_stream(self, uint64_t sid)
    cdef void _queue_stream(self, Stream s)
    cdef void _reset_sending(self, Stream s, uint64_t error_code)
    cdef bint _stream_has_credit(self, uint64_t sid)
    cdef void _set_peer_stream_limit(self, bint uni, uint64_t limit)
    cdef void _append_to_send_queue(self, Stream s)
    cdef Stream _pop_send_queue(self)
    cdef void _mark_readable(self, Stream s)
    cdef void _requeue_blocked_streams(self)
    cdef void _requeue_all_stream_data(self)
    cdef void _maybe_discard_stream(self, Stream s)
    cdef void _issue_connection_ids(self)
    cdef void _setup_initial_keys(self, bytes dcid)
    cdef int _confirm_handshake(self, int64_t now) except -1
    cdef void _discard_space(self, int space_id, int64_t now)
    cdef void _enter_closing(self, object err)
    cdef void _terminate(self, object err)
    cdef int64_t _current_pto(self)
    cdef bint _server_amplification_blocked(self)
    cdef bint _client_has_no_handshake_keys(self)
    cdef void _qlog_packet(self, str name, int ptype, uint64_t pn, Py_ssize_t length, SentPacket* rec, int64_t now)
    cdef void _cache_peer_stream_limits(self, object params)
    # Implemented by Connection (TLS glue); the receiver calls it after CRYPTO data.
    cdef int _after_tls(self, int64_t now) except -1
