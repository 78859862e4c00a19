# Sending (RFC 9000 §12–14, §17, §19): datagrams of coalesced packets built
# into the caller's buffer and sealed in place, frame writers, DPLPMTUD probes
# (RFC 8899). PacketBuilder extends ConnectionState (connection_state.pxd).

cimport cython
from libc.stdint cimport uint8_t, uint64_t, int64_t
from quicfast.proto.buffer cimport Writer
from quicfast.proto.recovery cimport SentPacket
from quicfast.proto.connection_state cimport ConnectionState, Stream, PacketSpace


cdef class PacketBuilder(ConnectionState):
    cdef Py_ssize_t _fill(self, uint8_t* buf, Py_ssize_t cap, int max_datagrams, int64_t now,
                          Py_ssize_t* seg_out, Py_ssize_t* total_out) except -1
    cdef int pmtud_probe_size_next(self)
    cdef bint _mtu_probe_due(self)
    cdef Py_ssize_t _build_mtu_probe(self, uint8_t* buf, int64_t now) except -1
    cdef void _on_mtu_probe_result(self, int size, bint acked)
    cdef void _on_possible_black_hole(self)
    cdef bint _space_wants_send(self, int space_id, int64_t now)
    cdef bint _app_wants_send(self)
    cdef Py_ssize_t _build_datagram(self, uint8_t* buf, Py_ssize_t room, int64_t now) except -1
    cdef Py_ssize_t _build_close_datagram(self, uint8_t* buf, Py_ssize_t room, int64_t now) except -1
    cdef Py_ssize_t _build_packet(self, uint8_t* buf, Py_ssize_t room, int space_id, int64_t now,
                                  Py_ssize_t pad_to, bint padding_only) except -1
    cdef int _write_close_frame(self, Writer* w, int space_id) except -1
    @cython.final
    cdef void _record(self, SentPacket* rec, int kind, int64_t stream_id, uint64_t offset,
                             uint64_t length, bint fin) noexcept
    cdef int _write_ack_frame(self, Writer* w, SentPacket* rec, PacketSpace space, int64_t now) except -1
    cdef bint _write_frames(self, Writer* w, SentPacket* rec, PacketSpace space, int space_id,
                            int ptype, int64_t now) except? -1
    cdef bint _write_control_frames(self, Writer* w, SentPacket* rec) except? -1
    cdef bint _write_stream_frames(self, Writer* w, SentPacket* rec, int ptype, int64_t now) except? -1
    cdef bint _write_blocked_frames(self, Writer* w, SentPacket* rec, Stream s)
    @cython.final
    cdef bint _room_for_counter_frame(self, Writer* w, SentPacket* rec) noexcept
    @cython.final
    cdef void _write_counter_frame(self, Writer* w, SentPacket* rec, uint8_t ftype, int kind,
                                          int64_t key, uint64_t value) noexcept
    cdef bint _write_ack_frequency(self, Writer* w, SentPacket* rec)
    cdef bint _write_data_blocked(self, Writer* w, SentPacket* rec)
    cdef bint _write_streams_blocked(self, Writer* w, SentPacket* rec)
