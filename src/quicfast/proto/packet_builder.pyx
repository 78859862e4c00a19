# cython: language_level=3
"""Sending: what goes into each datagram and packet (RFC 9000 §12–14, §17, §19).

`fill_send_buffer` writes up to N datagrams of one size into the caller's
buffer (a GSO batch): coalesced Initial/Handshake/1-RTT packets (§12.2),
client Initials padded to 1200 bytes (§14.1), the anti-amplification limit of
an unvalidated server (§8.1), congestion window and pacing (RFC 9002 §7),
closing-state CONNECTION_CLOSE (§10.2.1). Frames are written straight into the
packet and what each packet carried is kept as C `FrameRecord`s for loss
recovery. DPLPMTUD probes (RFC 8899) travel alone.
"""

cimport cython
from quicfast.proto.frame_types cimport *
# The engine's shared declarations: the libc/cpython/proto cimports, limits,
# states, Stream, PacketSpace and ConnectionState.
from quicfast.proto.connection_state cimport *

from quicfast import errors
from quicfast.errors import TransportErrorCode as E


cdef class PacketBuilder(ConnectionState):
    """The sending half of the engine (instantiated only as a Connection)."""

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
        cdef Py_buffer view
        cdef Py_ssize_t seg = 0, total = 0, count
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            count = self._fill(<uint8_t*>view.buf, view.len, max_datagrams, to_ns(now), &seg, &total)
        finally:
            PyBuffer_Release(&view)
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
        if self.clock_ns < self.pmtud_start:
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
        # Flags first, containers after, each tested in C (a Python `or`
        # chain here made a bool object per operand on every call).
        if (self.send_head is not None or self.handshake_done_pending or self.path_challenge_pending
                or self.max_data_pending or self.max_streams_bidi_pending or self.max_streams_uni_pending
                or self.ping_pending or self.data_blocked_pending
                or self.streams_blocked_bidi_pending or self.streams_blocked_uni_pending):
            return True
        if self.new_tokens_pending or self.new_cid_pending or self.retire_cid_pending or self.path_responses:
            return True
        return len(self.datagrams_out) > 0

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
                # Pad the last packet of the datagram (a generator here would
                # cost a closure object on every call of this function).
                pad_to = MIN_INITIAL_DATAGRAM_SIZE - pos
                for later in range(space_id + 1, 3):
                    if self._space_wants_send(later, now):
                        pad_to = 0
                        break
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
        cdef Py_ssize_t n
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

    cdef void _record(self, SentPacket* rec, int kind, int64_t stream_id, uint64_t offset,
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
                self.datagrams_dropped += 1
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
        while self.send_head is not None and w.end - w.pos > 24 and rec.frame_count < MAX_FRAME_RECORDS:
            s = self.send_head
            if s.discarded:
                self._pop_send_queue()
                s.queued = False
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
            self._pop_send_queue()
            if s.wants_send() and n >= 0:
                self._append_to_send_queue(s)
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

    cdef bint _room_for_counter_frame(self, Writer* w, SentPacket* rec) noexcept:
        """Room for a frame of a type byte and one varint, and for its record."""
        return w.end - w.pos >= 9 and rec.frame_count < MAX_FRAME_RECORDS

    cdef void _write_counter_frame(self, Writer* w, SentPacket* rec, uint8_t ftype, int kind,
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
