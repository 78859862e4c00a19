# The engine's map from stream id to stream, as a C hash table (RFC 9000
# §2.1 stream ids). Replaces a dict keyed by Python ints: every lookup there
# builds an int object and hashes it, and a short request/response stream is
# looked up about ten times on each side.

from cpython.object cimport PyObject
from libc.stdint cimport uint64_t


cdef struct StreamSlot:
    # key is the stream id plus one, so that 0 marks an empty slot.
    uint64_t key
    # value is an owned reference while key != 0.
    PyObject* value


cdef class StreamTable:
    cdef StreamSlot* _slots
    # _shift = 64 - log2(capacity): the hash keeps the top bits of a product.
    cdef int _shift
    cdef Py_ssize_t _capacity
    # count is the number of streams held.
    cdef readonly Py_ssize_t count

    cdef Py_ssize_t _index(self, uint64_t stream_id) noexcept nogil
    cdef int _resize(self, Py_ssize_t capacity) except -1
    cdef Py_ssize_t _find(self, uint64_t stream_id) noexcept nogil
    cdef object lookup(self, uint64_t stream_id)
    cdef bint has(self, uint64_t stream_id) noexcept
    cdef int insert(self, uint64_t stream_id, object value) except -1
    cdef bint discard(self, uint64_t stream_id)
    cdef list values(self)
