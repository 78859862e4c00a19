# Ordered sets of disjoint half-open integer ranges in C arrays.
# Used for received packet numbers (ACK frames, RFC 9000 §13.2 / §19.3),
# received stream offsets (reassembly) and acknowledged send offsets.

from libc.stdint cimport uint64_t

cdef class RangeSet:
    # starts[i], ends[i] bound range i as [start, end); ranges are sorted
    # ascending, disjoint and never adjacent (adjacent ranges are merged).
    cdef uint64_t* starts
    cdef uint64_t* ends
    # count is the number of ranges held; capacity the allocated slots.
    cdef Py_ssize_t count
    cdef Py_ssize_t capacity
    # max_ranges bounds count: past it the lowest ranges are dropped (0 = unbounded).
    cdef Py_ssize_t max_ranges
    # The first INLINE_RANGES ranges live in the object itself: most sets
    # (a stream's offsets, a short connection's packet numbers) never need
    # more, and a new stream then costs no allocation here.
    cdef uint64_t _inline_starts[4]
    cdef uint64_t _inline_ends[4]

    cdef int _grow(self) except -1
    cdef void _enforce_limit(self) noexcept nogil
    cdef int add(self, uint64_t start, uint64_t end) except -1
    cdef bint contains(self, uint64_t value) noexcept nogil
    cdef void remove_below(self, uint64_t bound) noexcept nogil
    cdef void clear(self) noexcept nogil
    cdef uint64_t largest(self) noexcept nogil
    cdef uint64_t first_gap_end(self, uint64_t start) noexcept nogil
