# Stream send and receive buffers (RFC 9000 §2–3): what the application
# wrote and has not yet seen acknowledged, and what the peer sent reassembled
# in order. Flow-control arithmetic lives in flow_control.pxd; stream states
# and frames belong to the connection engine.

from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint64_t, int64_t
from quicfast.proto.ranges cimport RangeSet

# FINAL_SIZE_ERROR is the transport error code of RFC 9000 §20.1 / §4.5.
cdef enum:
    FINAL_SIZE_ERROR = 0x06


cdef struct SendSegment:
    # offset is the stream offset of data[0].
    uint64_t offset
    # length is the number of stream bytes held at data.
    Py_ssize_t length
    # capacity is the allocated size of an owned segment (== length when lent).
    Py_ssize_t capacity
    uint8_t* data
    # owner is the bytes object lent by write_object (a reference is held),
    # or NULL when data was allocated here.
    PyObject* owner


cdef class SendBuffer:
    # Bytes written by the application, kept from the lowest unacknowledged
    # offset up as a list of segments: copies into segments of our own, or
    # large bytes objects kept by reference. Acknowledged segments are
    # released whole; no byte is moved. New data is sent once, lost ranges
    # are re-sent.

    # acked_offset is the stream offset below which everything is acknowledged
    # (and no longer held).
    cdef public uint64_t acked_offset
    # write_offset is the offset of the next byte the application writes.
    cdef public uint64_t write_offset
    # sent_offset is the highest offset ever sent; new data starts here.
    cdef public uint64_t sent_offset
    # fin_written: the application closed its side; fin_sent: a frame with the
    # FIN bit is in flight or acknowledged; fin_acked: that frame was acked.
    cdef public bint fin_written, fin_sent, fin_acked
    # is_reset is set by reset(): nothing more is sent or accepted.
    cdef public bint is_reset

    # _segments[_first:_first + _count] cover stream offsets from at most
    # acked_offset up to write_offset, in order; _allocated is the array size.
    cdef SendSegment* _segments
    cdef Py_ssize_t _first, _count, _allocated
    # _cursor is the index last found by _find (frames are mostly in order).
    cdef Py_ssize_t _cursor
    # _next_size is the size of the next segment of our own (doubles up to
    # a cap while the stream keeps data buffered).
    cdef Py_ssize_t _next_size
    # _acked holds acknowledged ranges above acked_offset (None until an ACK
    # arrives out of order).
    cdef RangeSet _acked
    # _lost holds ranges declared lost and not yet re-sent (never acked ones;
    # None until a loss).
    cdef RangeSet _lost

    cdef Py_ssize_t _find(self, uint64_t offset) noexcept
    cdef SendSegment* _append(self) except NULL
    cdef int write(self, const uint8_t* data, Py_ssize_t length) except -1
    cdef void write_fin(self)
    cdef bint has_data_to_send(self, uint64_t flow_limit)
    cdef Py_ssize_t next_frame(self, uint64_t flow_limit, Py_ssize_t max_length,
                               uint64_t* offset, bint* fin, const uint8_t** data) noexcept
    cdef void on_acked(self, uint64_t offset, uint64_t length, bint fin)
    cdef void on_lost(self, uint64_t offset, uint64_t length, bint fin)
    cdef uint64_t buffered(self)
    cdef bint all_acked(self)
    cdef void reset(self)
    cdef int write_object(self, bytes data) except -1
    cdef void _release_front(self) noexcept


cdef class RecvBuffer:
    # Out-of-order reassembly into a contiguous buffer that starts at
    # read_offset; a read of all that is held takes the buffer itself, no
    # copy. Duplicate and overlapping bytes are ignored (the first copy
    # wins). Memory is bounded by the flow-control window: the engine checks
    # limits before calling receive().

    # read_offset is the number of bytes the application has consumed.
    cdef public uint64_t read_offset
    # highest_offset is the largest offset + length received; the engine
    # charges its increases to connection-level flow control.
    cdef public uint64_t highest_offset
    # final_size is the stream's final size, -1 until known.
    cdef public int64_t final_size
    # reset_received is set by reset(): buffered data was dropped.
    cdef public bint reset_received

    # _store is a bytes object of _capacity bytes (or NULL) that holds stream
    # offsets from _data_offset (<= read_offset) up; _data points into it.
    # A read of everything held hands _store itself to the caller.
    cdef PyObject* _store
    cdef uint8_t* _data
    cdef uint64_t _data_offset
    cdef Py_ssize_t _capacity
    # _next_capacity sizes the next _store: the last read handed over.
    cdef Py_ssize_t _next_capacity
    # _received holds the offsets received at or above read_offset.
    cdef RangeSet _received

    cdef int _reserve(self, uint64_t end) except -1
    cdef int receive(self, uint64_t offset, const uint8_t* data, Py_ssize_t length, bint fin) except -1
    cdef Py_ssize_t readable(self)
    cdef Py_ssize_t read_into(self, uint8_t* out, Py_ssize_t max_length) noexcept
    cdef bytes read(self, Py_ssize_t max_length)
    cdef bint is_finished(self)
    cdef int reset(self, uint64_t final_size) except -1
    cdef void _drop_store(self) noexcept
