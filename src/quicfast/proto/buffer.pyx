"""Python-visible byte buffer with QUIC varint support (RFC 9000 §16).

The engine's per-packet path uses the inline `Reader`/`Writer` helpers in
buffer.pxd; `Buffer` is for the slow path (transport parameters, tests,
tools). Reading past the end raises `BufferReadError`; writing past the
capacity raises `BufferWriteError`. Neither ever touches memory outside the
buffer.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


class BufferReadError(ValueError):
    """Raised when a read needs more bytes than the buffer holds."""


class BufferWriteError(ValueError):
    """Raised when a write does not fit in the buffer, or a value does not fit
    its encoding (a varint above 2^62 - 1)."""


def encode_varint(uint64_t value) -> bytes:
    """Encode `value` as a QUIC varint in its shortest form."""
    cdef uint8_t out[8]
    if varint_size(value) == 0:
        raise BufferWriteError("varint value %d exceeds 2^62 - 1" % value)
    return (<char*>out)[:write_varint(out, value)]


def size_varint(uint64_t value) -> int:
    """Encoded size of `value` as a varint (raises for values above 2^62 - 1)."""
    cdef int size = varint_size(value)
    if size == 0:
        raise BufferWriteError("varint value %d exceeds 2^62 - 1" % value)
    return size


cdef class Buffer:
    """A cursor over a fixed-size byte region.

    `Buffer(capacity=N)` allocates N zero bytes for writing;
    `Buffer(data=b"...")` copies `data` for reading.
    """

    def __cinit__(self, Py_ssize_t capacity=0, data=None):
        if data is not None:
            self._data = bytearray(data)
            self._end = len(self._data)
        else:
            if capacity < 0:
                raise ValueError("capacity must not be negative")
            self._data = bytearray(capacity)
            self._end = capacity
        self._ptr = <uint8_t*>(<char*>self._data) if self._end else NULL
        self._pos = 0

    @property
    def capacity(self) -> int:
        return self._end

    @property
    def data(self) -> bytes:
        """The bytes before the cursor (what has been written or read)."""
        return bytes(self._data[:self._pos])

    def data_slice(self, Py_ssize_t start, Py_ssize_t end) -> bytes:
        if start < 0 or end > self._end or start > end:
            raise BufferReadError("slice [%d:%d] outside buffer of %d bytes" % (start, end, self._end))
        return bytes(self._data[start:end])

    def eof(self) -> bool:
        return self._pos == self._end

    def tell(self) -> int:
        return self._pos

    def seek(self, Py_ssize_t pos):
        if pos < 0 or pos > self._end:
            raise BufferReadError("seek to %d outside buffer of %d bytes" % (pos, self._end))
        self._pos = pos

    cdef int _check_read(self, Py_ssize_t n) except -1:
        if n < 0 or self._end - self._pos < n:
            raise BufferReadError("read of %d bytes at offset %d past end (%d)" % (n, self._pos, self._end))
        return 0

    cdef int _check_write(self, Py_ssize_t n) except -1:
        if self._end - self._pos < n:
            raise BufferWriteError("write of %d bytes at offset %d past capacity (%d)" % (n, self._pos, self._end))
        return 0

    cpdef bytes pull_bytes(self, Py_ssize_t length):
        self._check_read(length)
        cdef bytes out = (<char*>self._ptr)[self._pos:self._pos + length] if length else b""
        self._pos += length
        return out

    def pull_uint8(self) -> int:
        self._check_read(1)
        self._pos += 1
        return self._ptr[self._pos - 1]

    def pull_uint16(self) -> int:
        cdef Reader r = Reader(self._ptr, self._pos, self._end)
        cdef uint16_t v
        if reader_uint16(&r, &v) < 0:
            self._check_read(2)
        self._pos = r.pos
        return v

    def pull_uint32(self) -> int:
        cdef Reader r = Reader(self._ptr, self._pos, self._end)
        cdef uint32_t v
        if reader_uint32(&r, &v) < 0:
            self._check_read(4)
        self._pos = r.pos
        return v

    def pull_uint64(self) -> int:
        self._check_read(8)
        cdef uint64_t v = 0
        cdef int i
        for i in range(8):
            v = (v << 8) | self._ptr[self._pos + i]
        self._pos += 8
        return v

    cpdef uint64_t pull_uint_var(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef Reader r = Reader(self._ptr, self._pos, self._end)
        cdef uint64_t v
        if reader_varint(&r, &v) < 0:
            raise BufferReadError("truncated varint at offset %d" % self._pos)
        self._pos = r.pos
        return v

    def push_bytes(self, const uint8_t[:] value):
        cdef Py_ssize_t n = value.shape[0]
        self._check_write(n)
        if n:
            memcpy(self._ptr + self._pos, &value[0], n)
        self._pos += n

    def push_uint8(self, uint8_t value):
        self._check_write(1)
        self._ptr[self._pos] = value
        self._pos += 1

    def push_uint16(self, uint16_t value):
        self._check_write(2)
        self._ptr[self._pos] = value >> 8
        self._ptr[self._pos + 1] = <uint8_t>value
        self._pos += 2

    def push_uint32(self, uint32_t value):
        self._check_write(4)
        cdef int i
        for i in range(4):
            self._ptr[self._pos + i] = <uint8_t>(value >> (24 - 8 * i))
        self._pos += 4

    def push_uint64(self, uint64_t value):
        self._check_write(8)
        cdef int i
        for i in range(8):
            self._ptr[self._pos + i] = <uint8_t>(value >> (56 - 8 * i))
        self._pos += 8

    cpdef push_uint_var(self, uint64_t value):
        cdef int size = varint_size(value)
        if size == 0:
            raise BufferWriteError("varint value %d exceeds 2^62 - 1" % value)
        self._check_write(size)
        self._pos += write_varint(self._ptr + self._pos, value)
