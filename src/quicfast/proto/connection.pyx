"""The QUIC connection state machine, sans I/O.

Implements RFC 9000 (frames §19, streams §2–4, connection IDs §5.1, the
handshake §7, address validation limits §8.1, idle timeout and closing §10,
error handling §11, packetisation §12–14), RFC 9001 §4–6 (CRYPTO levels,
key installation and discard, key update) and drives RFC 9002 recovery
through `quicfast.proto.recovery`.

A `Connection` is driven by three kinds of input, and the driver polls it in
this order after each one:

1. inputs: `receive_datagram(data, addr, now)` (or the in-place
   `receive_datagram_inplace`, or `receive_segments` for a GRO buffer of
   equal-sized datagrams), `handle_timer(now)`;
   commands: `send_stream_data`, `read_stream`, `reset_stream`, `stop_stream`,
   `send_datagram_frame`, `close`;
2. `next_event()` until it returns None (or `drain_events()` for all of them);
3. `datagrams_to_send(now)` (or the fast path `fill_send_buffer`) until it
   returns nothing, then `get_timer()` to re-arm the single timer.

Time is a float in seconds from an arbitrary origin (the driver's monotonic
clock); internally it is converted once to integer nanoseconds.

The engine is one class chain, a module per concern (quinn's connection/):
`connection_state` (attributes, streams and CID bookkeeping, closing),
`packet_builder` (sending), `packet_receiver` (receiving, frame handlers,
loss-recovery callbacks) and this module, `Connection`: the public API, the
TLS glue, timers, key update and migration.

Theory of operation: received datagrams are copied once into a scratch
buffer, header protection and the AEAD are removed in place, and frames are
parsed straight out of that buffer. Stream bytes are copied once into the
stream's `RecvBuffer`. Outgoing packets are written frame by frame into the
caller's buffer and sealed in place; what each packet carried is remembered
as C `FrameRecord`s so that loss re-queues exactly those ranges.
"""

cimport cython
from quicfast.proto.frame_types cimport *
# The engine's shared declarations: the libc/cpython/proto cimports, limits,
# states, Stream, PacketSpace and ConnectionState.
from quicfast.proto.connection_state cimport *

from quicfast.proto.packet_receiver cimport PacketReceiver
from quicfast.proto.stream_table cimport StreamTable

import collections
import os

from quicfast import errors
from quicfast.proto.events cimport HandshakeCompleted, StreamDataAvailable, StreamsAvailable, ZeroRTTRejected
from quicfast.proto import crypto as _crypto
from quicfast.proto import transport_params as tp
from quicfast import tls
from quicfast.proto.connection_state import LEVEL_FOR_SPACE, _params_for_qlog


