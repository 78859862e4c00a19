# cython: language_level=3
"""Receiving: datagrams to packets to frames (RFC 9000 §12–13, §17, §19).

`receive_datagram` (copying), `receive_datagram_inplace` and
`receive_segments` (a GRO buffer) split datagrams into coalesced packets,
remove header protection and the AEAD in place (RFC 9001 §5), follow key
updates (§6), drop duplicates, and apply each frame: ACK with ECN validation
(RFC 9000 §13.4), streams and flow control (§2–4), CRYPTO into TLS (RFC 9001
§4), connection IDs (§5.1), paths (§8.2, §9), closes (§10), DATAGRAM (RFC
9221) and ACK_FREQUENCY (draft-ietf-quic-ack-frequency). Loss recovery's
frame callbacks (`on_frame_acked` / `on_frame_lost`) live here too.
"""

cimport cython
from quicfast.proto.frame_types cimport *
# The engine's shared declarations: the libc/cpython/proto cimports, limits,
# states, Stream, PacketSpace and ConnectionState.
from quicfast.proto.connection_state cimport *

from quicfast.proto.packet_builder cimport PacketBuilder

import os

from quicfast import errors
from quicfast.errors import TransportErrorCode as E
from quicfast.proto.events cimport (
    StreamReset, StopSendingReceived, StreamsAvailable, DatagramReceived,
    ConnectionIdRetired,
)
from quicfast.proto import crypto as _crypto
from quicfast import tls
from quicfast.proto.connection_state import LEVEL_FOR_SPACE, _QLOG_SPACE_NAMES


cdef class PacketReceiver(PacketBuilder):
    """The receiving half of the engine (instantiated only as a Connection)."""

    def receive_datagram(self, data, addr, double now, int ecn=0):
        """Process one UDP datagram (possibly several coalesced packets).

        `data` is copied once into a scratch buffer and decrypted there.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        cdef Py_ssize_t n = view.len
        if n == 0 or n > SCRATCH_SIZE:
            PyBuffer_Release(&view)
            return
        if self.scratch is None:
            self.scratch = bytearray(SCRATCH_SIZE)
            self.scratch_ptr = <uint8_t*>(<char*>self.scratch)
        memcpy(self.scratch_ptr, view.buf, n)
        PyBuffer_Release(&view)
        self.rx_ecn = ecn & 3
        self._receive(self.scratch_ptr, n, addr, to_ns(now))

    def receive_datagram_inplace(self, data, addr, double now, int ecn=0):
        """Fast path: process a datagram in a writable buffer the caller owns
        (e.g. a slice of the socket layer's receive pool). The buffer is
        decrypted in place and must not be reused by the caller afterwards."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_WRITABLE)
        try:
            self._receive_inplace(<uint8_t*>view.buf, view.len, addr, to_ns(now), ecn)
        finally:
            PyBuffer_Release(&view)

    cdef void _receive_inplace(self, uint8_t* data, Py_ssize_t length, object addr, int64_t now, int ecn):
        """`receive_datagram_inplace` for C callers: the datagram at `data`
        (decrypted in place, so the caller's buffer is changed), `now` in ns."""
        if length:
            self.rx_ecn = ecn & 3
            self._receive(data, length, addr, now)

    def receive_segments(self, buf, Py_ssize_t total, Py_ssize_t segment_size, addr, double now, int ecn=0):
        """Fastest path: process the datagrams laid end to end in the writable
        `buf[:total]`, each `segment_size` bytes but the last (what a UDP GRO
        read or a peer's GSO send produces), with one call. Decrypted in
        place, like `receive_datagram_inplace`."""
        cdef Py_buffer view
        cdef Py_ssize_t pos = 0, n
        cdef int64_t t
        if segment_size <= 0:
            raise ValueError("segment_size must be positive")
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            if total > view.len:
                raise ValueError("total %d is larger than the buffer (%d)" % (total, view.len))
            t = to_ns(now)
            self.rx_ecn = ecn & 3
            while pos < total:
                n = min(segment_size, total - pos)
                self._receive(<uint8_t*>view.buf + pos, n, addr, t)
                pos += n
        finally:
            PyBuffer_Release(&view)

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
                and self.rx_non_probing and addr is not self.peer_addr and addr != self.peer_addr
                and self.handshake_confirmed):
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
                    self._set_peer_stream_limit(False, a)
                    self._events.append(StreamsAvailable(False))
                elif ftype == F_MAX_STREAMS_UNI and a > self.peer_max_uni:
                    self._set_peer_stream_limit(True, a)
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

    cdef void on_frame_acked(self, int space_id, SentPacket* packet, FrameRecord* f):
        cdef Stream s
        cdef uint64_t acked_before
        cdef int kind = f.kind
        if kind == FRAME_STREAM:
            s = <Stream>self.streams.lookup(f.stream_id)
            if s is not None and s.send is not None:
                acked_before = s.send.acked_offset
                s.send.on_acked(f.offset, f.length, f.fin)
                self.send_buffered -= s.send.acked_offset - acked_before
                if s.send.all_acked():
                    self._maybe_discard_stream(s)
        elif kind == FRAME_CRYPTO:
            (<PacketSpace>self.spaces[f.stream_id]).crypto_send.on_acked(f.offset, f.length, False)
        elif kind == FRAME_RESET_STREAM:
            s = <Stream>self.streams.lookup(f.stream_id)
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
            s = <Stream>self.streams.lookup(f.stream_id)
            if s is not None and s.send is not None and s.reset_code < 0:
                s.send.on_lost(f.offset, f.length, f.fin)
                self._queue_stream(s)
        elif kind == FRAME_CRYPTO:
            if not (<PacketSpace>self.spaces[f.stream_id]).discarded:
                (<PacketSpace>self.spaces[f.stream_id]).crypto_send.on_lost(f.offset, f.length, False)
        elif kind == FRAME_MAX_DATA:
            self.max_data_pending = True
        elif kind == FRAME_MAX_STREAM_DATA:
            s = <Stream>self.streams.lookup(f.stream_id)
            if s is not None and s.recv is not None and s.recv.final_size < 0:
                s.max_stream_data_pending = True
                self._queue_stream(s)
        elif kind == FRAME_RESET_STREAM:
            s = <Stream>self.streams.lookup(f.stream_id)
            if s is not None and not s.reset_acked:
                s.reset_pending = True
                self._queue_stream(s)
        elif kind == FRAME_STOP_SENDING:
            s = <Stream>self.streams.lookup(f.stream_id)
            if s is not None and not s.recv_closed():
                s.stop_pending = True
                self._queue_stream(s)
        elif kind == FRAME_STREAM_DATA_BLOCKED:
            # RFC 9000 §13.3: resent only while still blocked at that limit.
            s = <Stream>self.streams.lookup(f.stream_id)
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
            self._mark_readable(s)
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
        s.peer_reset = True   # the readable list now skips it: StreamReset replaces the news
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
            self._reset_sending(s, code)
        return 0

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
        if self.host_cid_len == 0:
            # RFC 9000 §19.16: we gave no connection ID that could be retired.
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_RETIRE_CONNECTION_ID,
                                        reason="RETIRE_CONNECTION_ID while we use zero-length CIDs")
        if seq >= self.host_cid_seq:
            raise errors.TransportError(E.PROTOCOL_VIOLATION, frame_type=F_RETIRE_CONNECTION_ID, reason="retiring a CID never issued")
        for entry in self.host_cids:
            if entry[0] == seq and not entry[3]:
                entry[3] = True
                self._events.append(ConnectionIdRetired(entry[1]))
                self._issue_connection_ids()
                break
        return 0

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
