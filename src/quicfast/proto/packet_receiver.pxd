# Receiving (RFC 9000 §12–13, §17, §19; RFC 9001 §5–6): datagrams split into
# packets, unprotected in place, frames parsed and applied. PacketReceiver
# extends PacketBuilder (packet_builder.pxd).

from libc.stdint cimport uint8_t, uint64_t, int64_t
from quicfast.proto.buffer cimport Reader
from quicfast.proto.packet cimport PacketHeader
from quicfast.proto.recovery cimport SentPacket, FrameRecord
from quicfast.proto.connection_state cimport Stream, PacketSpace
from quicfast.proto.packet_builder cimport PacketBuilder


cdef class PacketReceiver(PacketBuilder):
    cdef void _receive(self, uint8_t* data, Py_ssize_t length, object addr, int64_t now)
    cdef void _receive_inplace(self, uint8_t* data, Py_ssize_t length, object addr, int64_t now, int ecn)
    cdef int _receive_packet(self, uint8_t* pkt, PacketHeader* h, object addr, int64_t now) except -2
    cdef Py_ssize_t _open_1rtt(self, uint8_t* pkt, Py_ssize_t header_len, Py_ssize_t ct_len, uint64_t pn,
                               int key_phase, int64_t now)
    cdef void _on_peer_address_change(self, object addr, Py_ssize_t datagram_length, int64_t now)
    cdef void _handle_version_negotiation(self, uint8_t* pkt, PacketHeader* h)
    cdef void _handle_retry(self, uint8_t* pkt, PacketHeader* h)
    cdef bint _process_frames(self, const uint8_t* payload, Py_ssize_t length, int packet_type,
                              int space_id, int64_t now) except? -1
    cdef int _handle_ack_frequency(self, Reader* r) except -1
    cdef int _need_varint(self, Reader* r, uint64_t* out, uint64_t ftype) except -1
    cdef int _handle_ack_frame(self, Reader* r, uint64_t ftype, int space_id, int64_t now) except -1
    cdef void _validate_ecn(self, PacketSpace space, int space_id, bint has_counts, uint64_t ect0,
                            uint64_t ect1, uint64_t ce, int64_t sent_time, int64_t now)
    cdef void on_frame_acked(self, int space_id, SentPacket* packet, FrameRecord* f)
    cdef void on_frame_lost(self, int space_id, SentPacket* packet, FrameRecord* f)
    cdef void on_ack_of_ack(self, int space_id, uint64_t largest_acked_sent)
    cdef int _handle_stream_frame(self, Reader* r, uint64_t ftype, int64_t now) except -1
    cdef int _handle_crypto_frame(self, Reader* r, int space_id, int64_t now) except -1
    cdef int _handle_max_stream_data(self, uint64_t sid, uint64_t limit) except -1
    cdef int _handle_reset_stream(self, uint64_t sid, uint64_t code, uint64_t final_size) except -1
    cdef int _handle_stop_sending(self, uint64_t sid, uint64_t code) except -1
    cdef int _handle_new_connection_id(self, Reader* r) except -1
    cdef int _handle_retire_connection_id(self, uint64_t seq) except -1
    cdef int _handle_connection_close(self, Reader* r, uint64_t ftype, int64_t now) except -1
    cdef int _handle_datagram_frame(self, Reader* r, uint64_t ftype) except -1
    cdef void _on_new_token(self, bytes token)
    cdef bint _is_stateless_reset(self, const uint8_t* tail)
