# cython: language_level=3
"""State shared by every layer of the connection engine (see connection_state.pxd).

`Stream` holds one stream's halves (RFC 9000 §2–3), `PacketSpace` one packet
number space's keys, ACK state and CRYPTO stream (RFC 9000 §12.3, RFC 9001
§4), and `ConnectionState` the stream bookkeeping (opening, limits, RFC 9000
§3.2 and §4.6), connection-ID issuance (§5.1.1), handshake confirmation and
key discard (RFC 9001 §4.1.2, §4.9) and entering the closing state (§10.2).
Attributes are documented in the .pxd.
"""

cimport cython
import os

from quicfast import errors
from quicfast.errors import TransportErrorCode as E
from quicfast.proto.events cimport StreamOpened, ConnectionIdIssued, ConnectionTerminated, HandshakeConfirmed
from quicfast.proto import crypto as _crypto
from quicfast import tls

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
@cython.freelist(256)
cdef class Stream:
    """One stream's send and receive halves (RFC 9000 §3)."""

    def __cinit__(self):
        self.reset_code = -1
        self.stop_code = -1

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


cdef class ConnectionState(FrameHandler):
    """Attributes and helpers shared by the packet builder, the packet
    receiver and the public Connection (which is the only class instantiated)."""

    cdef Stream _get_or_create_peer_stream(self, uint64_t sid, bint for_receive):
        """The stream `sid` as named by a peer frame, creating peer-initiated
        streams (and the lower ones, RFC 9000 §3.2) as needed. Returns None
        for a stream that existed and is now closed. Raises STREAM_STATE_ERROR
        / STREAM_LIMIT_ERROR as §19.8 and §4.6 require."""
        cdef Stream s = <Stream>self.streams.lookup(sid)
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
        # __new__ and direct field stores: no argument parsing for five objects.
        cdef Stream s = Stream.__new__(Stream)
        s.stream_id = sid
        if can_send:
            s.send = SendBuffer.__new__(SendBuffer)
            s.send_window = SendWindow.__new__(SendWindow)
            s.send_window.limit = send_limit
        if can_recv:
            s.recv = RecvBuffer.__new__(RecvBuffer)
            s.recv_window = ReceiveWindow.__new__(ReceiveWindow)
            s.recv_window.set_initial(self.stream_receive_window, self.stream_receive_window_max)
        self.streams.insert(sid, s)
        return s

    cdef Stream _stream_for_sending(self, uint64_t sid):
        """The stream `sid`, open for writing."""
        cdef Stream s = self._sending_stream(sid)
        if s is None:
            raise errors.StreamStateError("stream %d is closed" % sid)
        if s.send.fin_written or s.reset_code >= 0:
            raise errors.StreamStateError("stream %d: sending side already closed" % sid)
        return s

    cdef Stream _sending_stream(self, uint64_t sid):
        """The stream `sid` with a sending half, or None once it was opened and
        forgotten (both halves over); raises for a stream that was never opened
        by us, a receive-only one, or a closed connection."""
        if self.state >= S_CLOSING:
            raise errors.ConnectionClosedError("connection is closed")
        cdef Stream s = <Stream>self.streams.lookup(sid)
        if s is None:
            local = (sid & 1) == (0 if self.is_client else 1)
            if local:
                if sid >= (self.next_uni if sid & 2 else self.next_bidi):
                    raise errors.StreamStateError("stream %d was not opened (use open_stream)" % sid)
                return None
            s = self._get_or_create_peer_stream(sid, False)
            if s is None:
                return None
        if s.send is None:
            raise errors.StreamStateError("stream %d is receive-only" % sid)
        return s

    cdef void _reset_sending(self, Stream s, uint64_t error_code):
        """Abandon `s`'s sending half: queue RESET_STREAM with `error_code` and
        drop its unacknowledged bytes (from send_buffered too)."""
        s.reset_code = error_code
        s.reset_pending = True
        self.send_buffered -= s.send.buffered()
        s.send.reset()
        self._queue_stream(s)

    cdef void _queue_stream(self, Stream s):
        if s.queued:
            return
        if not self._stream_has_credit(<uint64_t>s.stream_id):
            s.held = True
            return
        s.queued = True
        self._append_to_send_queue(s)

    cdef bint _stream_has_credit(self, uint64_t sid):
        """Whether the peer's stream limit covers `sid` (peer-initiated streams always are)."""
        if (sid & 1) != (0 if self.is_client else 1):
            return True
        return sid // 4 < (self.peer_max_uni if sid & 2 else self.peer_max_bidi)

    cdef void _set_peer_stream_limit(self, bint uni, uint64_t limit):
        """Take the peer's stream limit (transport parameters or MAX_STREAMS)
        and queue the held streams it now covers, in id order."""
        cdef uint64_t old = self.peer_max_uni if uni else self.peer_max_bidi
        cdef uint64_t opened = (self.next_uni if uni else self.next_bidi) // 4
        cdef uint64_t base = (2 if uni else 0) | (0 if self.is_client else 1)
        cdef uint64_t i
        cdef Stream s
        if uni:
            self.peer_max_uni = limit
        else:
            self.peer_max_bidi = limit
        for i in range(old, min(limit, opened)):
            s = <Stream>self.streams.lookup(i * 4 + base)
            if s is not None and s.held:
                s.held = False
                self._queue_stream(s)

    cdef void _append_to_send_queue(self, Stream s):
        s.next_send = None
        if self.send_tail is None:
            self.send_head = s
        else:
            self.send_tail.next_send = s
        self.send_tail = s

    cdef Stream _pop_send_queue(self):
        cdef Stream s = self.send_head
        self.send_head = s.next_send
        if self.send_head is None:
            self.send_tail = None
        s.next_send = None
        return s

    cdef void _mark_readable(self, Stream s):
        if s.readable_reported:
            return
        s.readable_reported = True
        s.next_readable = None
        if self.readable_tail is None:
            self.readable_head = s
        else:
            self.readable_tail.next_readable = s
        self.readable_tail = s

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
        if s.discarded:
            return
        s.discarded = True
        self.streams.discard(s.stream_id)
        cdef bint local = (s.stream_id & 1) == (0 if self.is_client else 1)
        if not local:
            # RFC 9000 §4.6: let the peer open another stream of this type.
            if s.stream_id & 2:
                self.local_max_uni += 1
                self.max_streams_uni_pending = True
            else:
                self.local_max_bidi += 1
                self.max_streams_bidi_pending = True

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

    cdef void _setup_initial_keys(self, bytes dcid):
        send, recv = _crypto.initial_packet_protections(dcid, self.version, self.is_client)
        cdef PacketSpace space = <PacketSpace>self.spaces[SPACE_INITIAL]
        space.send_keys = send
        space.recv_keys = recv

    cdef int _confirm_handshake(self, int64_t now) except -1:
        if self.handshake_confirmed:
            return 0
        self.handshake_confirmed = True
        self.recovery.handshake_confirmed = True
        # As quic-go does, the first path MTU probe waits a few round trips: a
        # connection that ends right after its handshake never pays for one.
        self.pmtud_start = now + PMTUD_START_RTTS * self.recovery.rtt.smoothed_rtt
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
        if self._tls is not None:
            # The TLS object holds our bound methods, a reference cycle: drop
            # them so that a finished connection is freed by reference
            # counting instead of waiting for the cyclic garbage collector.
            self._tls.on_secret = None
            self._tls.on_session_ticket = None
        self._events.append(ConnectionTerminated(self.terminated_error))
        if self.tracer is not None:
            err = self.terminated_error
            self.tracer.event("connectivity:connection_closed", {
                "owner": "remote" if getattr(err, "remote", False) else "local",
                "error_code": getattr(err, "error_code", None), "reason": str(err),
                "trigger": type(err).__name__}, self.clock_ns / 1e9)
            self.tracer.close()
            self.tracer = None

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

    cdef void _cache_peer_stream_limits(self, object params):
        self.peer_initial_max_stream_data_uni = params.initial_max_stream_data_uni
        self.peer_initial_max_stream_data_bidi_local = params.initial_max_stream_data_bidi_local
        self.peer_initial_max_stream_data_bidi_remote = params.initial_max_stream_data_bidi_remote

    cdef int _after_tls(self, int64_t now) except -1:
        raise NotImplementedError
