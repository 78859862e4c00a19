"""Range sets in C arrays: the structure behind ACK tracking and reassembly.

Implements the bookkeeping RFC 9000 §13.2.3 (ACK ranges) and §2.2 (stream
data reassembly) need: insert a value or a range, drop everything below a
bound, test membership, and walk ranges from largest to smallest to encode an
ACK frame. The number of ranges is bounded (`max_ranges`): when an insert
would exceed it, the lowest ranges are forgotten, which for ACK tracking is
exactly RFC 9000 §13.2.4's "limit ACK ranges".

Strategy: sorted parallel arrays `starts`/`ends`. The common case (a value at
or just past the largest range) touches only the last slot; other inserts
binary-search the position and merge with neighbours.
"""

cimport cython
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memmove

cdef enum:
    INLINE_RANGES = 4


@cython.freelist(512)   # three per stream
cdef class RangeSet:
    """`RangeSet(max_ranges=0, ranges=())`: a set of integers stored as ranges."""

    def __cinit__(self, Py_ssize_t max_ranges=0, ranges=()):
        self.capacity = INLINE_RANGES
        self.count = 0
        self.max_ranges = max_ranges
        self.starts = self._inline_starts
        self.ends = self._inline_ends

    def __init__(self, Py_ssize_t max_ranges=0, ranges=()):
        for r in ranges:
            self.add(r.start, r.stop)

    def __dealloc__(self):
        if self.starts != self._inline_starts:
            PyMem_Free(self.starts)
            PyMem_Free(self.ends)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t capacity = self.capacity * 2
        cdef uint64_t* starts = <uint64_t*>PyMem_Malloc(capacity * sizeof(uint64_t))
        cdef uint64_t* ends = <uint64_t*>PyMem_Malloc(capacity * sizeof(uint64_t))
        if starts == NULL or ends == NULL:
            PyMem_Free(starts)
            PyMem_Free(ends)
            raise MemoryError()
        memcpy(starts, self.starts, self.count * sizeof(uint64_t))
        memcpy(ends, self.ends, self.count * sizeof(uint64_t))
        if self.starts != self._inline_starts:
            PyMem_Free(self.starts)
            PyMem_Free(self.ends)
        self.starts = starts
        self.ends = ends
        self.capacity = capacity
        return 0

    cdef int add(self, uint64_t start, uint64_t end) except -1:
        """Insert [start, end). Empty ranges are ignored."""
        if start >= end:
            return 0
        cdef Py_ssize_t n = self.count
        # Fast path: extends or follows the highest range (in-order arrival).
        if n == 0 or start > self.ends[n - 1]:
            if n == self.capacity:
                self._grow()
            self.starts[n] = start
            self.ends[n] = end
            self.count = n + 1
            self._enforce_limit()
            return 0
        if start >= self.starts[n - 1]:
            if end > self.ends[n - 1]:
                self.ends[n - 1] = end
            return 0
        # General case: find the first range whose end >= start.
        cdef Py_ssize_t lo = 0, hi = n, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.ends[mid] < start:
                lo = mid + 1
            else:
                hi = mid
        cdef Py_ssize_t first = lo
        if first == n or end < self.starts[first]:
            # No overlap or adjacency: insert a new range at `first`.
            if n == self.capacity:
                self._grow()
            memmove(&self.starts[first + 1], &self.starts[first], (n - first) * sizeof(uint64_t))
            memmove(&self.ends[first + 1], &self.ends[first], (n - first) * sizeof(uint64_t))
            self.starts[first] = start
            self.ends[first] = end
            self.count = n + 1
            self._enforce_limit()
            return 0
        # Merge every range from `first` that overlaps or touches [start, end).
        cdef Py_ssize_t last = first
        while last + 1 < n and self.starts[last + 1] <= end:
            last += 1
        if self.starts[first] < start:
            start = self.starts[first]
        if self.ends[last] > end:
            end = self.ends[last]
        self.starts[first] = start
        self.ends[first] = end
        cdef Py_ssize_t removed = last - first
        if removed:
            memmove(&self.starts[first + 1], &self.starts[last + 1], (n - last - 1) * sizeof(uint64_t))
            memmove(&self.ends[first + 1], &self.ends[last + 1], (n - last - 1) * sizeof(uint64_t))
            self.count = n - removed
        return 0

    cdef void _enforce_limit(self) noexcept nogil:
        cdef Py_ssize_t excess
        if self.max_ranges and self.count > self.max_ranges:
            excess = self.count - self.max_ranges
            memmove(self.starts, &self.starts[excess], self.max_ranges * sizeof(uint64_t))
            memmove(self.ends, &self.ends[excess], self.max_ranges * sizeof(uint64_t))
            self.count = self.max_ranges

    cdef bint contains(self, uint64_t value) noexcept nogil:
        cdef Py_ssize_t lo = 0, hi = self.count, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.ends[mid] <= value:
                lo = mid + 1
            else:
                hi = mid
        return lo < self.count and self.starts[lo] <= value

    cdef void remove_below(self, uint64_t bound) noexcept nogil:
        """Forget every value < bound."""
        cdef Py_ssize_t i = 0
        while i < self.count and self.ends[i] <= bound:
            i += 1
        if i:
            memmove(self.starts, &self.starts[i], (self.count - i) * sizeof(uint64_t))
            memmove(self.ends, &self.ends[i], (self.count - i) * sizeof(uint64_t))
            self.count -= i
        if self.count and self.starts[0] < bound:
            self.starts[0] = bound

    cdef void clear(self) noexcept nogil:
        self.count = 0

    cdef uint64_t largest(self) noexcept nogil:
        """The largest value held (caller checks count > 0)."""
        return self.ends[self.count - 1] - 1

    cdef uint64_t first_gap_end(self, uint64_t start) noexcept nogil:
        """If `start` is inside a range, the end of that range; else `start`.
        Used by reassembly to find how far contiguous data reaches."""
        cdef Py_ssize_t i
        for i in range(self.count):
            if self.starts[i] <= start < self.ends[i]:
                return self.ends[i]
            if self.starts[i] > start:
                break
        return start

    # Python-visible API (tests, slow path).

    def add_range(self, uint64_t start, uint64_t end):
        """Insert [start, end)."""
        self.add(start, end)

    def add_value(self, uint64_t value):
        self.add(value, value + 1)

    def discard_below(self, uint64_t bound):
        self.remove_below(bound)

    def __contains__(self, uint64_t value):
        return self.contains(value)

    def __len__(self):
        return self.count

    def __bool__(self):
        return self.count > 0

    def __getitem__(self, Py_ssize_t index):
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError("range index out of range")
        return range(self.starts[index], self.ends[index])

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.count):
            yield range(self.starts[i], self.ends[i])

    def descending(self):
        """Ranges from largest to smallest, the order of an ACK frame."""
        cdef Py_ssize_t i
        for i in range(self.count - 1, -1, -1):
            yield range(self.starts[i], self.ends[i])

    def __eq__(self, other):
        if isinstance(other, RangeSet):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self):
        return "RangeSet(%r)" % (list(self),)
