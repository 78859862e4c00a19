"""The QUIC connection state machine, sans I/O.

Implements RFC 9000 (frames §19, streams §2–4, connection IDs §5.1, the
handshake §7, address validation limits §8.1, idle timeout and closing §10,
error handling §11, packetisation §12–14), RFC 9001 §4–6 (CRYPTO levels,
key installation and discard, key update) and drives RFC 9002 recovery
through `quicfast.proto.recovery`.

A `Connection` is driven by three kinds of input, and the driver polls it in
this order after each one:

1. inputs: `receive_datagram(data, addr, now)`, `handle_timer(now)`;
   commands: `send_stream_data`, `read_stream`, `reset_stream`, `stop_stream`,
   `send_datagram_frame`, `close`;
2. `next_event()` until it returns None;
3. `datagrams_to_send(now)` (or the fast path `fill_send_buffer`) until it
   returns nothing, then `get_timer()` to re-arm the single timer.

Time is a float in seconds from an arbitrary origin (the driver's monotonic
clock); internally it is converted once to integer nanoseconds.

Theory of operation: received datagrams are copied once into a scratch
buffer, header protection and the AEAD are removed in place, and frames are
parsed straight out of that buffer. Stream bytes are copied once into the
stream's `RecvBuffer`. Outgoing packets are written frame by frame into the
caller's buffer and sealed in place; what each packet carried is remembered
as C `FrameRecord`s so that loss re-queues exactly those ranges.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
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

import collections
import os

from quicfast import errors
from quicfast.errors import TransportErrorCode as E
from quicfast.proto.events cimport (
    HandshakeCompleted, HandshakeConfirmed, StreamOpened, StreamDataAvailable, StreamReset,
    StopSendingReceived, StreamsAvailable, DatagramReceived, ConnectionIdIssued, ConnectionIdRetired,
    ZeroRTTRejected, ConnectionTerminated,
)
from quicfast.proto import crypto as _crypto
from quicfast.proto import transport_params as tp
from quicfast.proto.packet import encode_retry
from quicfast import tls

# Frame types (RFC 9000 §19, RFC 9221 §4, draft-ietf-quic-ack-frequency).
cdef enum:
    F_PADDING = 0x00
    F_PING = 0x01
    F_ACK = 0x02
    F_ACK_ECN = 0x03
    F_RESET_STREAM = 0x04
    F_STOP_SENDING = 0x05
    F_CRYPTO = 0x06
    F_NEW_TOKEN = 0x07
    F_STREAM = 0x08
    F_STREAM_END = 0x0F
    F_MAX_DATA = 0x10
    F_MAX_STREAM_DATA = 0x11
    F_MAX_STREAMS_BIDI = 0x12
    F_MAX_STREAMS_UNI = 0x13
    F_DATA_BLOCKED = 0x14
    F_STREAM_DATA_BLOCKED = 0x15
    F_STREAMS_BLOCKED_BIDI = 0x16
    F_STREAMS_BLOCKED_UNI = 0x17
    F_NEW_CONNECTION_ID = 0x18
    F_RETIRE_CONNECTION_ID = 0x19
    F_PATH_CHALLENGE = 0x1A
    F_PATH_RESPONSE = 0x1B
    F_CONNECTION_CLOSE = 0x1C
    F_CONNECTION_CLOSE_APP = 0x1D
    F_HANDSHAKE_DONE = 0x1E
    F_IMMEDIATE_ACK = 0x1F
    F_DATAGRAM = 0x30
    F_DATAGRAM_LEN = 0x31
    F_ACK_FREQUENCY = 0xAF

# Which packet types may carry each frame (RFC 9000 Table 3), as bitmasks of
# (1 << PacketType).
cdef enum:
    IH01 = (1 << PACKET_INITIAL) | (1 << PACKET_HANDSHAKE) | (1 << PACKET_ZERO_RTT) | (1 << PACKET_ONE_RTT)
    IH_1 = (1 << PACKET_INITIAL) | (1 << PACKET_HANDSHAKE) | (1 << PACKET_ONE_RTT)
    __01 = (1 << PACKET_ZERO_RTT) | (1 << PACKET_ONE_RTT)
    ___1 = (1 << PACKET_ONE_RTT)

cdef int frame_allowed_mask(uint64_t ftype) noexcept nogil:
    if ftype == F_PADDING or ftype == F_PING or ftype == F_CONNECTION_CLOSE:
        return IH01
    if ftype == F_ACK or ftype == F_ACK_ECN or ftype == F_CRYPTO:
        return IH_1
    if ftype == F_NEW_TOKEN or ftype == F_HANDSHAKE_DONE or ftype == F_PATH_RESPONSE:
        return ___1
    return __01   # IMMEDIATE_ACK and ACK_FREQUENCY too (draft-ietf-quic-ack-frequency)

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

cdef int64_t NS = 1000000000
cdef int64_t TIME_NONE = INT64_MAX

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

LEVEL_FOR_SPACE = (tls.Level.INITIAL, tls.Level.HANDSHAKE, tls.Level.ONE_RTT)

# qlog names (draft-ietf-quic-qlog-quic-events).
_QLOG_PACKET_NAMES = ("initial", "0RTT", "handshake", "retry", "1RTT", "version_negotiation")
_QLOG_SPACE_NAMES = ("initial", "handshake", "1RTT")
_QLOG_FRAME_NAMES = {
    FRAME_RESET_STREAM: "reset_stream", FRAME_STOP_SENDING: "stop_sending", FRAME_MAX_DATA: "max_data",
    FRAME_MAX_STREAM_DATA: "max_stream_data", FRAME_MAX_STREAMS_BIDI: "max_streams",
    FRAME_MAX_STREAMS_UNI: "max_streams", FRAME_NEW_CONNECTION_ID: "new_connection_id",
    FRAME_RETIRE_CONNECTION_ID: "retire_connection_id", FRAME_HANDSHAKE_DONE: "handshake_done",
    FRAME_NEW_TOKEN: "new_token", FRAME_PATH_CHALLENGE: "path_challenge", FRAME_PATH_RESPONSE: "path_response",
    FRAME_PING: "ping", FRAME_DATAGRAM: "datagram", FRAME_DATA_BLOCKED: "data_blocked",
    FRAME_STREAM_DATA_BLOCKED: "stream_data_blocked", FRAME_STREAMS_BLOCKED: "streams_blocked",
    FRAME_ACK_FREQUENCY: "ack_frequency",
}


def _params_for_qlog(params):
    out = {}
    for name in ("max_idle_timeout", "max_udp_payload_size", "initial_max_data",
                 "initial_max_stream_data_bidi_local", "initial_max_stream_data_bidi_remote",
                 "initial_max_stream_data_uni", "initial_max_streams_bidi", "initial_max_streams_uni",
                 "ack_delay_exponent", "max_ack_delay", "active_connection_id_limit", "max_datagram_frame_size"):
        out[name] = getattr(params, name, None)
    return out


@cython.no_gc       # its buffers and windows never refer back: no cycles to collect
@cython.freelist(128)
cdef class Stream:
    """One stream's send and receive halves (RFC 9000 §3)."""

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
    # queued: in the connection's send queue; readable_reported: event pending this batch.
    cdef bint queued, readable_reported
    cdef bint recv_done_reported

    def __cinit__(self, int64_t stream_id, bint can_send, bint can_recv, uint64_t send_limit,
                  uint64_t recv_window, uint64_t recv_max):
        self.stream_id = stream_id
        self.reset_code = -1
        self.stop_code = -1
        if can_send:
            self.send = SendBuffer()
            self.send_window = SendWindow(send_limit)
        if can_recv:
            self.recv = RecvBuffer()
            self.recv_window = ReceiveWindow(recv_window, recv_max)

    cdef bint send_closed(self):
        if self.send is None:
            return True
        if self.reset_code >= 0:
            return self.reset_acked
        return self.send.all_acked()

    cdef bint recv_closed(self):
        if self.recv is None:
            return True
        return self.peer_reset or self.recv.is_finished()

    cdef bint wants_send(self):
        if self.send is None:
            return False
        if self.reset_pending or self.stop_pending or self.max_stream_data_pending:
            return True
        if self.reset_code >= 0:
            return False
        return self.send.has_data_to_send(self.send_window.limit)


cdef class PacketSpace:
    """Per packet-number-space state: keys, ACK tracking and the CRYPTO stream."""

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

    def __cinit__(self):
        self.received = RangeSet(MAX_ACK_RANGES_TRACKED)
        self.largest_received = UINT64_MAX
        self.largest_acked_by_peer = UINT64_MAX
        self.ack_deadline = TIME_NONE
        self.crypto_send = SendBuffer()
        self.crypto_recv = RecvBuffer()
        self.ecn_first_marked_pn = UINT64_MAX

    cdef bint ack_due(self, int64_t now):
        return self.received.count > 0 and (self.ack_immediately or (self.ack_deadline != TIME_NONE and now >= self.ack_deadline))