cdef class Connection(PacketReceiver):
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
        self._events = []
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
        self.streams = StreamTable()
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
            "datagrams_dropped": self.datagrams_dropped,
        }

    def next_event(self):
        """Pop the next event, or None."""
        if self.readable_head is not None:
            self._queue_readable_events()
        cdef Py_ssize_t head = self._events_head
        if head == len(self._events):
            return None
        event = self._events[head]
        head += 1
        if head == len(self._events):
            self._events = []
            head = 0
        elif head >= 64 and 2 * head >= len(self._events):
            # A driver that never empties the list must not grow it forever.
            del self._events[:head]
            head = 0
        else:
            self._events[head - 1] = None
        self._events_head = head
        return event

    def drain_events(self):
        """Every pending event, oldest first, as a list (empty when none): the
        same events as calling `next_event()` until None, in one call."""
        if self.readable_head is not None:
            self._queue_readable_events()
        cdef list out = self._events if self._events_head == 0 else self._events[self._events_head:]
        self._events = []
        self._events_head = 0
        return out

    cdef void _queue_readable_events(self):
        cdef Stream s = self.readable_head, following
        self.readable_head = self.readable_tail = None
        while s is not None:
            following = s.next_readable
            s.next_readable = None
            s.readable_reported = False
            if not s.discarded and not s.peer_reset:
                self._events.append(StreamDataAvailable(s.stream_id))
            s = following

    def get_timer(self):
        """When `handle_timer` should next be called (seconds), or None."""
        cdef int64_t t = self._next_timer()
        if t == TIME_NONE:
            return None
        return t / 1e9

    def get_next_available_stream_id(self, bint is_unidirectional=False):
        """The id the next locally opened stream will get."""
        return self.next_uni if is_unidirectional else self.next_bidi

    def can_open_stream(self, bint is_unidirectional=False):
        """Whether the peer's stream limit lets us open one more stream now.

        When it does not, a STREAMS_BLOCKED frame (RFC 9000 §19.14) is queued,
        once per limit, so the peer learns that we want more streams."""
        return self._can_open_stream(is_unidirectional)

    cdef bint _can_open_stream(self, bint is_unidirectional):
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

    def streams_past_limit(self, bint is_unidirectional=False):
        """How many local streams of the type were opened beyond the peer's
        current stream limit (`open_stream(past_limit=True)`) and wait for it."""
        cdef uint64_t opened = (self.next_uni if is_unidirectional else self.next_bidi) // 4
        cdef uint64_t limit = self.peer_max_uni if is_unidirectional else self.peer_max_bidi
        return opened - limit if opened > limit else 0

    def peer_stream_limit(self, bint is_unidirectional=False):
        """The peer's current limit on streams of the type we may open (a count, RFC 9000 §4.6)."""
        return self.peer_max_uni if is_unidirectional else self.peer_max_bidi

    def open_stream(self, bint is_unidirectional=False, bint past_limit=False):
        """Open a new locally initiated stream and return its id.

        With `past_limit`, a stream beyond the peer's current stream limit is
        opened too (as aioquic does): it can be written to at once, and its
        frames wait until MAX_STREAMS covers it (a STREAMS_BLOCKED frame asks
        for that). The caller bounds how many such streams it opens (see
        `_may_open_stream_past_limit`).

        :raises errors.StreamLimitReachedError: when the peer's limit is
            reached and not `past_limit`.
        """
        return self._open_stream(is_unidirectional, past_limit)

    cdef int64_t _open_stream(self, bint is_unidirectional, bint past_limit) except -1:
        if self.state >= S_CLOSING:
            raise errors.ConnectionClosedError("connection is closed")
        if not self._can_open_stream(is_unidirectional) and not past_limit:
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

    cdef bint _may_open_stream_past_limit(self, bint is_unidirectional):
        """Whether one more stream of the type may be opened with
        `past_limit`: within the peer's limit, or while fewer streams than
        that limit already wait beyond it (so at most twice the limit are open)."""
        if self._can_open_stream(is_unidirectional):
            return True
        cdef uint64_t opened = (self.next_uni if is_unidirectional else self.next_bidi) // 4
        cdef uint64_t limit = self.peer_max_uni if is_unidirectional else self.peer_max_bidi
        return opened - limit < limit

    def send_stream_data(self, uint64_t stream_id, data, bint end_stream=False):
        """Queue `data` on `stream_id` (and the FIN when `end_stream`)."""
        self._send_stream_data(stream_id, data, end_stream)

    cdef int _send_stream_data(self, uint64_t stream_id, object data, bint end_stream) except -1:
        cdef Stream s = self._stream_for_sending(stream_id)
        cdef Py_buffer view
        cdef uint64_t written_before = s.send.write_offset
        try:
            if type(data) is bytes:
                if PyBytes_GET_SIZE(data):
                    # Immutable: large ones are kept by reference until acknowledged, not copied.
                    s.send.write_object(<bytes>data)
            else:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                try:
                    if view.len:
                        s.send.write(<const uint8_t*>view.buf, view.len)
                finally:
                    PyBuffer_Release(&view)
        finally:
            self.send_buffered += s.send.write_offset - written_before
        if end_stream:
            s.send.write_fin()
        self._queue_stream(s)
        return 0

    def stream_send_buffered(self, uint64_t stream_id):
        """Bytes written to `stream_id` and not yet acknowledged (0 for unknown streams)."""
        return self._stream_send_buffered(stream_id)

    cdef uint64_t _stream_send_buffered(self, uint64_t stream_id) noexcept:
        cdef Stream s = <Stream>self.streams.lookup(stream_id)
        if s is None or s.send is None:
            return 0
        return s.send.buffered()

    def stream_send_unsent(self, uint64_t stream_id):
        """Bytes written to `stream_id` and not yet sent."""
        cdef Stream s = <Stream>self.streams.lookup(stream_id)
        if s is None or s.send is None:
            return 0
        return s.send.write_offset - s.send.sent_offset

    def read_stream(self, uint64_t stream_id, Py_ssize_t max_bytes=-1):
        """Consume up to `max_bytes` (all when -1) in-order bytes of `stream_id`.

        :returns: ``(data, fin)``; fin is True once the whole stream was read.
        """
        cdef bint fin
        data = self._read_stream(stream_id, max_bytes, &fin)
        return data, fin

    cdef bytes _read_stream(self, uint64_t stream_id, Py_ssize_t max_bytes, bint* fin):
        """`read_stream` for C callers: the data, and whether the stream is
        wholly read in `fin`."""
        cdef Stream s = <Stream>self.streams.lookup(stream_id)
        fin[0] = False
        if s is None or s.recv is None:
            return b""
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
        if s.recv.is_finished():
            fin[0] = True
            self._maybe_discard_stream(s)
        return data

    def stream_readable(self, uint64_t stream_id):
        """Contiguous bytes ready to read on `stream_id`."""
        cdef Stream s = <Stream>self.streams.lookup(stream_id)
        if s is None or s.recv is None:
            return 0
        return s.recv.readable()

    def reset_stream(self, uint64_t stream_id, uint64_t error_code):
        """Abandon sending on `stream_id` with RESET_STREAM (RFC 9000 §3.1).

        Also after the FIN was written, while some of the data or the FIN is
        unacknowledged ("Data Sent"); a no-op once the stream is reset, or all
        of it was acknowledged ("Data Recvd", the stream may be forgotten).
        """
        cdef Stream s = self._sending_stream(stream_id)
        if s is None or s.reset_code >= 0 or s.send.all_acked():
            return
        self._reset_sending(s, error_code)

    def stop_stream(self, uint64_t stream_id, uint64_t error_code):
        """Ask the peer to stop sending on `stream_id` (STOP_SENDING)."""
        cdef Stream s = <Stream>self.streams.lookup(stream_id)
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
            self.datagrams_dropped += 1
        self.datagrams_out.append(bytes(data))

    @property
    def datagrams_queued(self):
        """DATAGRAM frames waiting to be sent (at most MAX_DATAGRAM_QUEUE; the
        oldest is dropped to make room), for senders that pace themselves."""
        return len(self.datagrams_out)

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
        self._set_peer_stream_limit(False, params.initial_max_streams_bidi)
        self._set_peer_stream_limit(True, params.initial_max_streams_uni)
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
        self._set_peer_stream_limit(False, params.initial_max_streams_bidi)
        self._set_peer_stream_limit(True, params.initial_max_streams_uni)
        self.conn_send_window.update(params.initial_max_data)
        self.peer_params = params
        self._cache_peer_stream_limits(params)
        self.peer_max_datagram_frame_size = params.max_datagram_frame_size or 0

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

    @property
    def closing_state(self):
        """"closing" once we sent CONNECTION_CLOSE (RFC 9000 §10.2.1), "draining"
        once the peer's was received (§10.2.2), None otherwise."""
        if self.state == S_CLOSING:
            return "closing"
        if self.state == S_DRAINING:
            return "draining"
        return None

    @property
    def closing_period_end(self):
        """When the closing or draining period ends (seconds), or None outside it."""
        if self.state == S_CLOSING or self.state == S_DRAINING:
            return self.close_deadline / 1e9
        return None

    def end_closing_period(self):
        """Terminate a closing or draining connection now (ConnectionTerminated).

        For a driver that keeps the rest of the period itself, with only the
        close datagram and the connection IDs (RFC 9000 §10.2.1 lets it send
        that same datagram again instead of a new packet)."""
        if self.state == S_CLOSING or self.state == S_DRAINING:
            self._terminate(self.terminated_error)

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
