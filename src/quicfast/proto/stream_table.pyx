"""StreamTable: stream id → stream object, an open-addressing hash table in C.

Every frame that names a stream (RFC 9000 §19.8-19.13), every ACK of one and
every application call finds the stream by its 62-bit id. Ids of one type
grow by 4 (§2.1), so the hash multiplies id >> 2 by a 64-bit odd constant and
keeps the top bits (Fibonacci hashing): consecutive streams land on spread
out slots. Collisions probe linearly; removal shifts later entries of the
probe chain back instead of leaving tombstones, so lookups never slow down as
streams come and go. The table doubles at 50 % load and halves when an
eighth full (the gap keeps a steady number of streams from resizing it back
and forth), never below 16 slots.

Size is bounded by the engine's stream limits (the peer can only make us
hold as many streams as our MAX_STREAMS credit allows).
"""

cimport cython
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport uint64_t

cdef enum:
    MIN_CAPACITY = 16

cdef uint64_t _FIBONACCI = 0x9E3779B97F4A7C15ULL


cdef class StreamTable:
    """`StreamTable()`: a map from stream id (int) to an object.

    The engine calls the C methods (`lookup`, `insert`, `discard`); the
    Python mapping methods are for tests and introspection."""

    def __cinit__(self):
        self._slots = <StreamSlot*>PyMem_Calloc(MIN_CAPACITY, sizeof(StreamSlot))
        if self._slots == NULL:
            raise MemoryError()
        self._capacity = MIN_CAPACITY
        self._shift = 64 - 4
        self.count = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._slots != NULL:
            for i in range(self._capacity):
                if self._slots[i].key:
                    Py_DECREF(<object>self._slots[i].value)
            PyMem_Free(self._slots)

    cdef inline Py_ssize_t _index(self, uint64_t stream_id) noexcept nogil:
        """The first slot of `stream_id`'s probe chain."""
        return <Py_ssize_t>(((stream_id >> 2) ^ (stream_id << 62)) * _FIBONACCI >> self._shift)

    cdef int _resize(self, Py_ssize_t capacity) except -1:
        cdef StreamSlot* old = self._slots
        cdef Py_ssize_t old_capacity = self._capacity, i, j, mask = capacity - 1
        cdef StreamSlot* slots = <StreamSlot*>PyMem_Calloc(capacity, sizeof(StreamSlot))
        if slots == NULL:
            raise MemoryError()
        cdef int shift = 64
        while (<Py_ssize_t>1 << (64 - shift)) < capacity:
            shift -= 1
        self._slots = slots
        self._capacity = capacity
        self._shift = shift
        for i in range(old_capacity):
            if old[i].key:
                j = self._index(old[i].key - 1)
                while slots[j].key:
                    j = (j + 1) & mask
                slots[j] = old[i]
        PyMem_Free(old)
        return 0

    cdef Py_ssize_t _find(self, uint64_t stream_id) noexcept nogil:
        """The slot holding `stream_id`, or -1."""
        cdef Py_ssize_t mask = self._capacity - 1
        cdef Py_ssize_t i = self._index(stream_id)
        cdef uint64_t key = stream_id + 1, k
        while True:
            k = self._slots[i].key
            if k == key:
                return i
            if k == 0:
                return -1
            i = (i + 1) & mask

    cdef object lookup(self, uint64_t stream_id):
        """The object stored for `stream_id`, or None."""
        cdef Py_ssize_t i = self._find(stream_id)
        return <object>self._slots[i].value if i >= 0 else None

    cdef bint has(self, uint64_t stream_id) noexcept:
        return self._find(stream_id) >= 0

    cdef int insert(self, uint64_t stream_id, object value) except -1:
        """Store `value` for `stream_id`, replacing any object held for it."""
        if stream_id >= (<uint64_t>1) << 62:
            raise OverflowError("stream id %d above 2^62-1" % stream_id)
        if (self.count + 1) * 2 > self._capacity:
            self._resize(self._capacity * 2)
        cdef Py_ssize_t mask = self._capacity - 1
        cdef Py_ssize_t i = self._index(stream_id)
        cdef uint64_t key = stream_id + 1
        cdef PyObject* old
        while self._slots[i].key:
            if self._slots[i].key == key:
                old = self._slots[i].value
                Py_INCREF(value)
                self._slots[i].value = <PyObject*>value
                Py_DECREF(<object>old)
                return 0
            i = (i + 1) & mask
        Py_INCREF(value)
        self._slots[i].key = key
        self._slots[i].value = <PyObject*>value
        self.count += 1
        return 0

    cdef bint discard(self, uint64_t stream_id):
        """Remove `stream_id`; returns whether it was present."""
        cdef Py_ssize_t mask = self._capacity - 1
        cdef Py_ssize_t i = self._find(stream_id), j, home
        if i < 0:
            return False
        cdef PyObject* value = self._slots[i].value
        # Backward-shift deletion: move up every later entry of the chain
        # whose home slot is not strictly between the hole and it.
        j = i
        while True:
            j = (j + 1) & mask
            if self._slots[j].key == 0:
                break
            home = self._index(self._slots[j].key - 1)
            if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
                self._slots[i] = self._slots[j]
                i = j
        self._slots[i].key = 0
        self._slots[i].value = NULL
        self.count -= 1
        Py_DECREF(<object>value)
        if self._capacity > MIN_CAPACITY and self.count * 8 < self._capacity:
            try:
                self._resize(self._capacity // 2)
            except MemoryError:
                pass   # a sparse table is still a correct one
        return True

    cdef list values(self):
        """Every object held, in no particular order (a snapshot)."""
        cdef list out = []
        cdef Py_ssize_t i
        for i in range(self._capacity):
            if self._slots[i].key:
                out.append(<object>self._slots[i].value)
        return out

    # Python mapping protocol (tests, introspection).

    def __len__(self):
        return self.count

    def __contains__(self, uint64_t stream_id):
        return self.has(stream_id)

    def __getitem__(self, uint64_t stream_id):
        value = self.lookup(stream_id)
        if value is None and not self.has(stream_id):
            raise KeyError(stream_id)
        return value

    def __setitem__(self, uint64_t stream_id, value):
        self.insert(stream_id, value)

    def __delitem__(self, uint64_t stream_id):
        if not self.discard(stream_id):
            raise KeyError(stream_id)

    def get(self, uint64_t stream_id, default=None):
        if self.has(stream_id):
            return self.lookup(stream_id)
        return default

    def keys(self):
        cdef Py_ssize_t i
        return [self._slots[i].key - 1 for i in range(self._capacity) if self._slots[i].key]

    def __iter__(self):
        return iter(self.keys())

    @property
    def capacity(self):
        return self._capacity