cdef class Connection(FrameHandler):
    """A QUIC connection endpoint (client or server), sans I/O.

    :param is_client: which side this is.
    :param config: a `quicfast.Config`.
    :param tls_config: a `quicfast.tls.TLSConfig`.
    :param host_cid: our first connection ID (its length is the length of
        every CID we issue; 0-20 bytes).
    :param peer_cid: client: the random initial destination CID; server: the
        client's source CID.
    :param original_dcid: server: the DCID of the client's first Initial
        (before any Retry).
    :param server_name: client: SNI and certificate name.
    :param retry_scid: server: the SCID of the Retry we sent, if any.
    :param version: the QUIC version to use.
    :param stateless_reset_key: key our stateless reset tokens derive from.
    :param session_ticket: client: a ticket to resume with.
    :param tracer: a qlog `ConnectionTracer` (see `quicfast.qlog`), or None.
    """

    cdef readonly bint is_client
    cdef object config
    cdef object tls_config
    cdef object _tls
    cdef readonly uint32_t version
    cdef int state
    cdef object _events           # deque of events for next_event()
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
    cdef dict streams
    cdef object send_queue       # deque of stream ids with something to send
    # readable_streams: streams with news for the driver, in arrival order (dict as ordered set).
    cdef dict readable_streams
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
    # probe in flight (0: none), pmtud_probe_building the size being built now.
    cdef readonly int pmtud_low, pmtud_high
    cdef int pmtud_probe, pmtud_probe_building
    cdef bint pmtud_enabled
    cdef readonly uint64_t pmtud_black_holes
    cdef readonly uint64_t ecn_ce_reported

    def __init__(self, *, bint is_client, config, tls_config, bytes host_cid, bytes peer_cid,
                 bytes original_dcid=None, str server_name=None, bytes retry_scid=None,
                 version=None, bytes stateless_reset_key=None, session_ticket=None,
                 bytes token=b"", double now=0.0, object peer_addr=None, bint address_validated=False,
                 object tracer=None):
        cdef int i
        self.is_client = is_client
        self.config = config
        self.tls_config = tls_config
        self.version = version if version is not None else config.versions[0]
        self.state = S_FIRSTFLIGHT
        self._events = collections.deque()
        self.spaces = [PacketSpace(), PacketSpace(), PacketSpace()]
        self.recovery = LossRecovery(is_client, config.congestion_control, config.initial_packet_size)
        self.host_cid = host_cid
        self.host_cid_len = len(host_cid)
        self.peer_cid = peer_cid
        self.initial_peer_cid = peer_cid
        self.original_dcid = original_dcid if original_dcid is not None else peer_cid
        self.retry_scid = retry_scid
        self.stateless_reset_key = stateless_reset_key or os.urandom(32)
        self.host_cids = [[0, host_cid, _crypto.stateless_reset_token(self.stateless_reset_key, host_cid), False]]
        self.host_cid_seq = 1
        self.peer_cids = [[0, peer_cid, None]]
        self.retire_cid_pending = []
        self.new_tokens_pending = []
        self.new_cid_pending = []
        self.peer_addr = peer_addr
        # RFC 9000 §8.1: a Retry or NEW_TOKEN token proves the client's address.
        self.address_validated = is_client or retry_scid is not None or address_validated
        self.path_responses = []
        self.retry_token = token
        self.session_ticket = session_ticket
        self.streams = {}
        self.send_queue = collections.deque()
        self.readable_streams = {}
        self.next_bidi = 0 if is_client else 1
        self.next_uni = 2 if is_client else 3
        self.local_max_bidi = config.max_incoming_streams
        self.local_max_uni = config.max_incoming_uni_streams
        self.conn_send_window = SendWindow(0)
        self.stream_receive_window = config.initial_stream_receive_window
        self.stream_receive_window_max = config.max_stream_receive_window
        self.conn_recv_window = ReceiveWindow(config.initial_connection_receive_window, config.max_connection_receive_window)
        self.datagrams_out = collections.deque()
        self.created = to_ns(now)
        self.clock_ns = self.created
        self.ecn_enabled = True
        self.first_1rtt_pn = UINT64_MAX
        self.pmtud_enabled = not config.disable_path_mtu_discovery
        self.pmtud_low = config.initial_packet_size
        self.pmtud_high = config.max_packet_size
        self.last_activity = self.created
        self.idle_timeout_ns = to_ns(config.handshake_idle_timeout)
        self.close_deadline = TIME_NONE
        self.pacing_until = 0
        self.prev_keys_discard_at = TIME_NONE
        self.keep_alive_ns = to_ns(config.keep_alive_period)
        self.max_datagram_size = config.initial_packet_size
        self.ack_eliciting_threshold = config.ack_eliciting_threshold
        self.local_max_ack_delay_ns = to_ns(config.max_ack_delay)
        self.ack_delay_exponent_peer = 3
        self.ack_on_reordering = True
        self.peer_min_ack_delay_us = -1
        self.ack_frequency_sent_threshold = -1
        # The scratch buffer is only needed by the copying receive path; it is
        # allocated on first use so idle or in-place-fed connections stay small.
        self.scratch = None
        self.scratch_ptr = NULL
        # Initial keys come from the DCID of the client's current Initial: after
        # a Retry that is the Retry's SCID (RFC 9001 §5.2).
        self._setup_initial_keys(peer_cid if is_client else (retry_scid or self.original_dcid))

        self.local_params = tp.TransportParameters(
            max_idle_timeout=int(config.max_idle_timeout * 1000),
            max_udp_payload_size=max(config.max_packet_size, 1200),
            initial_max_data=config.initial_connection_receive_window,
            initial_max_stream_data_bidi_local=config.initial_stream_receive_window,
            initial_max_stream_data_bidi_remote=config.initial_stream_receive_window,
            initial_max_stream_data_uni=config.initial_stream_receive_window,
            initial_max_streams_bidi=config.max_incoming_streams,
            initial_max_streams_uni=config.max_incoming_uni_streams,
            ack_delay_exponent=3,
            max_ack_delay=int(config.max_ack_delay * 1000),
            active_connection_id_limit=config.active_connection_id_limit,
            initial_source_connection_id=host_cid,
            max_datagram_frame_size=config.max_datagram_frame_size if config.enable_datagrams else None,
            min_ack_delay=MIN_ACK_DELAY_US,
        )
        if not is_client:
            self.local_params.original_destination_connection_id = self.original_dcid
            self.local_params.retry_source_connection_id = retry_scid
            self.local_params.stateless_reset_token = self.host_cids[0][2]
        encoded = tp.encode_transport_parameters(self.local_params)
        if is_client:
            self._tls = tls.ClientHandshake(tls_config, server_name, encoded, session_ticket=session_ticket,
                                            early_data=bool(session_ticket is not None and config.allow_0rtt))
        else:
            self._tls = tls.ServerHandshake(tls_config, encoded, remote_address=peer_addr)
        self._tls.on_secret = self._on_secret
        self.tracer = tracer
        self.last_lost_logged = UINT64_MAX
        if self.tracer is not None:
            self.tracer.event("connectivity:connection_started", {
                "src_cid": host_cid, "dst_cid": peer_cid, "version": "%x" % self.version,
                "dst_ip": peer_addr[0] if peer_addr else None,
                "dst_port": peer_addr[1] if peer_addr else None}, now)
            self.tracer.event("transport:parameters_set", dict(
                owner="local", **_params_for_qlog(self.local_params)), now)
        if is_client:
            self._tls.on_session_ticket = self._on_session_ticket
            if session_ticket is not None and session_ticket.other_data:
                # RFC 9000 §7.4.1: 0-RTT data obeys the limits remembered with the ticket.
                self.set_remembered_transport_parameters(session_ticket.other_data)
        else:
            self._tls.ticket_app_data = encoded

    # ------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------

    def connect(self, addr, double now):
        """Client: start the handshake towards `addr`. Call `datagrams_to_send` next."""
        if not self.is_client:
            raise RuntimeError("connect() is for clients")
        self.peer_addr = addr
        self._tls.start()
        self._drain_tls_output()
        self.early_data_offered = self.zero_rtt_send is not None

    @property
    def original_destination_connection_id(self):
        return self.original_dcid

    @property
    def alpn_protocol(self):
        return self._tls.alpn_protocol

    @property
    def tls(self):
        """The TLS handshake object (cipher suite, peer certificates, session state)."""
        return self._tls

    @property
    def is_closed(self):
        return self.state == S_TERMINATED

    @property
    def is_handshake_complete(self):
        return self.handshake_complete

    @property
    def is_handshake_confirmed(self):
        return self.handshake_confirmed

    @property
    def peer_transport_parameters(self):
        return self.peer_params

    @property
    def host_connection_ids(self):
        """Every CID currently routing to this connection."""
        return [entry[1] for entry in self.host_cids if not entry[3]]

    @property
    def early_data_accepted(self):
        return bool(self._tls.early_data_accepted)

    @property
    def datagrams_supported(self):
        return self.peer_max_datagram_frame_size > 0 and self.config.enable_datagrams

    @property
    def max_datagram_payload(self):
        """Largest DATAGRAM payload we may send now (0 when unsupported)."""
        if not self.datagrams_supported:
            return 0
        # A 1-RTT packet holding only this frame: first byte, DCID, a packet
        # number of up to 4 bytes, the tag, the frame type and a 2-byte length.
        room = self.max_datagram_size - 1 - len(self.peer_cid) - 4 - AEAD_TAG_SIZE - 1 - 2
        return max(0, min(room, self.peer_max_datagram_frame_size - 3))

    def stats(self):
        """quic-go style ConnectionStats: RTT (seconds), cwnd, bytes and packets."""
        r = self.recovery
        return {
            "min_rtt": r.rtt.min_rtt / 1e9 if r.rtt.has_sample else None,
            "latest_rtt": r.rtt.latest_rtt / 1e9 if r.rtt.has_sample else None,
            "smoothed_rtt": r.rtt.smoothed_rtt / 1e9,
            "rtt_variance": r.rtt.rttvar / 1e9,
            "congestion_window": r.cc.congestion_window,
            "bytes_in_flight": r.cc.bytes_in_flight,
            "bytes_sent": self.bytes_sent_total,
            "packets_sent": r.packets_sent,
            "bytes_received": self.bytes_received_total,
            "packets_received": self.packets_received,
            "packets_lost": r.packets_lost,
            "bytes_lost": r.bytes_lost,
        }

    def next_event(self):
        """Pop the next event, or None."""
        if self.readable_streams:
            for sid in self.readable_streams:
                self._events.append(StreamDataAvailable(sid))
                (<Stream>self.streams[sid]).readable_reported = False
            self.readable_streams.clear()
        if self._events:
            return self._events.popleft()
        return None

    def get_timer(self):
        """When `handle_timer` should next be called (seconds), or None."""
        cdef int64_t t = self._next_timer()
        if t == TIME_NONE:
            return None
        return t / 1e9

    # Streams -----------------------------------------------------------

    def get_next_available_stream_id(self, bint is_unidirectional=False):
        """The id the next locally opened stream will get."""
        return self.next_uni if is_unidirectional else self.next_bidi

    def can_open_stream(self, bint is_unidirectional=False):
        """Whether the peer's stream limit lets us open one more stream now.

        When it does not, a STREAMS_BLOCKED frame (RFC 9000 §19.14) is queued,
        once per limit, so the peer learns that we want more streams."""
        if is_unidirectional:
            if self.next_uni // 4 < self.peer_max_uni:
                return True
            if self.streams_blocked_uni_reported != self.peer_max_uni + 1:
                self.streams_blocked_uni_reported = self.peer_max_uni + 1
                self.streams_blocked_uni_pending = self.state == S_CONNECTED or self.state == S_FIRSTFLIGHT
            return False
        if self.next_bidi // 4 < self.peer_max_bidi:
            return True
        if self.streams_blocked_bidi_reported != self.peer_max_bidi + 1:
            self.streams_blocked_bidi_reported = self.peer_max_bidi + 1
            self.streams_blocked_bidi_pending = self.state == S_CONNECTED or self.state == S_FIRSTFLIGHT
        return False

    def open_stream(self, bint is_unidirectional=False):
        """Open a new locally initiated stream and return its id.

        :raises errors.StreamLimitReachedError: when the peer's limit is reached.
        """
        if self.state >= S_CLOSING:
            raise errors.ConnectionClosedError("connection is closed")
        if not self.can_open_stream(is_unidirectional):
            raise errors.StreamLimitReachedError(self.peer_max_uni if is_unidirectional else self.peer_max_bidi, bidirectional=not is_unidirectional)
        cdef uint64_t sid
        if is_unidirectional:
            sid = self.next_uni
            self.next_uni += 4
        else:
            sid = self.next_bidi
            self.next_bidi += 4
        self._create_stream(sid)
        return sid

    def send_stream_data(self, uint64_t stream_id, data, bint end_stream=False):
        """Queue `data` on `stream_id` (and the FIN when `end_stream`)."""
        cdef Stream s = self._stream_for_sending(stream_id)
        cdef Py_buffer view
        if type(data) is bytes:
            if PyBytes_GET_SIZE(data):
                s.send.write(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                if view.len:
                    s.send.write(<const uint8_t*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        if end_stream:
            s.send.write_fin()
        self._queue_stream(s)

    def stream_send_buffered(self, uint64_t stream_id):
        """Bytes written to `stream_id` and not yet acknowledged (0 for unknown streams)."""
        cdef Stream s = self.streams.get(stream_id)
        if s is None or s.send is None:
            return 0
        return s.send.buffered()

    def stream_send_unsent(self, uint64_t stream_id):
        """Bytes written to `stream_id` and not yet sent."""
        cdef Stream s = self.streams.get(stream_id)
        if s is None or s.send is None:
            return 0
        return s.send.write_offset - s.send.sent_offset

    def read_stream(self, uint64_t stream_id, Py_ssize_t max_bytes=-1):
        """Consume up to `max_bytes` (all when -1) in-order bytes of `stream_id`.

        :returns: ``(data, fin)``; fin is True once the whole stream was read.
        """
        cdef Stream s = self.streams.get(stream_id)
        if s is None or s.recv is None:
            return b"", False
        cdef bytes data = s.recv.read(max_bytes)
        cdef uint64_t n = len(data)
        cdef int64_t now = self.last_activity
        if n:
            s.recv_window.on_consumed(n, now, self.recovery.rtt.smoothed_rtt)
            if s.recv_window.update_due() and not s.recv.final_size >= 0:
                s.max_stream_data_pending = True
                self._queue_stream(s)
            self.conn_recv_window.on_consumed(n, now, self.recovery.rtt.smoothed_rtt)
            if self.conn_recv_window.update_due():
                self.max_data_pending = True
        cdef bint fin = s.recv.is_finished()
        if fin:
            self._maybe_discard_stream(s)
        return data, fin

    def stream_readable(self, uint64_t stream_id):
        """Contiguous bytes ready to read on `stream_id`."""
        cdef Stream s = self.streams.get(stream_id)
        if s is None or s.recv is None:
            return 0
        return s.recv.readable()

    def reset_stream(self, uint64_t stream_id, uint64_t error_code):
        """Abandon sending on `stream_id` with RESET_STREAM (RFC 9000 §3.1)."""
        cdef Stream s = self._stream_for_sending(stream_id)
        if s.reset_code >= 0 or s.send.all_acked():
            return
        s.reset_code = error_code
        s.reset_pending = True
        s.send.reset()
        self._queue_stream(s)

    def stop_stream(self, uint64_t stream_id, uint64_t error_code):
        """Ask the peer to stop sending on `stream_id` (STOP_SENDING)."""
        cdef Stream s = self.streams.get(stream_id)
        if s is None:
            s = self._get_or_create_peer_stream(stream_id, False)
        if s is None or s.recv is None:
            raise errors.StreamStateError("stream %d has no receiving half" % stream_id)
        if s.stop_code >= 0 or s.recv_closed():
            return
        s.stop_code = error_code
        s.stop_pending = True
        self._queue_stream(s)

    def queue_new_token(self, bytes token):
        """Server: send `token` in a NEW_TOKEN frame (RFC 9000 §8.1.3) once 1-RTT is up."""
        if self.is_client:
            raise RuntimeError("only servers send NEW_TOKEN")
        if token and len(self.new_tokens_pending) < 4:
            self.new_tokens_pending.append(token)

    # Datagrams ---------------------------------------------------------

    def send_datagram_frame(self, data):
        """Queue an unreliable DATAGRAM (RFC 9221); never retransmitted.

        :raises errors.DatagramTooLargeError: when it cannot fit a packet.
        """
        if not self.config.enable_datagrams or self.peer_max_datagram_frame_size == 0:
            raise errors.DatagramNotSupportedError("the peer does not accept DATAGRAM frames")
        cdef Py_ssize_t limit = self.max_datagram_payload
        if len(data) > limit:
            raise errors.DatagramTooLargeError(limit)
        if len(self.datagrams_out) >= MAX_DATAGRAM_QUEUE:
            self.datagrams_out.popleft()  # oldest first: datagrams are unreliable
        self.datagrams_out.append(bytes(data))

    @property
    def datagrams_queued(self):
        """DATAGRAM frames waiting to be sent (at most MAX_DATAGRAM_QUEUE; the
        oldest is dropped to make room), for senders that pace themselves."""
        return len(self.datagrams_out)

    # Closing -----------------------------------------------------------

    def close(self, uint64_t error_code=0, str reason="", bint is_application=True, frame_type=None):
        """Close the connection with CONNECTION_CLOSE (RFC 9000 §10.2)."""
        if self.state >= S_CLOSING:
            return
        self.close_frame = (error_code, frame_type, reason, is_application)
        if is_application:
            err = errors.ApplicationError(error_code, reason, remote=False)
        else:
            err = errors.TransportError(error_code, frame_type=frame_type, reason=reason, remote=False)
        self._enter_closing(err)

    # ------------------------------------------------------------------
    # Receiving
    # ------------------------------------------------------------------

    def receive_datagram(self, data, addr, double now, int ecn=0):
        """Process one UDP datagram (possibly several coalesced packets).

        `data` is copied once into a scratch buffer and decrypted there.
        """
        cdef const uint8_t[:] view = data
        cdef Py_ssize_t n = view.shape[0]
        if n == 0 or n > SCRATCH_SIZE:
            return
        if self.scratch is None:
            self.scratch = bytearray(SCRATCH_SIZE)
            self.scratch_ptr = <uint8_t*>(<char*>self.scratch)
        memcpy(self.scratch_ptr, &view[0], n)
        self.rx_ecn = ecn & 3
        self._receive(self.scratch_ptr, n, addr, to_ns(now))

    def receive_datagram_inplace(self, data, addr, double now, int ecn=0):
        """Fast path: process a datagram in a writable buffer the caller owns
        (e.g. a slice of the socket layer's receive pool). The buffer is
        decrypted in place and must not be reused by the caller afterwards."""
        cdef uint8_t[:] view = data
        if view.shape[0] == 0:
            return
        self.rx_ecn = ecn & 3
        self._receive(&view[0], view.shape[0], addr, to_ns(now))

    def receive_segments(self, buf, Py_ssize_t total, Py_ssize_t segment_size, addr, double now, int ecn=0):
        """Fastest path: process the datagrams laid end to end in the writable
        `buf[:total]`, each `segment_size` bytes but the last (what a UDP GRO
        read or a peer's GSO send produces), with one call. Decrypted in
        place, like `receive_datagram_inplace`."""
        cdef uint8_t[:] view = buf
        cdef Py_ssize_t pos = 0, n
        if total > view.shape[0]:
            raise ValueError("total %d is larger than the buffer (%d)" % (total, view.shape[0]))
        if segment_size <= 0:
            raise ValueError("segment_size must be positive")
        cdef int64_t t = to_ns(now)
        self.rx_ecn = ecn & 3
        while pos < total:
            n = min(segment_size, total - pos)
            self._receive(&view[pos], n, addr, t)
            pos += n

    cdef void _receive(self, uint8_t* data, Py_ssize_t length, object addr, int64_t now):
        cdef Py_ssize_t pos = 0
        cdef PacketHeader h
        cdef int rv
        if now > self.clock_ns:
            self.clock_ns = now
        if self.state == S_TERMINATED:
            return
        self.bytes_received_total += length
        if not self.address_validated:
            self.bytes_received_unvalidated += length
        if self.state == S_DRAINING:
            return
        try:
            while pos < length:
                if parse_header(data + pos, length - pos, self.host_cid_len, &h) < 0:
                    self.packets_dropped += 1
                    break
                if h.is_long and h.packet_type < 0:
                    break   # unknown version inside an established connection: drop
                rv = self._receive_packet(data + pos, &h, addr, now)
                if rv < 0:
                    break
                pos += h.packet_length
        except errors.TransportError as exc:
            self._enter_closing(exc)
        except tls.AlertError as exc:
            self._enter_closing(errors.TransportError(0x100 + exc.description, frame_type=F_CRYPTO,
                                                      reason=str(exc), remote=False))
        if self.state == S_CLOSING and self.close_frame is not None:
            # RFC 9000 §10.2.1: answer packets in the closing state with CONNECTION_CLOSE, rate-limited.
            self.close_reply_due = True

    cdef int _receive_packet(self, uint8_t* pkt, PacketHeader* h, object addr, int64_t now) except -2:
        """Returns 0 to continue with the next coalesced packet, -1 to stop."""
        cdef int space_id
        cdef PacketSpace space
        cdef PacketProtection keys
        cdef Py_ssize_t plen = h.packet_length
        cdef uint64_t pn = 0, truncated
        cdef Py_ssize_t header_len = 0, plain_len
        cdef int pn_len, i, key_phase
        cdef Aead aead
        cdef bytes dcid

        if h.packet_type == PACKET_VERSION_NEGOTIATION:
            if self.is_client and not self.received_first_packet:
                self._handle_version_negotiation(pkt, h)
            return -1
        if h.packet_type == PACKET_RETRY:
            if self.is_client and not self.received_first_packet and not self.retry_received:
                self._handle_retry(pkt, h)
            return -1
        if h.is_long:
            if h.version != self.version:
                return -1
            if h.dcid_len != self.host_cid_len or (<bytes>pkt[h.dcid_offset:h.dcid_offset + h.dcid_len]) not in self.host_connection_ids:
                # Server: the client's first packets are sent to the original DCID.
                if self.is_client or pkt[h.dcid_offset:h.dcid_offset + h.dcid_len] != self.original_dcid:
                    if not (not self.is_client and self.retry_scid is not None and pkt[h.dcid_offset:h.dcid_offset + h.dcid_len] == self.retry_scid):
                        return 0
        if h.packet_type == PACKET_INITIAL:
            space_id = SPACE_INITIAL
        elif h.packet_type == PACKET_HANDSHAKE:
            space_id = SPACE_HANDSHAKE
        else:
            space_id = SPACE_APPLICATION
        space = <PacketSpace>self.spaces[space_id]
        if h.packet_type == PACKET_ZERO_RTT:
            if self.is_client or self.zero_rtt_recv is None:
                self.packets_dropped += 1
                return 0
            keys = self.zero_rtt_recv
        elif h.packet_type == PACKET_ONE_RTT and not self.is_client and not self.handshake_complete:
            # RFC 9001 §5.7: the server must not process 1-RTT packets before the
            # handshake completes; acknowledging one would let the client confirm
            # the handshake and drop its Handshake keys while its Finished is lost.
            self.packets_dropped += 1
            return 0
        else:
            keys = space.recv_keys
        if keys is None or space.discarded:
            self.packets_dropped += 1
            return 0

        pn_len = keys.hp.remove(pkt, plen, h.pn_offset)
        if pn_len < 0:
            self.packets_dropped += 1
            return -1
        truncated = 0
        for i in range(pn_len):
            truncated = (truncated << 8) | pkt[h.pn_offset + i]
        pn = decode_packet_number(truncated, pn_len,
                                  0 if space.largest_received == UINT64_MAX else space.largest_received + 1)
        header_len = h.pn_offset + pn_len
        if h.packet_type == PACKET_ONE_RTT:
            key_phase = (pkt[0] >> 2) & 1
            plain_len = self._open_1rtt(pkt, header_len, plen - header_len, pn, key_phase, now)
        else:
            plain_len = keys.aead.open(pkt, header_len, plen - header_len, pn)
        if plain_len < 0:
            self.packets_dropped += 1
            if h.packet_type == PACKET_ONE_RTT:
                if plen >= 21 and self._is_stateless_reset(pkt + plen - 16):
                    return -1
                self.auth_failures += 1
                if self.aead_integrity_limit and self.auth_failures >= self.aead_integrity_limit:
                    # RFC 9001 §6.6: too many forgeries tried against our keys.
                    raise errors.TransportError(E.AEAD_LIMIT_REACHED, reason="AEAD integrity limit reached")
            return 0   # authentication failure: drop silently (RFC 9001 §5.5)

        # Reserved bits must be zero once protection is removed (RFC 9000 §17.2, §17.3.1).
        if (h.is_long and (pkt[0] & 0x0C)) or (not h.is_long and (pkt[0] & 0x18)):
            raise errors.TransportError(E.PROTOCOL_VIOLATION, reason="reserved header bits set")

        if pn < space.ack_floor or space.received.contains(pn):
            self.packets_dropped += 1
            return 0   # duplicate

        if not self.received_first_packet:
            self.received_first_packet = True
            if self.is_client and h.is_long:
                # RFC 9000 §7.2: adopt the server's chosen CID.
                self.peer_cid = bytes(pkt[h.scid_offset:h.scid_offset + h.scid_len])
                self.peer_cids[0][1] = self.peer_cid
        if not self.is_client and h.packet_type == PACKET_HANDSHAKE and not self.address_validated:
            # RFC 9000 §8.1: a Handshake packet from the client validates its address.
            self.address_validated = True
        self.packets_received += 1
        self.last_activity = now

        cdef bint ack_eliciting = self._process_frames(pkt + header_len, plain_len, h.packet_type, space_id, now)
        if self.tracer is not None:
            self._qlog_packet("transport:packet_received", h.packet_type, pn, plen, NULL, now)

        if space.largest_received == UINT64_MAX or pn > space.largest_received:
            if space.largest_received != UINT64_MAX and pn > space.largest_received + 1 and self.ack_on_reordering:
                space.ack_immediately = True   # RFC 9000 §13.2.1: a gap means reordering or loss
            space.largest_received = pn
            space.largest_received_time = now
        elif ack_eliciting and self.ack_on_reordering:
            space.ack_immediately = True       # out of order
        space.received.add(pn, pn + 1)
        if self.rx_ecn:
            # Codepoints: ECT(1)=1, ECT(0)=2, CE=3 -> [ECT(0), ECT(1), CE].
            space.ecn_received[0 if self.rx_ecn == 2 else 1 if self.rx_ecn == 1 else 2] += 1
        if (not self.is_client and h.packet_type == PACKET_ONE_RTT and addr is not None
                and self.peer_addr is not None and pn == space.largest_received
                and self.rx_non_probing and addr != self.peer_addr and self.handshake_confirmed):
            self._on_peer_address_change(addr, plen, now)
        if ack_eliciting:
            space.ack_eliciting_unacked += 1
            if space_id != SPACE_APPLICATION or space.ack_eliciting_unacked >= self.ack_eliciting_threshold:
                space.ack_immediately = True
            elif space.ack_deadline == TIME_NONE:
                space.ack_deadline = now + self.local_max_ack_delay_ns

        if not self.is_client and space_id == SPACE_HANDSHAKE and not (<PacketSpace>self.spaces[SPACE_INITIAL]).discarded:
            # RFC 9001 §4.9.1: the server discards Initial keys on its first Handshake packet.
            self._discard_space(SPACE_INITIAL, now)
        return 0

    cdef Py_ssize_t _open_1rtt(self, uint8_t* pkt, Py_ssize_t header_len, Py_ssize_t ct_len, uint64_t pn,
                               int key_phase, int64_t now):
        """Open a 1-RTT packet, following peer key updates (RFC 9001 §6.2–6.3)."""
        cdef PacketSpace space = <PacketSpace>self.spaces[SPACE_APPLICATION]
        cdef Py_ssize_t rv
        if key_phase == self.key_phase:
            rv = space.recv_keys.aead.open(pkt, header_len, ct_len, pn)
            if rv >= 0 and self.key_update_pending_confirm:
                # The peer answered our update: the old keys have three PTOs left.
                self.key_update_pending_confirm = False
                self.prev_keys_discard_at = now + 3 * self._current_pto()
            return rv
        # Another phase: an older packet of the previous phase, or the peer updated.
        if self.prev_recv_keys is not None and (pn < self.key_phase_first_pn or self.key_update_pending_confirm):
            # While our own update is unanswered the peer still uses the old keys.
            return self.prev_recv_keys.aead.open(pkt, header_len, ct_len, pn)
        if self.next_recv_keys is None:
            self.recv_secret_1rtt, self.next_recv_keys = space.recv_keys.next_phase(self.recv_secret_1rtt)
        rv = self.next_recv_keys.aead.open(pkt, header_len, ct_len, pn)
        if rv < 0:
            return rv
        if not self.handshake_confirmed:
            raise errors.TransportError(E.KEY_UPDATE_ERROR, reason="key update before handshake confirmed")
        # Peer initiated a key update: rotate both directions.
        self.prev_recv_keys = space.recv_keys
        space.recv_keys = self.next_recv_keys
        self.next_recv_keys = None
        self.key_phase ^= 1
        self.key_phase_first_pn = pn
        self.prev_keys_discard_at = now + 3 * self._current_pto()
        self.send_secret_1rtt, space.send_keys = space.send_keys.next_phase(self.send_secret_1rtt)
        self.packets_in_phase = 0
        self.key_updates += 1
        return rv

    cdef void _on_peer_address_change(self, object addr, Py_ssize_t datagram_length, int64_t now):
        """The client's address changed (NAT rebinding or migration, RFC 9000 §9.3):
        send to it from now on, validate it, and keep to the anti-amplification
        limit until then. A new host (not just a new port) also resets RTT and
        congestion state (§9.4)."""
        old = self.peer_addr
        self.peer_addr = addr
        self.migrations += 1
        if old[0] != addr[0]:
            self.recovery.on_path_change()
        self.address_validated = False
        self.bytes_received_unvalidated = datagram_length
        self.bytes_sent_unvalidated = 0
        self.path_challenge = os.urandom(8)
        self.path_challenge_pending = True

    def migrate(self):
        """Client: we now send from a new local address (active migration,
        RFC 9000 §9.2). Switch to an unused peer CID so the paths cannot be
        linked (§9.5), reset congestion state (§9.4) and validate the path."""
        if not self.is_client or not self.handshake_confirmed:
            raise errors.QuicError("only a client with a confirmed handshake can migrate")
        if self.peer_params is not None and self.peer_params.disable_active_migration:
            raise errors.QuicError("the server disabled active migration")
        current = None
        for entry in self.peer_cids:
            if entry[1] == self.peer_cid:
                current = entry
        spare = [entry for entry in self.peer_cids if entry is not current]
        if spare:
            spare.sort()
            self.peer_cid = spare[0][1]
            if current is not None:
                self.peer_cids.remove(current)
                self.retire_cid_pending.append(current[0])
        self.recovery.on_path_change()
        self.migrations += 1
        self.path_challenge = os.urandom(8)
        self.path_challenge_pending = True

    def request_key_update(self):
        """Initiate a 1-RTT key update (RFC 9001 §6.1)."""
        cdef PacketSpace space = <PacketSpace>self.spaces[SPACE_APPLICATION]
        if not self.handshake_confirmed:
            raise errors.QuicError("cannot update keys before the handshake is confirmed")
        if self.key_update_pending_confirm:
            raise errors.QuicError("the previous key update is not answered yet (RFC 9001 §6.1)")
        self.prev_recv_keys = space.recv_keys
        if self.next_recv_keys is not None:
            # Derived earlier (a packet tried the next phase): recv_secret_1rtt already advanced.
            space.recv_keys = self.next_recv_keys
        else:
            self.recv_secret_1rtt, space.recv_keys = space.recv_keys.next_phase(self.recv_secret_1rtt)
        self.send_secret_1rtt, space.send_keys = space.send_keys.next_phase(self.send_secret_1rtt)
        self.next_recv_keys = None
        self.key_update_pending_confirm = True
        self.prev_keys_discard_at = TIME_NONE   # armed once the peer answers
        self.key_phase ^= 1
        self.key_phase_first_pn = space.largest_received + 1 if space.largest_received != UINT64_MAX else 0
        self.packets_in_phase = 0
        self.key_updates += 1

    cdef void _handle_version_negotiation(self, uint8_t* pkt, PacketHeader* h):
        cdef Py_ssize_t pos = h.pn_offset
        cdef list versions = []
        while pos + 4 <= h.packet_length:
            versions.append(int.from_bytes(pkt[pos:pos + 4], "big"))
            pos += 4
        if self.version in versions:
            return   # RFC 9000 §6.2: ignore a VN that lists our version
        common = [v for v in self.config.versions if v in versions]
        self._terminate(errors.VersionNegotiationError(list(self.config.versions), versions))

    cdef void _handle_retry(self, uint8_t* pkt, PacketHeader* h):
        cdef bytes raw = bytes(pkt[:h.packet_length])
        cdef bytes scid = bytes(pkt[h.scid_offset:h.scid_offset + h.scid_len])
        if scid == self.peer_cid:
            return
        pseudo = bytes([len(self.original_dcid)]) + self.original_dcid + raw[:-16]
        if _crypto.retry_integrity_tag(pseudo, self.version) != raw[-16:]:
            return   # RFC 9001 §5.8: discard Retry with a bad tag
        token = raw[h.token_offset:h.token_offset + h.token_len]
        if not token:
            return
        self.retry_received = True
        self.retry_token = token
        self.retry_scid = scid
        self.peer_cid = scid
        self.peer_cids[0][1] = scid
        self._setup_initial_keys(scid)
        # Everything sent in Initial packets is resent with the new keys and token.
        cdef PacketSpace init = <PacketSpace>self.spaces[SPACE_INITIAL]
        # RFC 9002 §6.3: reset recovery and congestion state; packet numbers go on.
        self.recovery = LossRecovery(self.is_client, self.config.congestion_control, self.max_datagram_size)
        init.crypto_send.on_lost(0, init.crypto_send.sent_offset, False)
        if self.zero_rtt_send is not None:
            self._requeue_all_stream_data()

    # ------------------------------------------------------------------
    # Frames (RFC 9000 §19)
    # ------------------------------------------------------------------

    cdef bint _process_frames(self, const uint8_t* payload, Py_ssize_t length, int packet_type,
                              int space_id, int64_t now) except? -1:
        """Parse and apply every frame of one packet; returns whether the
        packet was ack-eliciting. Raises errors.TransportError on violations."""
        cdef Reader r
        cdef uint64_t ftype, a, b, c, d
        cdef bint ack_eliciting = False
        cdef int ptype_bit = 1 << packet_type
        cdef Py_ssize_t start
        cdef bint non_probing = False
        r.data = payload
        r.pos = 0
        r.end = length
        if length == 0:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, reason="packet with no frames")
        while r.pos < r.end:
            start = r.pos
            if reader_varint(&r, &ftype) < 0:
                raise errors.TransportError(E.FRAME_ENCODING_ERROR, reason="truncated frame type")
            if ftype == F_PADDING:
                while r.pos < r.end and r.data[r.pos] == 0:
                    r.pos += 1
                continue
            if ftype <= F_IMMEDIATE_ACK or ftype == F_DATAGRAM or ftype == F_DATAGRAM_LEN or ftype == F_ACK_FREQUENCY:
                if not (frame_allowed_mask(ftype) & ptype_bit):
                    raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype,
                                                reason="frame 0x%x not allowed in this packet type" % ftype)
            if ftype != F_PATH_CHALLENGE and ftype != F_PATH_RESPONSE and ftype != F_NEW_CONNECTION_ID:
                non_probing = True
            if ftype == F_ACK or ftype == F_ACK_ECN:
                self._handle_ack_frame(&r, ftype, space_id, now)
                continue
            if ftype != F_CONNECTION_CLOSE and ftype != F_CONNECTION_CLOSE_APP:
                ack_eliciting = True
            if F_STREAM <= ftype <= F_STREAM_END:
                self._handle_stream_frame(&r, ftype, now)
            elif ftype == F_CRYPTO:
                self._handle_crypto_frame(&r, space_id, now)
            elif ftype == F_PING:
                pass
            elif ftype == F_MAX_DATA:
                self._need_varint(&r, &a, ftype)
                if self.conn_send_window.update(a):
                    self._requeue_blocked_streams()
            elif ftype == F_MAX_STREAM_DATA:
                self._need_varint(&r, &a, ftype)
                self._need_varint(&r, &b, ftype)
                self._handle_max_stream_data(a, b)
            elif ftype == F_MAX_STREAMS_BIDI or ftype == F_MAX_STREAMS_UNI:
                self._need_varint(&r, &a, ftype)
                if a > (<uint64_t>1 << 60):
                    raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="MAX_STREAMS above 2^60")
                if ftype == F_MAX_STREAMS_BIDI and a > self.peer_max_bidi:
                    self.peer_max_bidi = a
                    self._events.append(StreamsAvailable(False))
                elif ftype == F_MAX_STREAMS_UNI and a > self.peer_max_uni:
                    self.peer_max_uni = a
                    self._events.append(StreamsAvailable(True))
            elif ftype == F_DATA_BLOCKED:
                self._need_varint(&r, &a, ftype)
            elif ftype == F_STREAM_DATA_BLOCKED:
                self._need_varint(&r, &a, ftype)
                self._need_varint(&r, &b, ftype)
                self._check_stream_id_receivable(a, ftype)
            elif ftype == F_STREAMS_BLOCKED_BIDI or ftype == F_STREAMS_BLOCKED_UNI:
                self._need_varint(&r, &a, ftype)
                if a > (<uint64_t>1 << 60):
                    raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="STREAMS_BLOCKED above 2^60")
            elif ftype == F_RESET_STREAM:
                self._need_varint(&r, &a, ftype)
                self._need_varint(&r, &b, ftype)
                self._need_varint(&r, &c, ftype)
                self._handle_reset_stream(a, b, c)
            elif ftype == F_STOP_SENDING:
                self._need_varint(&r, &a, ftype)
                self._need_varint(&r, &b, ftype)
                self._handle_stop_sending(a, b)
            elif ftype == F_NEW_TOKEN:
                self._need_varint(&r, &a, ftype)
                if a == 0 or reader_skip(&r, <Py_ssize_t>a) < 0:
                    raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="bad NEW_TOKEN")
                if not self.is_client:
                    raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype, reason="NEW_TOKEN from a client")
                self._on_new_token(bytes(r.data[r.pos - a:r.pos]))
            elif ftype == F_NEW_CONNECTION_ID:
                self._handle_new_connection_id(&r)
            elif ftype == F_RETIRE_CONNECTION_ID:
                self._need_varint(&r, &a, ftype)
                self._handle_retire_connection_id(a)
            elif ftype == F_PATH_CHALLENGE:
                if reader_skip(&r, 8) < 0:
                    raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="truncated PATH_CHALLENGE")
                if len(self.path_responses) < MAX_PENDING_PATH_RESPONSES:
                    self.path_responses.append(bytes(r.data[r.pos - 8:r.pos]))
            elif ftype == F_PATH_RESPONSE:
                if reader_skip(&r, 8) < 0:
                    raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="truncated PATH_RESPONSE")
                if self.path_challenge is not None and bytes(r.data[r.pos - 8:r.pos]) == self.path_challenge:
                    # RFC 9000 §8.2.3: the new path is validated.
                    self.path_challenge = None
                    self.path_challenge_pending = False
                    self.address_validated = True
            elif ftype == F_CONNECTION_CLOSE or ftype == F_CONNECTION_CLOSE_APP:
                self._handle_connection_close(&r, ftype, now)
                return False
            elif ftype == F_HANDSHAKE_DONE:
                if not self.is_client:
                    raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype, reason="HANDSHAKE_DONE from a client")
                self._confirm_handshake(now)
            elif ftype == F_DATAGRAM or ftype == F_DATAGRAM_LEN:
                self._handle_datagram_frame(&r, ftype)
            elif ftype == F_IMMEDIATE_ACK:
                (<PacketSpace>self.spaces[space_id]).ack_immediately = True
            elif ftype == F_ACK_FREQUENCY:
                self._handle_ack_frequency(&r)
            else:
                raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="unknown frame type 0x%x" % ftype)
        self.rx_non_probing = non_probing
        return ack_eliciting

    cdef int _handle_ack_frequency(self, Reader* r) except -1:
        """ACK_FREQUENCY (draft-ietf-quic-ack-frequency §4): the peer asks us to
        ACK after more packets, or later; only the newest request counts."""
        cdef uint64_t seq, threshold, max_delay_us, reordering
        self._need_varint(r, &seq, F_ACK_FREQUENCY)
        self._need_varint(r, &threshold, F_ACK_FREQUENCY)
        self._need_varint(r, &max_delay_us, F_ACK_FREQUENCY)
        self._need_varint(r, &reordering, F_ACK_FREQUENCY)
        if max_delay_us < MIN_ACK_DELAY_US:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_ACK_FREQUENCY,
                                        reason="requested max ack delay below our min_ack_delay")
        if seq < self.ack_frequency_next_seq:
            return 0   # an older request, reordered or retransmitted
        self.ack_frequency_next_seq = seq + 1
        # Honoured up to a bound: a peer cannot make us keep ACKs back forever.
        if threshold >= MAX_ACK_ELICITING_THRESHOLD_HONOURED:
            threshold = MAX_ACK_ELICITING_THRESHOLD_HONOURED - 1
        self.ack_eliciting_threshold = <int>threshold + 1
        if max_delay_us > (<uint64_t>1 << 14) * 1000:
            max_delay_us = (<uint64_t>1 << 14) * 1000   # RFC 9000 §18.2's ceiling for max_ack_delay
        self.local_max_ack_delay_ns = <int64_t>max_delay_us * 1000
        self.ack_on_reordering = reordering != 0
        return 0

    cdef int _need_varint(self, Reader* r, uint64_t* out, uint64_t ftype) except -1:
        if reader_varint(r, out) < 0:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="truncated frame 0x%x" % ftype)
        return 0

    cdef int _handle_ack_frame(self, Reader* r, uint64_t ftype, int space_id, int64_t now) except -1:
        cdef uint64_t largest, delay, count, first, gap, rlen, i, smallest, ect0, ect1, ce
        ect0 = ect1 = ce = 0
        cdef uint64_t[MAX_ACK_RANGES_PARSED] starts
        cdef uint64_t[MAX_ACK_RANGES_PARSED] ends
        cdef Py_ssize_t n = 0
        self._need_varint(r, &largest, ftype)
        self._need_varint(r, &delay, ftype)
        self._need_varint(r, &count, ftype)
        self._need_varint(r, &first, ftype)
        if first > largest:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="ACK range below zero")
        smallest = largest - first
        starts[0] = smallest
        ends[0] = largest + 1
        n = 1
        for i in range(count):
            self._need_varint(r, &gap, ftype)
            self._need_varint(r, &rlen, ftype)
            if gap + 2 > smallest or smallest - gap - 2 < rlen:
                raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="ACK range below zero")
            largest = smallest - gap - 2
            smallest = largest - rlen
            if n < MAX_ACK_RANGES_PARSED:
                starts[n] = smallest
                ends[n] = largest + 1
                n += 1
        if ftype == F_ACK_ECN:
            self._need_varint(r, &ect0, ftype)
            self._need_varint(r, &ect1, ftype)
            self._need_varint(r, &ce, ftype)
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        if space.discarded:
            return 0
        cdef SentPacket* largest_rec = self.recovery._log(space_id).get(ends[0] - 1)
        cdef int64_t largest_sent_time = largest_rec.time_sent if largest_rec != NULL else now
        if self.ecn_enabled and space.ecn_first_marked_pn != UINT64_MAX and ends[0] - 1 >= space.ecn_first_marked_pn:
            self._validate_ecn(space, space_id, ftype == F_ACK_ECN, ect0, ect1, ce, largest_sent_time, now)
        cdef int64_t ack_delay_ns = 0
        if space_id == SPACE_APPLICATION:
            ack_delay_ns = <int64_t>((delay << self.ack_delay_exponent_peer) * 1000)
        if self.recovery.on_ack_received(space_id, starts, ends, n, ack_delay_ns, now, self) == 1:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype, reason="ACK of a packet never sent")
        if space.largest_acked_by_peer == UINT64_MAX or ends[0] - 1 > space.largest_acked_by_peer:
            space.largest_acked_by_peer = ends[0] - 1
        if self.is_client and space_id == SPACE_HANDSHAKE:
            self.recovery.peer_completed_address_validation = True
        if space_id == SPACE_APPLICATION and not self.handshake_confirmed and self.handshake_complete and \
                self.is_client and self.first_1rtt_pn != UINT64_MAX and ends[0] - 1 >= self.first_1rtt_pn:
            # RFC 9001 §4.1.2: an acknowledged 1-RTT packet confirms the handshake
            # (an acknowledged 0-RTT packet does not: our Finished may still be unsent).
            self._confirm_handshake(now)
        return 0

    cdef void _validate_ecn(self, PacketSpace space, int space_id, bint has_counts, uint64_t ect0,
                            uint64_t ect1, uint64_t ce, int64_t sent_time, int64_t now):
        """RFC 9000 §13.4.2: an ACK of ECT(0)-marked packets must report ECN
        counts that never decrease and never show ECT(1) (we send none);
        otherwise the path or the peer mangles ECN and we stop marking. A
        rising CE count is a congestion signal (RFC 9002 §7.1)."""
        if not has_counts or ect1 > space.peer_ecn[1] or ect0 < space.peer_ecn[0] or ce < space.peer_ecn[2] \
                or ect0 + ce == 0:
            self.ecn_enabled = False
            return
        if ce > space.peer_ecn[2]:
            self.ecn_ce_reported += ce - space.peer_ecn[2]
            self.recovery.on_ecn_ce(space_id, sent_time, now)
        space.peer_ecn[0] = ect0
        space.peer_ecn[1] = ect1
        space.peer_ecn[2] = ce

    @property
    def previous_keys_retained(self):
        """Whether the 1-RTT read keys of the previous key phase are still
        held (for reordered packets, RFC 9001 §6.5)."""
        return self.prev_recv_keys is not None

    @property
    def ecn_mark(self):
        """The ECN codepoint to set on outgoing datagrams: 2 (ECT(0)) while ECN
        is in use, 0 once validation failed."""
        return 2 if self.ecn_enabled else 0

    # Recovery callbacks (FrameHandler) ---------------------------------

    cdef void on_frame_acked(self, int space_id, SentPacket* packet, FrameRecord* f):
        cdef Stream s
        cdef int kind = f.kind
        if kind == FRAME_STREAM:
            s = self.streams.get(f.stream_id)
            if s is not None and s.send is not None:
                s.send.on_acked(f.offset, f.length, f.fin)
                if s.send.all_acked():
                    self._maybe_discard_stream(s)
        elif kind == FRAME_CRYPTO:
            (<PacketSpace>self.spaces[f.stream_id]).crypto_send.on_acked(f.offset, f.length, False)
        elif kind == FRAME_RESET_STREAM:
            s = self.streams.get(f.stream_id)
            if s is not None:
                s.reset_acked = True
                self._maybe_discard_stream(s)
        elif kind == FRAME_PING and f.length == 1:
            self._on_mtu_probe_result(<int>f.offset, True)

    cdef void on_frame_lost(self, int space_id, SentPacket* packet, FrameRecord* f):
        cdef Stream s
        cdef int kind = f.kind
        if self.tracer is not None and packet.pn != self.last_lost_logged:
            self.last_lost_logged = packet.pn
            self.tracer.event("recovery:packet_lost", {
                "header": {"packet_type": _QLOG_SPACE_NAMES[space_id], "packet_number": packet.pn}},
                self.clock_ns / 1e9)
        if kind == FRAME_STREAM:
            s = self.streams.get(f.stream_id)
            if s is not None and s.send is not None and s.reset_code < 0:
                s.send.on_lost(f.offset, f.length, f.fin)
                self._queue_stream(s)
        elif kind == FRAME_CRYPTO:
            if not (<PacketSpace>self.spaces[f.stream_id]).discarded:
                (<PacketSpace>self.spaces[f.stream_id]).crypto_send.on_lost(f.offset, f.length, False)
        elif kind == FRAME_MAX_DATA:
            self.max_data_pending = True
        elif kind == FRAME_MAX_STREAM_DATA:
            s = self.streams.get(f.stream_id)
            if s is not None and s.recv is not None and s.recv.final_size < 0:
                s.max_stream_data_pending = True
                self._queue_stream(s)
        elif kind == FRAME_RESET_STREAM:
            s = self.streams.get(f.stream_id)
            if s is not None and not s.reset_acked:
                s.reset_pending = True
                self._queue_stream(s)
        elif kind == FRAME_STOP_SENDING:
            s = self.streams.get(f.stream_id)
            if s is not None and not s.recv_closed():
                s.stop_pending = True
                self._queue_stream(s)
        elif kind == FRAME_STREAM_DATA_BLOCKED:
            # RFC 9000 §13.3: resent only while still blocked at that limit.
            s = self.streams.get(f.stream_id)
            if s is not None and s.send is not None and s.send_window.limit == f.offset:
                s.send_window.on_blocked_lost(f.offset)
                self._queue_stream(s)
        elif kind == FRAME_ACK_FREQUENCY:
            if f.offset + 1 == self.ack_frequency_seq:
                self.ack_frequency_pending = True   # the newest request was lost: send it again
        elif kind == FRAME_DATA_BLOCKED:
            if self.conn_send_window.limit == f.offset:
                self.data_blocked_pending = True
        elif kind == FRAME_STREAMS_BLOCKED:
            if f.stream_id == 0 and self.peer_max_bidi == f.offset and self.next_bidi // 4 >= self.peer_max_bidi:
                self.streams_blocked_bidi_pending = True
            elif f.stream_id == 1 and self.peer_max_uni == f.offset and self.next_uni // 4 >= self.peer_max_uni:
                self.streams_blocked_uni_pending = True
        elif kind == FRAME_MAX_STREAMS_BIDI:
            self.max_streams_bidi_pending = True
        elif kind == FRAME_MAX_STREAMS_UNI:
            self.max_streams_uni_pending = True
        elif kind == FRAME_HANDSHAKE_DONE:
            self.handshake_done_pending = True
        elif kind == FRAME_NEW_CONNECTION_ID:
            for entry in self.host_cids:
                if entry[0] == f.stream_id and not entry[3]:
                    self.new_cid_pending.append(f.stream_id)
        elif kind == FRAME_RETIRE_CONNECTION_ID:
            self.retire_cid_pending.append(f.stream_id)
        elif kind == FRAME_PATH_CHALLENGE:
            if self.path_challenge is not None:
                self.path_challenge_pending = True
        elif kind == FRAME_PING and f.length == 1:
            self._on_mtu_probe_result(<int>f.offset, False)

    cdef void on_ack_of_ack(self, int space_id, uint64_t largest_acked_sent):
        # The peer saw our ACK up to largest_acked_sent: stop reporting those.
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        if largest_acked_sent + 1 > space.ack_floor:
            space.ack_floor = largest_acked_sent + 1
            space.received.remove_below(space.ack_floor)

    # Stream frames -----------------------------------------------------

    cdef int _handle_stream_frame(self, Reader* r, uint64_t ftype, int64_t now) except -1:
        cdef uint64_t sid, offset = 0, length
        cdef bint fin = ftype & 0x01
        self._need_varint(r, &sid, ftype)
        if ftype & 0x04:
            self._need_varint(r, &offset, ftype)
        if ftype & 0x02:
            self._need_varint(r, &length, ftype)
            if length > <uint64_t>(r.end - r.pos):
                raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="STREAM data past packet end")
        else:
            length = r.end - r.pos
        cdef const uint8_t* data = r.data + r.pos
        r.pos += <Py_ssize_t>length
        if offset + length > ((<uint64_t>1) << 62) - 1:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="stream offset above 2^62-1")
        cdef Stream s = self._get_or_create_peer_stream(sid, True)
        if s is None:
            return 0   # a stream we already closed: ignore retransmissions
        if s.recv is None:
            raise errors.TransportError(E.STREAM_STATE_ERROR, frame_type=ftype, reason="STREAM on send-only stream %d" % sid)
        if s.peer_reset:
            return 0
        cdef uint64_t before = s.recv.highest_offset
        cdef uint64_t end = offset + length
        if end > before:
            if s.recv_window.on_data_received(end) != 0:
                raise errors.TransportError(E.FLOW_CONTROL_ERROR, frame_type=ftype, reason="stream %d exceeded its flow-control limit" % sid)
            if self.conn_recv_window.on_data_received(self.conn_received_total + (end - before)) != 0:
                raise errors.TransportError(E.FLOW_CONTROL_ERROR, frame_type=ftype, reason="connection flow-control limit exceeded")
        cdef int rv = s.recv.receive(offset, data, <Py_ssize_t>length, fin)
        if rv != 0:
            raise errors.TransportError(rv, frame_type=ftype, reason="final size violated on stream %d" % sid)
        if s.recv.highest_offset > before:
            self.conn_received_total += s.recv.highest_offset - before
        if (s.recv.readable() > 0 or s.recv.is_finished()) and not s.readable_reported:
            s.readable_reported = True
            self.readable_streams[s.stream_id] = None
        return 0

    cdef int _handle_crypto_frame(self, Reader* r, int space_id, int64_t now) except -1:
        cdef uint64_t offset, length
        self._need_varint(r, &offset, F_CRYPTO)
        self._need_varint(r, &length, F_CRYPTO)
        if length > <uint64_t>(r.end - r.pos):
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=F_CRYPTO, reason="CRYPTO data past packet end")
        cdef const uint8_t* data = r.data + r.pos
        r.pos += <Py_ssize_t>length
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        if offset + length > space.crypto_recv.read_offset + MAX_CRYPTO_BUFFER:
            raise errors.TransportError(E.CRYPTO_BUFFER_EXCEEDED, frame_type=F_CRYPTO, reason="too much out-of-order CRYPTO data")
        space.crypto_recv.receive(offset, data, <Py_ssize_t>length, False)
        cdef bytes chunk
        if space.crypto_recv.readable() > 0:
            chunk = space.crypto_recv.read(-1)
            self._tls.receive(LEVEL_FOR_SPACE[space_id], chunk)
            self._after_tls(now)
        return 0

    cdef Stream _get_or_create_peer_stream(self, uint64_t sid, bint for_receive):
        """The stream `sid` as named by a peer frame, creating peer-initiated
        streams (and the lower ones, RFC 9000 §3.2) as needed. Returns None
        for a stream that existed and is now closed. Raises STREAM_STATE_ERROR
        / STREAM_LIMIT_ERROR as §19.8 and §4.6 require."""
        cdef Stream s = self.streams.get(sid)
        if s is not None:
            return s
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        cdef bint uni = (sid & 2) != 0
        cdef uint64_t count = sid // 4 + 1
        if local:
            if sid >= (self.next_uni if uni else self.next_bidi):
                raise errors.TransportError(E.STREAM_STATE_ERROR, reason="frame for local stream %d not yet opened" % sid)
            return None
        if count > (self.local_max_uni if uni else self.local_max_bidi):
            raise errors.TransportError(E.STREAM_LIMIT_ERROR, reason="peer opened stream %d past our limit" % sid)
        cdef uint64_t opened = self.peer_opened_uni if uni else self.peer_opened_bidi
        if count <= opened:
            return None   # already opened and since closed
        cdef uint64_t i, first_new = opened
        for i in range(first_new, count):
            s = self._create_stream(i * 4 + (sid & 3))
            self._events.append(StreamOpened(s.stream_id))
        if uni:
            self.peer_opened_uni = count
        else:
            self.peer_opened_bidi = count
        return s

    cdef void _check_stream_id_receivable(self, uint64_t sid, uint64_t ftype) except *:
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        if local and (sid & 2):
            raise errors.TransportError(E.STREAM_STATE_ERROR, frame_type=ftype, reason="frame for send-only stream %d" % sid)
        self._get_or_create_peer_stream(sid, True)

    cdef Stream _create_stream(self, uint64_t sid):
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        cdef bint uni = (sid & 2) != 0
        cdef bint can_send = not uni or local
        cdef bint can_recv = not uni or not local
        cdef uint64_t send_limit = 0
        if can_send:
            if uni:
                send_limit = self.peer_initial_max_stream_data_uni
            elif local:
                send_limit = self.peer_initial_max_stream_data_bidi_remote
            else:
                send_limit = self.peer_initial_max_stream_data_bidi_local
        cdef Stream s = Stream(sid, can_send, can_recv, send_limit,
                               self.stream_receive_window, self.stream_receive_window_max)
        self.streams[sid] = s
        return s

    cdef Stream _stream_for_sending(self, uint64_t sid):
        if self.state >= S_CLOSING:
            raise errors.ConnectionClosedError("connection is closed")
        cdef Stream s = self.streams.get(sid)
        if s is None:
            local = (sid & 1) == (0 if self.is_client else 1)
            if local:
                if sid >= (self.next_uni if sid & 2 else self.next_bidi):
                    raise errors.StreamStateError("stream %d was not opened (use open_stream)" % sid)
                raise errors.StreamStateError("stream %d is closed" % sid)
            s = self._get_or_create_peer_stream(sid, False)
            if s is None:
                raise errors.StreamStateError("stream %d is closed" % sid)
        if s.send is None:
            raise errors.StreamStateError("stream %d is receive-only" % sid)
        if s.send.fin_written or s.reset_code >= 0:
            raise errors.StreamStateError("stream %d: sending side already closed" % sid)
        return s

    cdef void _queue_stream(self, Stream s):
        if not s.queued:
            s.queued = True
            self.send_queue.append(s.stream_id)

    cdef void _requeue_blocked_streams(self):
        cdef Stream s
        for s in self.streams.values():
            if s.send is not None and s.wants_send():
                self._queue_stream(s)

    cdef void _requeue_all_stream_data(self):
        cdef Stream s
        for s in self.streams.values():
            if s.send is not None and s.send.sent_offset > s.send.acked_offset:
                s.send.on_lost(s.send.acked_offset, s.send.sent_offset - s.send.acked_offset, s.send.fin_sent)
                self._queue_stream(s)

    cdef void _maybe_discard_stream(self, Stream s):
        """Forget a stream whose both halves are closed; credit the peer a new one."""
        if not (s.send_closed() and s.recv_closed()):
            return
        if s.stream_id not in self.streams:
            return
        del self.streams[s.stream_id]
        self.readable_streams.pop(s.stream_id, None)
        cdef bint local = (s.stream_id & 1) == (0 if self.is_client else 1)
        if not local:
            # RFC 9000 §4.6: let the peer open another stream of this type.
            if s.stream_id & 2:
                self.local_max_uni += 1
                self.max_streams_uni_pending = True
            else:
                self.local_max_bidi += 1
                self.max_streams_bidi_pending = True

    cdef int _handle_max_stream_data(self, uint64_t sid, uint64_t limit) except -1:
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        if not local and (sid & 2):
            raise errors.TransportError(E.STREAM_STATE_ERROR, frame_type=F_MAX_STREAM_DATA, reason="MAX_STREAM_DATA for receive-only stream %d" % sid)
        cdef Stream s = self._get_or_create_peer_stream(sid, False)
        if s is None or s.send is None:
            return 0
        if s.send_window.update(limit) and s.wants_send():
            self._queue_stream(s)
        return 0

    cdef int _handle_reset_stream(self, uint64_t sid, uint64_t code, uint64_t final_size) except -1:
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        if local and (sid & 2):
            raise errors.TransportError(E.STREAM_STATE_ERROR, frame_type=F_RESET_STREAM, reason="RESET_STREAM for send-only stream %d" % sid)
        cdef Stream s = self._get_or_create_peer_stream(sid, True)
        if s is None or s.peer_reset:
            return 0
        cdef uint64_t before = s.recv.highest_offset
        if final_size > before:
            if s.recv_window.on_data_received(final_size) != 0 or \
                    self.conn_recv_window.on_data_received(self.conn_received_total + final_size - before) != 0:
                raise errors.TransportError(E.FLOW_CONTROL_ERROR, frame_type=F_RESET_STREAM, reason="final size beyond flow control")
        cdef int rv = s.recv.reset(final_size)
        if rv != 0:
            raise errors.TransportError(rv, frame_type=F_RESET_STREAM, reason="RESET_STREAM changed the final size of stream %d" % sid)
        if final_size > before:
            self.conn_received_total += final_size - before
        # Data never to be read still counts as consumed for connection flow control.
        cdef uint64_t unread = final_size - s.recv.read_offset if final_size > s.recv.read_offset else 0
        if unread:
            self.conn_recv_window.on_consumed(unread, self.last_activity, self.recovery.rtt.smoothed_rtt)
        s.peer_reset = True
        self.readable_streams.pop(sid, None)
        self._events.append(StreamReset(sid, code, final_size))
        self._maybe_discard_stream(s)
        return 0

    cdef int _handle_stop_sending(self, uint64_t sid, uint64_t code) except -1:
        cdef bint local = (sid & 1) == (0 if self.is_client else 1)
        if not local and (sid & 2):
            raise errors.TransportError(E.STREAM_STATE_ERROR, frame_type=F_STOP_SENDING, reason="STOP_SENDING for receive-only stream %d" % sid)
        cdef Stream s = self._get_or_create_peer_stream(sid, False)
        if s is None or s.send is None or s.peer_stopped:
            return 0
        s.peer_stopped = True
        self._events.append(StopSendingReceived(sid, code))
        # RFC 9000 §3.5: answer with RESET_STREAM carrying the same code.
        if s.reset_code < 0 and not s.send.all_acked():
            s.reset_code = code
            s.reset_pending = True
            s.send.reset()
            self._queue_stream(s)
        return 0

    # Connection IDs ----------------------------------------------------

    cdef int _handle_new_connection_id(self, Reader* r) except -1:
        cdef uint64_t seq, retire_prior_to
        cdef uint8_t cid_len
        self._need_varint(r, &seq, F_NEW_CONNECTION_ID)
        self._need_varint(r, &retire_prior_to, F_NEW_CONNECTION_ID)
        if reader_uint8(r, &cid_len) < 0 or cid_len < 1 or cid_len > 20 or reader_skip(r, cid_len + 16) < 0:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=F_NEW_CONNECTION_ID, reason="malformed NEW_CONNECTION_ID")
        if retire_prior_to > seq:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=F_NEW_CONNECTION_ID, reason="retire_prior_to above sequence number")
        if len(self.peer_cid) == 0:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_NEW_CONNECTION_ID, reason="NEW_CONNECTION_ID while using zero-length CIDs")
        cdef bytes cid = bytes(r.data[r.pos - 16 - cid_len:r.pos - 16])
        cdef bytes token = bytes(r.data[r.pos - 16:r.pos])
        for entry in self.peer_cids:
            if entry[0] == seq:
                if entry[1] != cid:
                    raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_NEW_CONNECTION_ID, reason="sequence number reused for another CID")
                return 0
        if seq < self.peer_retire_prior_to:
            self.retire_cid_pending.append(seq)   # already retired: retire immediately
            if len(self.retire_cid_pending) > MAX_PENDING_RETIREMENTS:
                raise errors.TransportError(E.CONNECTION_ID_LIMIT_ERROR, frame_type=F_NEW_CONNECTION_ID,
                                            reason="too many connection IDs to retire")
            return 0
        self.peer_cids.append([seq, cid, token])
        if retire_prior_to > self.peer_retire_prior_to:
            self.peer_retire_prior_to = retire_prior_to
            kept = []
            for entry in self.peer_cids:
                if entry[0] < retire_prior_to:
                    self.retire_cid_pending.append(entry[0])
                    if len(self.retire_cid_pending) > MAX_PENDING_RETIREMENTS:
                        # RFC 9000 §5.1.2: bound the retirements we owe the peer.
                        raise errors.TransportError(E.CONNECTION_ID_LIMIT_ERROR, frame_type=F_NEW_CONNECTION_ID,
                                                    reason="too many connection IDs to retire")
                else:
                    kept.append(entry)
            self.peer_cids = kept
            self.peer_cids.sort()
            self.peer_cid = self.peer_cids[0][1]
        if len(self.peer_cids) > self.config.active_connection_id_limit:
            raise errors.TransportError(E.CONNECTION_ID_LIMIT_ERROR, frame_type=F_NEW_CONNECTION_ID, reason="peer exceeded active_connection_id_limit")
        return 0

    cdef int _handle_retire_connection_id(self, uint64_t seq) except -1:
        if seq >= self.host_cid_seq:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_RETIRE_CONNECTION_ID, reason="retiring a CID never issued")
        for entry in self.host_cids:
            if entry[0] == seq and not entry[3]:
                entry[3] = True
                self._events.append(ConnectionIdRetired(entry[1]))
                self._issue_connection_ids()
                break
        return 0

    cdef void _issue_connection_ids(self):
        """Keep as many CIDs issued as the peer allows (RFC 9000 §5.1.1)."""
        if self.host_cid_len == 0 or self.peer_params is None:
            return
        cdef int limit = min(self.peer_params.active_connection_id_limit, MAX_PEER_CIDS)
        cdef int active = sum(1 for e in self.host_cids if not e[3])
        while active < limit:
            cid = os.urandom(self.host_cid_len)
            token = _crypto.stateless_reset_token(self.stateless_reset_key, cid)
            self.host_cids.append([self.host_cid_seq, cid, token, False])
            self.new_cid_pending.append(self.host_cid_seq)
            self._events.append(ConnectionIdIssued(cid))
            self.host_cid_seq += 1
            active += 1
        self.host_cids = [e for e in self.host_cids if not e[3]]

    # Other frames ------------------------------------------------------

    cdef int _handle_connection_close(self, Reader* r, uint64_t ftype, int64_t now) except -1:
        cdef uint64_t code, frame_type = 0, reason_len
        self._need_varint(r, &code, ftype)
        if ftype == F_CONNECTION_CLOSE:
            self._need_varint(r, &frame_type, ftype)
        self._need_varint(r, &reason_len, ftype)
        if reader_skip(r, <Py_ssize_t>reason_len) < 0:
            raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="truncated CONNECTION_CLOSE reason")
        reason = bytes(r.data[r.pos - reason_len:r.pos]).decode("utf-8", "replace")
        if ftype == F_CONNECTION_CLOSE_APP:
            err = errors.ApplicationError(code, reason, remote=True)
        else:
            err = errors.TransportError(code, frame_type=frame_type, reason=reason, remote=True)
        # RFC 9000 §10.2.2: enter draining for three PTOs.
        self.state = S_DRAINING
        self.terminated_error = err
        self.close_deadline = now + 3 * self._current_pto()
        return 0

    cdef int _handle_datagram_frame(self, Reader* r, uint64_t ftype) except -1:
        cdef uint64_t length
        if ftype == F_DATAGRAM_LEN:
            self._need_varint(r, &length, ftype)
            if length > <uint64_t>(r.end - r.pos):
                raise errors.TransportError(E.FRAME_ENCODING_ERROR, frame_type=ftype, reason="DATAGRAM past packet end")
        else:
            length = r.end - r.pos
        if not self.config.enable_datagrams:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype, reason="DATAGRAM frames not negotiated")
        if length + 3 > <uint64_t>self.config.max_datagram_frame_size:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=ftype, reason="DATAGRAM larger than max_datagram_frame_size")
        data = bytes(r.data[r.pos:r.pos + length])
        r.pos += <Py_ssize_t>length
        self._events.append(DatagramReceived(data))
        return 0

    cdef void _on_new_token(self, bytes token):
        store = self.config.token_store
        if store is not None and self._tls.server_name:
            store.put(self._tls.server_name, token)

    # ------------------------------------------------------------------
    # TLS glue (RFC 9001 §4)
    # ------------------------------------------------------------------

    cdef void _setup_initial_keys(self, bytes dcid):
        send, recv = _crypto.initial_packet_protections(dcid, self.version, self.is_client)
        cdef PacketSpace space = <PacketSpace>self.spaces[SPACE_INITIAL]
        space.send_keys = send
        space.recv_keys = recv

    def _on_secret(self, level, bint is_write, cipher_suite, bytes secret):
        keys = PacketProtection.from_secret(int(cipher_suite), secret, self.version)
        if level == tls.Level.ZERO_RTT:
            if is_write:
                self.zero_rtt_send = keys
            else:
                self.zero_rtt_recv = keys
            return
        cdef PacketSpace space = <PacketSpace>self.spaces[SPACE_HANDSHAKE if level == tls.Level.HANDSHAKE else SPACE_APPLICATION]
        if is_write:
            space.send_keys = keys
            if level == tls.Level.ONE_RTT:
                self.send_secret_1rtt = secret
                self.aead_confidentiality_limit = _crypto.confidentiality_limit(int(cipher_suite))
                self.aead_integrity_limit = _crypto.integrity_limit(int(cipher_suite))
                interval = self.config.key_update_interval
                # Update well before the confidentiality limit even when the interval is off.
                self.key_update_after = min(interval or self.aead_confidentiality_limit,
                                            self.aead_confidentiality_limit - self.aead_confidentiality_limit // 8)
        else:
            space.recv_keys = keys
            if level == tls.Level.ONE_RTT:
                self.recv_secret_1rtt = secret

    cdef void _drain_tls_output(self):
        cdef PacketSpace space
        cdef const uint8_t[:] view
        out = self._tls.output
        for level, data in out.items():
            if data:
                space = <PacketSpace>self.spaces[SPACE_INITIAL if level == tls.Level.INITIAL else
                                                 SPACE_HANDSHAKE if level == tls.Level.HANDSHAKE else SPACE_APPLICATION]
                view = bytes(data)
                space.crypto_send.write(&view[0], view.shape[0])
                data.clear()

    cdef int _after_tls(self, int64_t now) except -1:
        self._drain_tls_output()
        if not self.peer_params_applied and self._tls.peer_transport_parameters is not None:
            self._apply_peer_params(self._tls.peer_transport_parameters)
        if self._tls.handshake_complete and not self.handshake_complete:
            self.handshake_complete = True
            self.state = S_CONNECTED
            self.idle_timeout_ns = self._negotiated_idle_timeout()
            if self.is_client:
                if self.early_data_offered and not self._tls.early_data_accepted:
                    self.zero_rtt_send = None
                    self._requeue_all_stream_data()
                    self._events.append(ZeroRTTRejected())
            self._events.append(HandshakeCompleted(self._tls.alpn_protocol, bool(self._tls.session_resumed),
                                                          bool(self._tls.early_data_accepted)))
            self._issue_connection_ids()
            if not self.is_client:
                # RFC 9001 §4.1.2: the server's handshake is confirmed on completion.
                self.handshake_done_pending = True
                self._confirm_handshake(now)
        return 0

    cdef int _confirm_handshake(self, int64_t now) except -1:
        if self.handshake_confirmed:
            return 0
        self.handshake_confirmed = True
        self.recovery.handshake_confirmed = True
        self.recovery.peer_completed_address_validation = True
        if not (<PacketSpace>self.spaces[SPACE_INITIAL]).discarded:
            self._discard_space(SPACE_INITIAL, now)
        self._discard_space(SPACE_HANDSHAKE, now)
        self._events.append(HandshakeConfirmed())
        return 0

    cdef void _discard_space(self, int space_id, int64_t now):
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        if space.discarded:
            return
        space.discarded = True
        space.send_keys = None
        space.recv_keys = None
        space.received.clear()
        space.ack_immediately = False
        space.ack_deadline = TIME_NONE
        self.recovery.discard_space(space_id, now)

    cdef int64_t _negotiated_idle_timeout(self):
        cdef int64_t local = to_ns(self.config.max_idle_timeout)
        cdef int64_t peer = 0
        if self.peer_params is not None and self.peer_params.max_idle_timeout:
            peer = <int64_t>self.peer_params.max_idle_timeout * 1000000
        if local and peer:
            return min(local, peer)
        return local or peer

    cdef int _apply_peer_params(self, bytes data) except -1:
        params = tp.decode_transport_parameters(data, from_server=self.is_client)
        if self.is_client:
            tp.validate_connection_ids(params, True, expected_initial_scid=self.peer_cid,
                                       expected_original_dcid=self.original_dcid,
                                       expected_retry_scid=self.retry_scid if self.retry_received else None)
        else:
            tp.validate_connection_ids(params, False, expected_initial_scid=self.peer_cid)
        self.peer_params = params
        self._cache_peer_stream_limits(params)
        self.peer_params_applied = True
        if self.tracer is not None:
            self.tracer.event("transport:parameters_set", dict(owner="remote", **_params_for_qlog(params)),
                              self.clock_ns / 1e9)
        self.peer_max_bidi = params.initial_max_streams_bidi
        self.peer_max_uni = params.initial_max_streams_uni
        self.conn_send_window.update(params.initial_max_data)
        self.ack_delay_exponent_peer = params.ack_delay_exponent
        self.recovery.max_ack_delay = <int64_t>params.max_ack_delay * 1000000
        self.peer_max_datagram_frame_size = params.max_datagram_frame_size or 0
        self.peer_min_ack_delay_us = params.min_ack_delay if params.min_ack_delay is not None else -1
        if params.max_udp_payload_size < self.max_datagram_size:
            self.max_datagram_size = max(1200, params.max_udp_payload_size)
            self.pmtud_low = self.max_datagram_size
        if params.max_udp_payload_size < self.pmtud_high:
            self.pmtud_high = max(self.pmtud_low, params.max_udp_payload_size)
        if self.is_client and params.stateless_reset_token is not None:
            self.peer_cids[0][2] = params.stateless_reset_token
        cdef Stream s
        for s in self.streams.values():
            # Streams opened before the parameters arrived (0-RTT) get their limits now.
            if s.send is not None:
                local = (s.stream_id & 1) == (0 if self.is_client else 1)
                if s.stream_id & 2:
                    s.send_window.update(params.initial_max_stream_data_uni)
                elif local:
                    s.send_window.update(params.initial_max_stream_data_bidi_remote)
                else:
                    s.send_window.update(params.initial_max_stream_data_bidi_local)
        self._events.append(StreamsAvailable(False))
        return 0

    def _on_session_ticket(self, ticket):
        # Remember the server's transport parameters with the ticket for 0-RTT.
        if self._tls.peer_transport_parameters is not None:
            ticket.other_data = bytes(self._tls.peer_transport_parameters)

    def set_remembered_transport_parameters(self, bytes data):
        """Client, 0-RTT: apply the server's parameters remembered with the
        session ticket (RFC 9000 §7.4.1) so early data respects them."""
        params = tp.decode_transport_parameters(data, from_server=True)
        self.peer_max_bidi = params.initial_max_streams_bidi
        self.peer_max_uni = params.initial_max_streams_uni
        self.conn_send_window.update(params.initial_max_data)
        self.peer_params = params
        self._cache_peer_stream_limits(params)
        self.peer_max_datagram_frame_size = params.max_datagram_frame_size or 0

    cdef void _cache_peer_stream_limits(self, object params):
        self.peer_initial_max_stream_data_uni = params.initial_max_stream_data_uni
        self.peer_initial_max_stream_data_bidi_local = params.initial_max_stream_data_bidi_local
        self.peer_initial_max_stream_data_bidi_remote = params.initial_max_stream_data_bidi_remote

    # ------------------------------------------------------------------
    # Closing (RFC 9000 §10)
    # ------------------------------------------------------------------

    cdef void _enter_closing(self, object err):
        if self.state >= S_CLOSING:
            return
        if self.close_frame is None:
            if isinstance(err, errors.TransportError):
                self.close_frame = (err.error_code, err.frame_type, err.reason, False)
            else:
                self.close_frame = (getattr(err, "error_code", 0), None, getattr(err, "reason", ""), True)
        self.terminated_error = err
        self.state = S_CLOSING
        self.close_deadline = self.last_activity + 3 * self._current_pto()
        self.last_close_sent = -1

    cdef void _terminate(self, object err):
        if self.state == S_TERMINATED:
            return
        self.state = S_TERMINATED
        if self.terminated_error is None:
            self.terminated_error = err
        self._events.append(ConnectionTerminated(self.terminated_error))
        if self.tracer is not None:
            err = self.terminated_error
            self.tracer.event("connectivity:connection_closed", {
                "owner": "remote" if getattr(err, "remote", False) else "local",
                "error_code": getattr(err, "error_code", None), "reason": str(err),
                "trigger": type(err).__name__}, self.clock_ns / 1e9)
            self.tracer.close()
            self.tracer = None

    cdef bint _is_stateless_reset(self, const uint8_t* tail):
        """RFC 9000 §10.3.1: an undecryptable packet ending in a reset token
        the peer gave us means the peer lost its state."""
        cdef bytes candidate = bytes(tail[:16])
        for entry in self.peer_cids:
            if entry[2] is not None and entry[2] == candidate:
                self.state = S_DRAINING
                self.terminated_error = errors.StatelessResetError(candidate)
                self._terminate(self.terminated_error)
                return True
        return False

    def handle_stateless_reset(self, bytes token=b""):
        """The driver matched `token`, a stateless reset token the peer gave us:
        the peer lost its state (RFC 9000 §10.3.1)."""
        self.state = S_DRAINING
        self.terminated_error = errors.StatelessResetError(token)
        self._terminate(self.terminated_error)

    @property
    def peer_reset_tokens(self):
        """Stateless reset tokens the peer gave us (for matching incoming resets)."""
        return [entry[2] for entry in self.peer_cids if entry[2] is not None]

    @property
    def close_error(self):
        """The exception describing why the connection closed, or None."""
        return self.terminated_error

    # ------------------------------------------------------------------
    # Timers
    # ------------------------------------------------------------------

    cdef int64_t _next_timer(self):
        cdef int64_t t = TIME_NONE, x
        cdef int i
        cdef PacketSpace space
        cdef int64_t now_ns = self.last_activity
        if self.state == S_TERMINATED:
            return TIME_NONE
        if self.state >= S_CLOSING:
            return self.close_deadline
        if self.idle_timeout_ns:
            t = self.last_activity + max(self.idle_timeout_ns, 3 * self._current_pto())
            if not self.handshake_complete:
                t = min(t, self.created + to_ns(self.config.handshake_idle_timeout) * 2)
        x = self.recovery.get_loss_detection_timer(now_ns, (<PacketSpace>self.spaces[SPACE_HANDSHAKE]).send_keys is not None, self._server_amplification_blocked())
        if x < t:
            t = x
        for i in range(3):
            space = <PacketSpace>self.spaces[i]
            if space.ack_deadline != TIME_NONE and space.ack_deadline < t:
                t = space.ack_deadline
        if self.pacing_until and self.pacing_until < t:
            t = self.pacing_until
        if self.prev_keys_discard_at < t:
            t = self.prev_keys_discard_at
        if self.keep_alive_ns and self.handshake_complete:
            x = max(self.last_activity, self.keep_alive_sent) + self.keep_alive_ns
            if x < t:
                t = x
        return t

    cdef int64_t _current_pto(self):
        """RFC 9000 §10.1/§10.2's "current PTO": without the exponential
        backoff, which would stretch idle and closing periods without bound
        while probes to a silent peer go unanswered."""
        if not self.handshake_complete:
            # During the handshake backed-off probes are all there is, and the
            # handshake deadline (twice handshake_idle_timeout) bounds the wait.
            return self.recovery.pto_duration(SPACE_APPLICATION)
        return self.recovery.rtt.pto_base() + self.recovery.max_ack_delay

    cdef bint _server_amplification_blocked(self):
        return not self.is_client and not self.address_validated and \
            self.bytes_sent_unvalidated >= 3 * self.bytes_received_unvalidated

    cdef bint _client_has_no_handshake_keys(self):
        return self.is_client and (<PacketSpace>self.spaces[SPACE_HANDSHAKE]).recv_keys is None and not self.handshake_complete

    def handle_timer(self, double now):
        """Run whatever timers expired by `now`."""
        cdef int64_t t = to_ns(now)
        cdef int space_id
        cdef int64_t now_ns = t
        if t > self.clock_ns:
            self.clock_ns = t
        if self.state == S_TERMINATED:
            return
        if self.state >= S_CLOSING:
            if t >= self.close_deadline:
                self._terminate(self.terminated_error)
            return
        if self.idle_timeout_ns:
            if not self.handshake_complete and t >= self.created + to_ns(self.config.handshake_idle_timeout) * 2:
                self.state = S_DRAINING
                self.terminated_error = errors.HandshakeTimeoutError()
                self._terminate(self.terminated_error)
                return
            if t >= self.last_activity + max(self.idle_timeout_ns, 3 * self._current_pto()):
                self.state = S_DRAINING
                if self.handshake_complete:
                    self.terminated_error = errors.IdleTimeoutError()
                else:
                    self.terminated_error = errors.HandshakeTimeoutError()
                self._terminate(self.terminated_error)
                return
        # The same reference time as _next_timer (last_activity): the client's
        # anti-deadlock PTO counts from it, and with `now` it would never be due.
        if t >= self.recovery.get_loss_detection_timer(self.last_activity, (<PacketSpace>self.spaces[SPACE_HANDSHAKE]).send_keys is not None, self._server_amplification_blocked()):
            space_id = self.recovery.on_loss_detection_timeout(t, self)
            if space_id >= 0:
                self._schedule_probes(space_id, t)
        if self.keep_alive_ns and self.handshake_complete and t >= max(self.last_activity, self.keep_alive_sent) + self.keep_alive_ns:
            # Re-armed from now: from last_activity alone it stayed in the past
            # until a packet arrived, and drivers spun sending PINGs.
            self.keep_alive_sent = t
            self.ping_pending = True
        if self.pacing_until and t >= self.pacing_until:
            self.pacing_until = 0
        if t >= self.prev_keys_discard_at:
            self.prev_recv_keys = None
            self.prev_keys_discard_at = TIME_NONE

    cdef void _schedule_probes(self, int space_id, int64_t now):
        """PTO fired (RFC 9002 §6.2.4): send one or two ack-eliciting probes,
        re-sending unacknowledged CRYPTO data when there is some."""
        cdef PacketSpace space
        if self.recovery.pto_count >= 3:
            self._on_possible_black_hole()
        if self._client_has_no_handshake_keys() and space_id != SPACE_APPLICATION:
            # Anti-deadlock (RFC 9002 §6.2.2.1): Handshake if we have keys, else Initial.
            space_id = SPACE_HANDSHAKE if (<PacketSpace>self.spaces[SPACE_HANDSHAKE]).send_keys is not None else SPACE_INITIAL
        space = <PacketSpace>self.spaces[space_id]
        if space.discarded:
            return
        space.probes = max(self.recovery.probes_to_send, 1)
        if space.crypto_send.sent_offset > space.crypto_send.acked_offset:
            space.crypto_send.on_lost(space.crypto_send.acked_offset,
                                      space.crypto_send.sent_offset - space.crypto_send.acked_offset, False)

    # ------------------------------------------------------------------
    # qlog (only when a tracer is set)
    # ------------------------------------------------------------------

    cdef void _qlog_packet(self, str name, int ptype, uint64_t pn, Py_ssize_t length, SentPacket* rec, int64_t now):
        cdef list frames = []
        cdef int i
        cdef FrameRecord* f
        if rec != NULL:
            if rec.largest_acked_sent != UINT64_MAX:
                frames.append({"frame_type": "ack", "largest_acknowledged": rec.largest_acked_sent})
            for i in range(rec.frame_count):
                f = &rec.frames[i]
                if f.kind == FRAME_STREAM:
                    frames.append({"frame_type": "stream", "stream_id": f.stream_id, "offset": f.offset,
                                   "length": f.length, "fin": bool(f.fin)})
                elif f.kind == FRAME_CRYPTO:
                    frames.append({"frame_type": "crypto", "offset": f.offset, "length": f.length})
                else:
                    frames.append({"frame_type": _QLOG_FRAME_NAMES.get(f.kind, "unknown")})
        data = {"header": {"packet_type": _QLOG_PACKET_NAMES[ptype], "packet_number": pn},
                "raw": {"length": length}}
        if rec != NULL:
            data["frames"] = frames
        self.tracer.event(name, data, now / 1e9)
        if rec != NULL and rec.ack_eliciting:
            r = self.recovery
            self.tracer.event("recovery:metrics_updated", {
                "congestion_window": r.cc.congestion_window, "bytes_in_flight": r.cc.bytes_in_flight,
                "smoothed_rtt": r.rtt.smoothed_rtt / 1e6, "min_rtt": r.rtt.min_rtt / 1e6,
                "latest_rtt": r.rtt.latest_rtt / 1e6, "pto_count": r.pto_count}, now / 1e9)

    # ------------------------------------------------------------------
    # Sending (RFC 9000 §12–14, §17)
    # ------------------------------------------------------------------

    def datagrams_to_send(self, double now):
        """Slow path: every datagram ready now, as a list of ``(bytes, addr)``."""
        cdef list out = []
        cdef bytearray buf = bytearray(64 * 1500)
        cdef uint8_t* ptr = <uint8_t*>(<char*>buf)
        cdef Py_ssize_t count, seg, total, i, start
        while True:
            count = self._fill(ptr, len(buf), 64, to_ns(now), &seg, &total)
            if count == 0:
                break
            for i in range(count):
                start = i * seg
                out.append((bytes(buf[start:min(start + seg, total)]), self.peer_addr))
        return out

    def fill_send_buffer(self, buf, int max_datagrams, double now):
        """Fast path: write up to `max_datagrams` datagrams into the writable
        `buf`, all `segment_size` bytes long but the last (ready for one GSO
        send). Returns ``(count, segment_size, total_length)``."""
        cdef uint8_t[:] view = buf
        cdef Py_ssize_t seg = 0, total = 0
        cdef Py_ssize_t count = self._fill(&view[0], view.shape[0], max_datagrams, to_ns(now), &seg, &total)
        return count, seg, total

    cdef Py_ssize_t _fill(self, uint8_t* buf, Py_ssize_t cap, int max_datagrams, int64_t now,
                          Py_ssize_t* seg_out, Py_ssize_t* total_out) except -1:
        cdef Py_ssize_t pos = 0, n, seg = self.max_datagram_size
        cdef int count = 0
        if now > self.clock_ns:
            self.clock_ns = now
        if self._mtu_probe_due() and self.pmtud_probe_size_next() <= cap:
            # A probe travels alone: its size differs from the GSO segment size.
            n = self._build_mtu_probe(buf, now)
            if n > 0:
                self.datagrams_sent += 1
                self.bytes_sent_total += n
                seg_out[0] = n
                total_out[0] = n
                return 1
        while count < max_datagrams and pos + seg <= cap:
            n = self._build_datagram(buf + pos, seg, now)
            if n <= 0:
                break
            if count == 0:
                seg = n
            count += 1
            pos += n
            self.datagrams_sent += 1
            self.bytes_sent_total += n
            if not self.address_validated:
                self.bytes_sent_unvalidated += n
            if n < seg:
                break
        seg_out[0] = seg
        total_out[0] = pos
        return count

    # DPLPMTUD (RFC 8899) ----------------------------------------------

    cdef int pmtud_probe_size_next(self):
        """Try the upper bound first (it usually works), then bisect."""
        if self.pmtud_high - self.pmtud_low >= 20 and self.pmtud_probe == 0:
            if self.pmtud_black_holes == 0 and self.pmtud_high == self.config.max_packet_size:
                return self.pmtud_high
            return (self.pmtud_low + self.pmtud_high + 1) // 2
        return 0

    cdef bint _mtu_probe_due(self):
        if not self.pmtud_enabled or not self.handshake_confirmed or self.state != S_CONNECTED:
            return False
        if (<PacketSpace>self.spaces[SPACE_APPLICATION]).send_keys is None:
            return False
        cdef int size = self.pmtud_probe_size_next()
        return size > 0 and self.recovery.cc.available() >= <uint64_t>size

    cdef Py_ssize_t _build_mtu_probe(self, uint8_t* buf, int64_t now) except -1:
        cdef int size = self.pmtud_probe_size_next()
        self.pmtud_probe_building = size
        cdef Py_ssize_t n = self._build_packet(buf, size, SPACE_APPLICATION, now, size, False)
        self.pmtud_probe_building = 0
        if n > 0:
            self.pmtud_probe = size
        return n

    cdef void _on_mtu_probe_result(self, int size, bint acked):
        if size != self.pmtud_probe:
            return
        self.pmtud_probe = 0
        if acked:
            self.pmtud_low = size
            if size > self.max_datagram_size:
                self.max_datagram_size = size
                self.recovery.cc.max_datagram_size = size
        else:
            self.pmtud_high = size - 1

    cdef void _on_possible_black_hole(self):
        """Repeated PTOs after the path size grew: fall back to the base size
        (RFC 8899 §4.3) and search again, more carefully."""
        if self.max_datagram_size > self.config.initial_packet_size:
            self.pmtud_black_holes += 1
            self.pmtud_high = self.max_datagram_size - 1
            self.max_datagram_size = self.config.initial_packet_size
            self.pmtud_low = self.max_datagram_size
            self.recovery.cc.max_datagram_size = self.max_datagram_size
            self.pmtud_probe = 0

    cdef bint _space_wants_send(self, int space_id, int64_t now):
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        if space.discarded or (space.send_keys is None and not (space_id == SPACE_APPLICATION and self.zero_rtt_send is not None)):
            return False
        if space.ack_due(now) or space.probes or space.crypto_send.has_data_to_send(UINT64_MAX):
            return True
        if space_id == SPACE_APPLICATION:
            return self._app_wants_send()
        return False

    cdef bint _app_wants_send(self):
        return bool(self.send_queue or self.handshake_done_pending or self.path_challenge_pending or self.max_data_pending or self.new_tokens_pending
                    or self.max_streams_bidi_pending or self.max_streams_uni_pending
                    or self.new_cid_pending or self.retire_cid_pending or self.path_responses
                    or self.datagrams_out or self.ping_pending or self.data_blocked_pending
                    or self.streams_blocked_bidi_pending or self.streams_blocked_uni_pending)

    cdef Py_ssize_t _build_datagram(self, uint8_t* buf, Py_ssize_t room, int64_t now) except -1:
        cdef Py_ssize_t pos = 0, n, pad_to
        cdef int space_id, last_space = -1
        cdef bint needs_padding = False
        if self.state == S_TERMINATED or self.state == S_DRAINING:
            return 0
        if not self.address_validated and not self.is_client:
            # RFC 9000 §8.1: at most three times what the client sent.
            n = <Py_ssize_t>(3 * self.bytes_received_unvalidated - self.bytes_sent_unvalidated) \
                if 3 * self.bytes_received_unvalidated > self.bytes_sent_unvalidated else 0
            if n < room:
                room = n
            if room < (40 if self.handshake_confirmed else 64):
                return 0
        if self.state == S_CLOSING:
            return self._build_close_datagram(buf, room, now)
        for space_id in range(3):
            if not self._space_wants_send(space_id, now):
                continue
            pad_to = 0
            if needs_padding or (space_id == SPACE_INITIAL and self.is_client):
                needs_padding = True
                if not any(self._space_wants_send(later, now) for later in range(space_id + 1, 3)):
                    pad_to = MIN_INITIAL_DATAGRAM_SIZE - pos
            n = self._build_packet(buf + pos, room - pos, space_id, now, pad_to, False)
            if n > 0:
                if space_id == SPACE_INITIAL and not self.is_client and self._last_packet_ack_eliciting:
                    needs_padding = True
                pos += n
                last_space = space_id
                if self.is_client and space_id == SPACE_HANDSHAKE and not (<PacketSpace>self.spaces[SPACE_INITIAL]).discarded:
                    # RFC 9001 §4.9.1: the client discards Initial keys once it sends Handshake.
                    self._discard_space(SPACE_INITIAL, now)
            if room - pos < 64:
                break
        if needs_padding and pos < MIN_INITIAL_DATAGRAM_SIZE and pos > 0 and room >= MIN_INITIAL_DATAGRAM_SIZE:
            # Pad with a PADDING-only packet in the highest space that has keys.
            for space_id in (SPACE_INITIAL, SPACE_HANDSHAKE, SPACE_APPLICATION):
                if (<PacketSpace>self.spaces[space_id]).send_keys is not None and not (<PacketSpace>self.spaces[space_id]).discarded:
                    n = self._build_packet(buf + pos, room - pos, space_id, now, MIN_INITIAL_DATAGRAM_SIZE - pos, True)
                    pos += n
                    break
        return pos

    cdef Py_ssize_t _build_close_datagram(self, uint8_t* buf, Py_ssize_t room, int64_t now) except -1:
        """In the closing state, send CONNECTION_CLOSE at most once per
        interval (RFC 9000 §10.2.1), in every space we still have keys for."""
        if self.last_close_sent >= 0 and (not self.close_reply_due or now - self.last_close_sent < CLOSE_RESEND_INTERVAL_NS):
            return 0
        cdef Py_ssize_t pos = 0
        cdef int space_id
        for space_id in range(3):
            space = <PacketSpace>self.spaces[space_id]
            if space.send_keys is None or space.discarded:
                continue
            pos += self._build_packet(buf + pos, room - pos, space_id, now, 0, False)
        self.last_close_sent = now   # sent; again only when a packet arrives
        self.close_reply_due = False
        return pos

    cdef Py_ssize_t _build_packet(self, uint8_t* buf, Py_ssize_t room, int space_id, int64_t now,
                                  Py_ssize_t pad_to, bint padding_only) except -1:
        cdef PacketSpace space = <PacketSpace>self.spaces[space_id]
        cdef PacketProtection keys = space.send_keys
        cdef int ptype
        if space_id == SPACE_INITIAL:
            ptype = PACKET_INITIAL
        elif space_id == SPACE_HANDSHAKE:
            ptype = PACKET_HANDSHAKE
        elif keys is not None:
            ptype = PACKET_ONE_RTT
        else:
            keys = self.zero_rtt_send
            ptype = PACKET_ZERO_RTT
        if keys is None:
            return 0
        cdef uint64_t pn = space.next_pn
        cdef int pn_len = packet_number_length(pn, space.largest_acked_by_peer, space.largest_acked_by_peer != UINT64_MAX)
        if pn_len < 2:
            pn_len = 2
        cdef Py_ssize_t p = 0, length_offset = 0, pn_offset, header_len
        cdef bytes dcid = self.peer_cid
        cdef Py_ssize_t dlen = len(dcid)
        cdef bytes scid, token
        cdef int i
        if ptype != PACKET_ONE_RTT:
            scid = self.host_cid
            token = self.retry_token if ptype == PACKET_INITIAL and self.is_client else b""
            if room < 7 + dlen + len(scid) + 8 + len(token) + pn_len + 32:
                return 0
            buf[0] = 0xC0 | (long_type_bits(self.version, ptype) << 4) | (pn_len - 1)
            buf[1] = <uint8_t>(self.version >> 24)
            buf[2] = <uint8_t>(self.version >> 16)
            buf[3] = <uint8_t>(self.version >> 8)
            buf[4] = <uint8_t>self.version
            buf[5] = <uint8_t>dlen
            memcpy(buf + 6, <const char*>dcid, dlen)
            p = 6 + dlen
            buf[p] = <uint8_t>len(scid)
            memcpy(buf + p + 1, <const char*>scid, len(scid))
            p += 1 + len(scid)
            if ptype == PACKET_INITIAL:
                p += write_varint(buf + p, len(token))
                if len(token):
                    memcpy(buf + p, <const char*>token, len(token))
                    p += len(token)
            length_offset = p
            p += 2
        else:
            if room < 1 + dlen + pn_len + 32:
                return 0
            buf[0] = 0x40 | (self.key_phase << 2) | (pn_len - 1)
            memcpy(buf + 1, <const char*>dcid, dlen)
            p = 1 + dlen
        pn_offset = p
        for i in range(pn_len):
            buf[p + i] = <uint8_t>(pn >> (8 * (pn_len - 1 - i)))
        header_len = pn_offset + pn_len

        cdef SentPacket* rec = self.recovery.prepare_packet(space_id, pn)
        cdef Writer w
        w.data = buf
        w.pos = header_len
        w.end = room - AEAD_TAG_SIZE
        cdef bint ack_eliciting = False
        if padding_only:
            pass
        elif self.state == S_CLOSING:
            self._write_close_frame(&w, space_id)
        else:
            ack_eliciting = self._write_frames(&w, rec, space, space_id, ptype, now)
        if ptype == PACKET_ONE_RTT and 0 < w.end - w.pos < 32 and w.pos > header_len:
            # Nearly full: pad to the end so every full packet of a GSO batch has
            # the same size (varint-sized stream headers vary by a few bytes).
            memset(buf + w.pos, 0, w.end - w.pos)
            w.pos = w.end
        cdef Py_ssize_t payload_len = w.pos - header_len
        if payload_len == 0 and not padding_only:
            # Nothing to send (window, pacing): the pn stays prepared for the
            # next packet. Skipping it would be legal, but a gap makes the
            # peer ACK at once (RFC 9000 §13.2.1), defeating ACK frequency.
            return 0
        # Header protection samples 16 bytes starting 4 after the packet number.
        cdef Py_ssize_t min_payload = 4 - pn_len if pn_len < 4 else 0
        if payload_len < min_payload:
            memset(buf + w.pos, 0, min_payload - payload_len)
            payload_len = min_payload
        if pad_to > 0 and header_len + payload_len + AEAD_TAG_SIZE < pad_to:
            n = min(pad_to, room) - header_len - AEAD_TAG_SIZE - payload_len
            if n > 0:
                memset(buf + header_len + payload_len, 0, n)
                payload_len += n
        if ptype != PACKET_ONE_RTT:
            write_varint_fixed(buf + length_offset, pn_len + payload_len + AEAD_TAG_SIZE, 2)
        cdef Py_ssize_t total = keys.protect(buf, header_len, pn_offset, pn_len, payload_len, pn)
        if total < 0:
            raise RuntimeError("packet protection failed (%d)" % total)
        rec.size = <uint32_t>total
        rec.ack_eliciting = ack_eliciting
        # Only ack-eliciting packets count in flight: a PADDING-only packet the
        # peer may never acknowledge (it can lack the keys, or have nothing to
        # ACK for) must not fill the congestion window with no PTO to recover
        # it. RFC 9002 §2 counts them; we deliberately do not.
        rec.in_flight = ack_eliciting
        self.recovery.on_packet_sent(space_id, rec, now)
        if self.tracer is not None:
            self._qlog_packet("transport:packet_sent", ptype, pn, total, rec, now)
        space.next_pn = pn + 1
        if self.ecn_enabled and space.ecn_first_marked_pn == UINT64_MAX:
            space.ecn_first_marked_pn = pn
        if ptype == PACKET_ONE_RTT:
            if self.first_1rtt_pn == UINT64_MAX:
                self.first_1rtt_pn = pn
            self.packets_in_phase += 1
            if self.packets_in_phase >= self.key_update_after and self.handshake_confirmed:
                if not self.key_update_pending_confirm:
                    self.request_key_update()       # RFC 9001 §6.1, before the AEAD limit
                elif self.packets_in_phase >= self.aead_confidentiality_limit:
                    self._enter_closing(errors.TransportError(
                        E.AEAD_LIMIT_REACHED, reason="AEAD confidentiality limit reached"))
        self._last_packet_ack_eliciting = ack_eliciting
        if ack_eliciting and space.probes:
            space.probes -= 1
        return total

    cdef int _write_close_frame(self, Writer* w, int space_id) except -1:
        code, frame_type, reason, is_app = self.close_frame
        cdef bytes reason_bytes = reason.encode("utf-8")[:256]
        if is_app and space_id != SPACE_APPLICATION:
            # RFC 9000 §10.2.3: an application close in Initial/Handshake is sent
            # as a transport close with APPLICATION_ERROR and no reason.
            code, frame_type, reason_bytes, is_app = E.APPLICATION_ERROR, 0, b"", False
        if w.end - w.pos < 24 + len(reason_bytes):
            reason_bytes = b""
        writer_uint8(w, F_CONNECTION_CLOSE_APP if is_app else F_CONNECTION_CLOSE)
        writer_varint(w, code)
        if not is_app:
            writer_varint(w, frame_type or 0)
        writer_varint(w, len(reason_bytes))
        if reason_bytes:
            writer_bytes(w, <const uint8_t*><const char*>reason_bytes, len(reason_bytes))
        return 0

    cdef inline void _record(self, SentPacket* rec, int kind, int64_t stream_id, uint64_t offset,
                             uint64_t length, bint fin) noexcept:
        cdef FrameRecord* f
        if rec.frame_count < MAX_FRAME_RECORDS:
            f = &rec.frames[rec.frame_count]
            f.kind = kind
            f.stream_id = stream_id
            f.offset = offset
            f.length = length
            f.fin = fin
            rec.frame_count += 1

    cdef int _write_ack_frame(self, Writer* w, SentPacket* rec, PacketSpace space, int64_t now) except -1:
        cdef RangeSet rs = space.received
        cdef Py_ssize_t i = rs.count - 1, written = 0
        cdef uint64_t largest = rs.ends[i] - 1
        cdef uint64_t delay_us = 0
        if now > space.largest_received_time:
            delay_us = <uint64_t>(now - space.largest_received_time) // 1000
        cdef uint64_t delay = delay_us >> 3   # our ack_delay_exponent is 3
        cdef Py_ssize_t count = rs.count if rs.count < MAX_ACK_RANGES_SENT else MAX_ACK_RANGES_SENT
        if w.end - w.pos < 1 + 8 + 8 + 8 + 8 + 16 * (count - 1) + 24 + 1:
            count = 1
            if w.end - w.pos < 40:
                return 0
        cdef bint with_ecn = (space.ecn_received[0] | space.ecn_received[1] | space.ecn_received[2]) != 0
        writer_uint8(w, F_ACK_ECN if with_ecn else F_ACK)
        writer_varint(w, largest)
        writer_varint(w, delay)
        writer_varint(w, count - 1)
        writer_varint(w, largest - rs.starts[i])
        cdef uint64_t prev_start = rs.starts[i]
        for written in range(1, count):
            i -= 1
            writer_varint(w, prev_start - rs.ends[i] - 1)       # gap
            writer_varint(w, rs.ends[i] - 1 - rs.starts[i])     # range length
            prev_start = rs.starts[i]
        if with_ecn:
            writer_varint(w, space.ecn_received[0])
            writer_varint(w, space.ecn_received[1])
            writer_varint(w, space.ecn_received[2])
        rec.largest_acked_sent = largest
        space.ack_eliciting_unacked = 0
        space.ack_immediately = False
        space.ack_deadline = TIME_NONE
        return 0

    cdef bint _write_frames(self, Writer* w, SentPacket* rec, PacketSpace space, int space_id,
                            int ptype, int64_t now) except? -1:
        """Fill one packet's payload. Returns whether it is ack-eliciting."""
        cdef bint ack_eliciting = False
        cdef bint probe = space.probes > 0
        cdef Py_ssize_t n, before
        cdef uint64_t offset, value
        cdef bint fin
        cdef const uint8_t* data
        cdef Stream s
        cdef int kind
        rec.largest_acked_sent = UINT64_MAX
        if self.pmtud_probe_building and space_id == SPACE_APPLICATION and ptype == PACKET_ONE_RTT:
            # A DPLPMTUD probe: PING, padded by the caller to the probe size.
            writer_uint8(w, F_PING)
            self._record(rec, FRAME_PING, 0, <uint64_t>self.pmtud_probe_building, 1, False)
            rec.is_mtu_probe = 1
            return True

        if ptype != PACKET_ZERO_RTT and space.received.count and (
                space.ack_due(now) or space.ack_eliciting_unacked > 0):
            self._write_ack_frame(w, rec, space, now)

        # Congestion control and pacing gate everything ack-eliciting except probes
        # and Initial/Handshake packets: those carry only the bounded TLS flights,
        # and gating them deadlocks when 1-RTT data the server may not process yet
        # (RFC 9001 §5.7) fills the window while the client's Finished is lost.
        cdef uint64_t cwnd_room = self.recovery.cc.available()
        cdef int64_t send_at
        if not probe and space_id == SPACE_APPLICATION:
            if cwnd_room < <uint64_t>(w.end - w.pos):
                if cwnd_room < 64:
                    return False
                w.end = w.pos + <Py_ssize_t>cwnd_room
            # Pacing (RFC 9002 §7.7): the bucket refills at 1.25 * cwnd / srtt;
            # when it is empty only the ACK leaves and the timer wakes us.
            send_at = self.recovery.pacer.next_send_time(<uint64_t>self.max_datagram_size, now)
            if send_at > now:
                self.pacing_until = send_at
                return False
            self.pacing_until = 0

        # CRYPTO (RFC 9000 §19.6).
        while ptype != PACKET_ZERO_RTT and w.end - w.pos > 16 and rec.frame_count < MAX_FRAME_RECORDS:
            n = space.crypto_send.next_frame(UINT64_MAX, w.end - w.pos - 1 - 8 - 4, &offset, &fin, &data)
            if n <= 0:
                break
            writer_uint8(w, F_CRYPTO)
            writer_varint(w, offset)
            writer_varint(w, <uint64_t>n)
            writer_bytes(w, data, n)
            self._record(rec, FRAME_CRYPTO, space_id, offset, n, False)
            ack_eliciting = True

        if space_id == SPACE_APPLICATION:
            if ptype == PACKET_ONE_RTT:
                ack_eliciting |= self._write_control_frames(w, rec)
            ack_eliciting |= self._write_stream_frames(w, rec, ptype, now)

        if probe and space_id == SPACE_APPLICATION and ptype == PACKET_ONE_RTT and self.peer_min_ack_delay_us >= 0 \
                and w.end - w.pos >= 1:
            # A probe's ACK is wanted now, whatever ACK frequency we asked for.
            writer_uint8(w, F_IMMEDIATE_ACK)
            ack_eliciting = True
        if (probe or self.ping_pending) and not ack_eliciting and w.end - w.pos >= 1:
            writer_uint8(w, F_PING)
            self._record(rec, FRAME_PING, 0, 0, 0, False)
            ack_eliciting = True
            if space_id == SPACE_APPLICATION:
                self.ping_pending = False
        return ack_eliciting

    cdef bint _write_control_frames(self, Writer* w, SentPacket* rec) except? -1:
        cdef bint wrote = False
        cdef uint64_t value
        if self.handshake_done_pending and w.end - w.pos >= 1 and not self.is_client:
            writer_uint8(w, F_HANDSHAKE_DONE)
            self._record(rec, FRAME_HANDSHAKE_DONE, 0, 0, 0, False)
            self.handshake_done_pending = False
            wrote = True
        if self.max_data_pending and self._room_for_counter_frame(w, rec):
            self._write_counter_frame(w, rec, F_MAX_DATA, FRAME_MAX_DATA, 0, self.conn_recv_window.next_limit())
            self.max_data_pending = False
            wrote = True
        if self.max_streams_bidi_pending and self._room_for_counter_frame(w, rec):
            self._write_counter_frame(w, rec, F_MAX_STREAMS_BIDI, FRAME_MAX_STREAMS_BIDI, 0, self.local_max_bidi)
            self.max_streams_bidi_pending = False
            wrote = True
        if self.max_streams_uni_pending and self._room_for_counter_frame(w, rec):
            self._write_counter_frame(w, rec, F_MAX_STREAMS_UNI, FRAME_MAX_STREAMS_UNI, 0, self.local_max_uni)
            self.max_streams_uni_pending = False
            wrote = True
        wrote |= self._write_data_blocked(w, rec)
        wrote |= self._write_streams_blocked(w, rec)
        if self.peer_min_ack_delay_us >= 0 and self.handshake_confirmed:
            wrote |= self._write_ack_frequency(w, rec)
        cdef bytes cid, token
        while self.new_cid_pending and w.end - w.pos >= 1 + 8 + 8 + 1 + 20 + 16 and rec.frame_count < MAX_FRAME_RECORDS:
            seq = self.new_cid_pending.pop(0)
            for entry in self.host_cids:
                if entry[0] == seq and not entry[3]:
                    cid = entry[1]
                    token = entry[2]
                    writer_uint8(w, F_NEW_CONNECTION_ID)
                    writer_varint(w, seq)
                    writer_varint(w, 0)
                    writer_uint8(w, len(cid))
                    writer_bytes(w, <const uint8_t*><const char*>cid, len(cid))
                    writer_bytes(w, <const uint8_t*><const char*>token, 16)
                    self._record(rec, FRAME_NEW_CONNECTION_ID, seq, 0, 0, False)
                    wrote = True
        while self.retire_cid_pending and w.end - w.pos >= 9 and rec.frame_count < MAX_FRAME_RECORDS:
            seq = self.retire_cid_pending.pop(0)
            writer_uint8(w, F_RETIRE_CONNECTION_ID)
            writer_varint(w, seq)
            self._record(rec, FRAME_RETIRE_CONNECTION_ID, seq, 0, 0, False)
            wrote = True
        while self.new_tokens_pending and self.handshake_confirmed and \
                w.end - w.pos >= 1 + 8 + len(self.new_tokens_pending[0]) and rec.frame_count < MAX_FRAME_RECORDS:
            token = self.new_tokens_pending.pop(0)
            writer_uint8(w, F_NEW_TOKEN)
            writer_varint(w, len(token))
            writer_bytes(w, <const uint8_t*><const char*>token, len(token))
            self._record(rec, FRAME_NEW_TOKEN, 0, 0, 0, False)
            wrote = True
        if self.path_challenge_pending and w.end - w.pos >= 9 and rec.frame_count < MAX_FRAME_RECORDS:
            writer_uint8(w, F_PATH_CHALLENGE)
            writer_bytes(w, <const uint8_t*><const char*>self.path_challenge, 8)
            self._record(rec, FRAME_PATH_CHALLENGE, 0, 0, 0, False)
            self.path_challenge_pending = False
            wrote = True
        while self.path_responses and w.end - w.pos >= 9:
            data = self.path_responses.pop(0)
            writer_uint8(w, F_PATH_RESPONSE)
            writer_bytes(w, <const uint8_t*><const char*>data, 8)
            wrote = True
        cdef bytes dgram
        while self.datagrams_out:
            dgram = self.datagrams_out[0]
            if len(dgram) > self.max_datagram_payload:
                self.datagrams_out.popleft()   # no longer fits (the path size shrank): drop it
                continue
            if w.end - w.pos < 1 + varint_size(len(dgram)) + len(dgram):
                break
            self.datagrams_out.popleft()
            writer_uint8(w, F_DATAGRAM_LEN)
            writer_varint(w, len(dgram))
            if len(dgram):
                writer_bytes(w, <const uint8_t*><const char*>dgram, len(dgram))
            wrote = True
        return wrote

    cdef bint _write_stream_frames(self, Writer* w, SentPacket* rec, int ptype, int64_t now) except? -1:
        cdef bint wrote = False
        cdef Stream s
        cdef Py_ssize_t n, hdr, room, rotations = 0
        cdef uint64_t offset, flow_limit, conn_room, before_sent, value
        cdef bint fin
        cdef const uint8_t* data
        cdef uint8_t ftype
        cdef Py_ssize_t type_pos
        cdef bint blocked
        while self.send_queue and w.end - w.pos > 24 and rec.frame_count < MAX_FRAME_RECORDS:
            s = self.streams.get(self.send_queue[0])
            if s is None:
                self.send_queue.popleft()
                continue
            if ptype == PACKET_ONE_RTT:
                if s.reset_pending and w.end - w.pos >= 25:
                    writer_uint8(w, F_RESET_STREAM)
                    writer_varint(w, <uint64_t>s.stream_id)
                    writer_varint(w, <uint64_t>s.reset_code)
                    writer_varint(w, s.send.sent_offset)
                    self._record(rec, FRAME_RESET_STREAM, s.stream_id, 0, 0, False)
                    s.reset_pending = False
                    wrote = True
                if s.stop_pending and w.end - w.pos >= 17 and rec.frame_count < MAX_FRAME_RECORDS:
                    writer_uint8(w, F_STOP_SENDING)
                    writer_varint(w, <uint64_t>s.stream_id)
                    writer_varint(w, <uint64_t>s.stop_code)
                    self._record(rec, FRAME_STOP_SENDING, s.stream_id, 0, 0, False)
                    s.stop_pending = False
                    wrote = True
                if s.max_stream_data_pending and w.end - w.pos >= 17 and rec.frame_count < MAX_FRAME_RECORDS:
                    value = s.recv_window.next_limit()
                    writer_uint8(w, F_MAX_STREAM_DATA)
                    writer_varint(w, <uint64_t>s.stream_id)
                    writer_varint(w, value)
                    self._record(rec, FRAME_MAX_STREAM_DATA, s.stream_id, value, 0, False)
                    s.max_stream_data_pending = False
                    wrote = True
            n = -1
            blocked = False
            if s.send is not None and s.reset_code < 0 and rec.frame_count < MAX_FRAME_RECORDS:
                conn_room = self.conn_send_window.limit - self.conn_sent_total if self.conn_send_window.limit > self.conn_sent_total else 0
                flow_limit = s.send_window.limit
                if s.send.sent_offset + conn_room < flow_limit:
                    flow_limit = s.send.sent_offset + conn_room
                hdr = 1 + varint_size(<uint64_t>s.stream_id) + 8 + 2
                room = w.end - w.pos - hdr
                if room > 0:
                    before_sent = s.send.sent_offset
                    n = s.send.next_frame(flow_limit, room, &offset, &fin, &data)
                    if n >= 0:
                        if s.send.sent_offset > before_sent:
                            self.conn_sent_total += s.send.sent_offset - before_sent
                        type_pos = w.pos
                        ftype = F_STREAM | (0x04 if offset else 0) | (0x01 if fin else 0)
                        writer_uint8(w, ftype)
                        writer_varint(w, <uint64_t>s.stream_id)
                        if offset:
                            writer_varint(w, offset)
                        # Always carry a length so that a full packet can be
                        # padded to exactly the GSO segment size.
                        w.data[type_pos] |= 0x02
                        w.pos += write_varint(w.data + w.pos, <uint64_t>n)
                        if n:
                            memcpy(w.data + w.pos, data, n)
                            w.pos += n
                        self._record(rec, FRAME_STREAM, s.stream_id, offset, n, fin)
                        wrote = True
                        if n >= room:
                            # Packet full; the stream keeps its turn for the next packet.
                            break
                    blocked = s.send.write_offset > s.send.sent_offset and s.send.sent_offset >= flow_limit
            if blocked:
                wrote |= self._write_blocked_frames(w, rec, s)
            # Done with this stream for now: drop it from the queue or rotate it.
            self.send_queue.popleft()
            if s.wants_send() and n >= 0:
                self.send_queue.append(s.stream_id)
            else:
                s.queued = False
                if n < 0 and s.wants_send():
                    # Blocked by flow control: it is re-queued when credit arrives.
                    pass
        return wrote

    cdef bint _write_blocked_frames(self, Writer* w, SentPacket* rec, Stream s):
        """New data of `s` waits for credit: tell the peer once per limit
        (RFC 9000 §4.1, STREAM_DATA_BLOCKED / DATA_BLOCKED, §19.12-13)."""
        if s.send.sent_offset >= s.send_window.limit:
            s.send_window.used = s.send.sent_offset
            if w.end - w.pos >= 17 and rec.frame_count < MAX_FRAME_RECORDS and s.send_window.blocked_frame_due():
                writer_uint8(w, F_STREAM_DATA_BLOCKED)
                writer_varint(w, <uint64_t>s.stream_id)
                writer_varint(w, s.send_window.limit)
                self._record(rec, FRAME_STREAM_DATA_BLOCKED, s.stream_id, s.send_window.limit, 0, False)
                return True
            return False
        self.conn_send_window.used = self.conn_sent_total
        if self.conn_send_window.blocked_frame_due():
            self.data_blocked_pending = True
        return self._write_data_blocked(w, rec)

    cdef inline bint _room_for_counter_frame(self, Writer* w, SentPacket* rec) noexcept:
        """Room for a frame of a type byte and one varint, and for its record."""
        return w.end - w.pos >= 9 and rec.frame_count < MAX_FRAME_RECORDS

    cdef inline void _write_counter_frame(self, Writer* w, SentPacket* rec, uint8_t ftype, int kind,
                                          int64_t key, uint64_t value) noexcept:
        """MAX_DATA, MAX_STREAMS, DATA_BLOCKED, STREAMS_BLOCKED: a type and one
        value; the record keeps the value so that a loss can tell if it is stale."""
        writer_uint8(w, ftype)
        writer_varint(w, value)
        self._record(rec, kind, key, value, 0, False)

    cdef bint _write_ack_frequency(self, Writer* w, SentPacket* rec):
        """Ask the peer to ACK every few packets once our window is large
        (draft-ietf-quic-ack-frequency §4): about eight ACKs per window, at
        most one ACK per MAX_ACK_ELICITING_THRESHOLD_ASKED + 1 packets, the
        request renewed at most once per RTT as the window changes. Fewer
        ACKs to process is most of what a fast sender's CPU goes to."""
        cdef uint64_t window_packets = self.recovery.cc.congestion_window // <uint64_t>self.max_datagram_size
        cdef int threshold = <int>min(max(window_packets // 8, <uint64_t>1), <uint64_t>MAX_ACK_ELICITING_THRESHOLD_ASKED)
        cdef int64_t now = self.clock_ns, srtt = self.recovery.rtt.smoothed_rtt
        if not self.ack_frequency_pending and (threshold == self.ack_frequency_sent_threshold or
                                               now - self.ack_frequency_sent_time < srtt):
            return False
        if w.end - w.pos < 1 + 2 + 8 + 8 + 8 + 1 or rec.frame_count >= MAX_FRAME_RECORDS:
            return False
        # The longest delay we ask for: a quarter RTT, within the peer's bounds.
        cdef int64_t delay_us = srtt // 4000
        cdef int64_t peer_max_us = self.recovery.max_ack_delay // 1000
        if delay_us > peer_max_us:
            delay_us = peer_max_us
        if delay_us < self.peer_min_ack_delay_us:
            delay_us = self.peer_min_ack_delay_us
        writer_varint(w, F_ACK_FREQUENCY)
        writer_varint(w, self.ack_frequency_seq)
        writer_varint(w, <uint64_t>threshold)
        writer_varint(w, <uint64_t>delay_us)
        writer_varint(w, 1)    # reordering threshold: ACK gaps at once, as RFC 9000 does
        self._record(rec, FRAME_ACK_FREQUENCY, 0, self.ack_frequency_seq, <uint64_t>threshold, False)
        self.ack_frequency_seq += 1
        self.ack_frequency_sent_threshold = threshold
        self.ack_frequency_sent_time = now
        self.ack_frequency_pending = False
        return True

    cdef bint _write_data_blocked(self, Writer* w, SentPacket* rec):
        if not self.data_blocked_pending or not self._room_for_counter_frame(w, rec):
            return False
        self._write_counter_frame(w, rec, F_DATA_BLOCKED, FRAME_DATA_BLOCKED, 0, self.conn_send_window.limit)
        self.data_blocked_pending = False
        return True

    cdef bint _write_streams_blocked(self, Writer* w, SentPacket* rec):
        cdef bint wrote = False
        if self.streams_blocked_bidi_pending and self._room_for_counter_frame(w, rec):
            self._write_counter_frame(w, rec, F_STREAMS_BLOCKED_BIDI, FRAME_STREAMS_BLOCKED, 0, self.peer_max_bidi)
            self.streams_blocked_bidi_pending = False
            wrote = True
        if self.streams_blocked_uni_pending and self._room_for_counter_frame(w, rec):
            self._write_counter_frame(w, rec, F_STREAMS_BLOCKED_UNI, FRAME_STREAMS_BLOCKED, 1, self.peer_max_uni)
            self.streams_blocked_uni_pending = False
            wrote = True
        return wrote
