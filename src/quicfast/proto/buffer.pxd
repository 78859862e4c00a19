# Byte-level reading and writing for the engine: QUIC variable-length
# integers (RFC 9000 §16) and fixed-width big-endian integers.
#
# Two layers:
#   * `Reader` / `Writer` structs with inline nogil helpers, used on the
#     per-packet path: no Python object is created, every read is checked
#     against `end` and reports failure as -1 (callers turn that into
#     FRAME_ENCODING_ERROR or drop the packet).
#   * `Buffer`, a Python-visible class over its own memory for the slow path
#     (transport parameters, tests) that raises BufferReadError/BufferWriteError.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

# VARINT_MAX is 2^62 - 1, the largest value a QUIC varint holds (RFC 9000 §16).
cdef enum:
    VARINT_MAX_SIZE = 8

cdef extern from *:
    """
    #define QF_VARINT_MAX 0x3FFFFFFFFFFFFFFFULL
    """
    uint64_t QF_VARINT_MAX


cdef struct Reader:
    # data is the first byte of the region being read.
    const uint8_t* data
    # pos is the offset of the next byte to read.
    Py_ssize_t pos
    # end is the offset one past the last readable byte.
    Py_ssize_t end


cdef struct Writer:
    # data is the first byte of the output region.
    uint8_t* data
    # pos is the offset of the next byte to write.
    Py_ssize_t pos
    # end is the capacity of the region.
    Py_ssize_t end


cdef inline int varint_size(uint64_t value) noexcept nogil:
    """Encoded size of `value` in bytes, or 0 when it exceeds 2^62 - 1."""
    if value < 0x40:
        return 1
    if value < 0x4000:
        return 2
    if value < 0x40000000:
        return 4
    if value <= QF_VARINT_MAX:
        return 8
    return 0


cdef inline int reader_varint(Reader* r, uint64_t* out) noexcept nogil:
    """Read a varint into `out`; -1 (position unchanged) when truncated."""
    cdef Py_ssize_t pos = r.pos
    if pos >= r.end:
        return -1
    cdef uint8_t first = r.data[pos]
    cdef int size = 1 << (first >> 6)
    if r.end - pos < size:
        return -1
    cdef uint64_t value = first & 0x3F
    cdef int i
    for i in range(1, size):
        value = (value << 8) | r.data[pos + i]
    r.pos = pos + size
    out[0] = value
    return 0


cdef inline int reader_uint8(Reader* r, uint8_t* out) noexcept nogil:
    if r.pos >= r.end:
        return -1
    out[0] = r.data[r.pos]
    r.pos += 1
    return 0


cdef inline int reader_uint16(Reader* r, uint16_t* out) noexcept nogil:
    if r.end - r.pos < 2:
        return -1
    out[0] = (<uint16_t>r.data[r.pos] << 8) | r.data[r.pos + 1]
    r.pos += 2
    return 0


cdef inline int reader_uint32(Reader* r, uint32_t* out) noexcept nogil:
    if r.end - r.pos < 4:
        return -1
    cdef const uint8_t* p = r.data + r.pos
    out[0] = (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]
    r.pos += 4
    return 0


cdef inline int reader_skip(Reader* r, Py_ssize_t n) noexcept nogil:
    """Advance over `n` bytes; -1 when fewer remain (or n is negative)."""
    if n < 0 or r.end - r.pos < n:
        return -1
    r.pos += n
    return 0


cdef inline Py_ssize_t write_varint(uint8_t* p, uint64_t value) noexcept nogil:
    """Write `value` at `p` in its shortest form; returns bytes written (caller
    guarantees 8 bytes of room and value <= 2^62 - 1)."""
    if value < 0x40:
        p[0] = <uint8_t>value
        return 1
    if value < 0x4000:
        p[0] = <uint8_t>(0x40 | (value >> 8))
        p[1] = <uint8_t>value
        return 2
    if value < 0x40000000:
        p[0] = <uint8_t>(0x80 | (value >> 24))
        p[1] = <uint8_t>(value >> 16)
        p[2] = <uint8_t>(value >> 8)
        p[3] = <uint8_t>value
        return 4
    p[0] = <uint8_t>(0xC0 | (value >> 56))
    p[1] = <uint8_t>(value >> 48)
    p[2] = <uint8_t>(value >> 40)
    p[3] = <uint8_t>(value >> 32)
    p[4] = <uint8_t>(value >> 24)
    p[5] = <uint8_t>(value >> 16)
    p[6] = <uint8_t>(value >> 8)
    p[7] = <uint8_t>value
    return 8


cdef inline uint8_t _varint_prefix(int size) noexcept nogil:
    if size == 1:
        return 0x00
    if size == 2:
        return 0x40
    if size == 4:
        return 0x80
    return 0xC0


cdef inline void write_varint_fixed(uint8_t* p, uint64_t value, int size) noexcept nogil:
    """Write `value` as a varint of exactly `size` (1, 2, 4 or 8) bytes, used
    for length fields reserved before the payload is known."""
    cdef int i
    for i in range(size - 1, -1, -1):
        p[i] = <uint8_t>value
        value >>= 8
    p[0] |= _varint_prefix(size)


cdef inline int writer_varint(Writer* w, uint64_t value) noexcept nogil:
    """Append a varint; -1 when there is no room or value is too large."""
    cdef int size = varint_size(value)
    if size == 0 or w.end - w.pos < size:
        return -1
    w.pos += write_varint(w.data + w.pos, value)
    return 0


cdef inline int writer_uint8(Writer* w, uint8_t value) noexcept nogil:
    if w.pos >= w.end:
        return -1
    w.data[w.pos] = value
    w.pos += 1
    return 0


cdef inline int writer_bytes(Writer* w, const uint8_t* src, Py_ssize_t n) noexcept nogil:
    if w.end - w.pos < n:
        return -1
    memcpy(w.data + w.pos, src, n)
    w.pos += n
    return 0


cdef class Buffer:
    # _data owns the memory (a bytearray); _ptr points into it.
    cdef bytearray _data
    cdef uint8_t* _ptr
    # _pos is the cursor; _end the capacity (for writing) or data length.
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _end

    cdef int _check_read(self, Py_ssize_t n) except -1
    cdef int _check_write(self, Py_ssize_t n) except -1
    cpdef bytes pull_bytes(self, Py_ssize_t length)
    cpdef uint64_t pull_uint_var(self) except? 0xFFFFFFFFFFFFFFFF
    cpdef push_uint_var(self, uint64_t value)
