"""Stream data buffers: send-side retransmission and receive-side reassembly.

Implements RFC 9000 §2.2 (ordered byte stream, out-of-order delivery,
duplicate and overlapping data), §3 (data sent, acknowledged, lost; the FIN
and its retransmission) and §4.5 (final size rules, including RESET_STREAM).
Flow-control limits come from flow_control.pyx: the send buffer is told the
absolute offset the peer allows, and the receive buffer trusts the engine to
have checked limits before it is called.

Theory of operation
-------------------
`SendBuffer` keeps the bytes from `acked_offset` up to `write_offset` as an
ordered list of segments. `write` copies into segments of our own (appending
to the last one while it has room; each new one twice the size of the
previous, up to 1 MiB); `write_object` keeps a large bytes object by
reference instead (bytes are immutable), so the application's bytes go
straight from its object into packets. Three cursors and two range sets
describe what is sent:

    acked_offset <= sent_offset <= write_offset
    _acked: acknowledged ranges above acked_offset (out-of-order ACKs)
    _lost:  ranges to re-send, disjoint from _acked, below sent_offset

`next_frame` drains `_lost` from its lowest range first, then sends new bytes
from `sent_offset`; a frame stops at the end of its segment (the next frame
carries on from the next one), so each frame's bytes are contiguous. When
the acknowledged prefix passes the end of a segment, the segment is freed
(or its object released): no byte is ever moved, and a segment's bytes stay
where they are until it is released.

`RecvBuffer` mirrors it with a linear area that starts at `_data_offset` (at
most `read_offset`); each arriving frame is copied once at its offset, only
into gaps `_received` does not already cover; `readable` is the length of the
range that starts at `read_offset`. The area is the body of a bytes object:
a `read` that takes everything held, in order, from the start of the area
(the common case for in-order data) shrinks that bytes object to size and
returns it, so in-order data is copied once on its way from the packet to
the application. Other reads copy out, and a consumed prefix is moved away
only once it is at least as large as what is left (amortised).

Pointers handed out by `next_frame` point into a segment and stay valid until
the next call that can free it: `on_acked`, `reset`.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE, _PyBytes_Resize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.string cimport memcpy, memmove

from quicfast.proto.ranges cimport RangeSet

cdef enum:
    # COMPACT_MIN_BYTES is the smallest consumed prefix worth a memmove.
    COMPACT_MIN_BYTES = 16384
    # INITIAL_CAPACITY is the first allocation of a buffer (made lazily, so
    # idle streams hold no data memory).
    INITIAL_CAPACITY = 4096
    # MAX_SEGMENT is the largest segment of our own made for small writes.
    MAX_SEGMENT = 1 << 20
    # LEND_MIN_BYTES: write_object keeps bytes objects this large by
    # reference; smaller ones are copied (a segment boundary splits a frame).
    LEND_MIN_BYTES = 32768
    # HANDOVER_MIN_BYTES: a read this large takes the receive area itself;
    # smaller ones copy (a fresh area would cost more than the copy), unless
    # the area holds exactly what is read.
    HANDOVER_MIN_BYTES = 2048
    # MAX_CAPACITY_HINT caps the half of a new receive area's size that
    # comes from the last read handed over.
    MAX_CAPACITY_HINT = 1 << 19


cdef inline uint64_t _min64(uint64_t a, uint64_t b) noexcept nogil:
    return a if a < b else b


cdef inline uint64_t _max64(uint64_t a, uint64_t b) noexcept nogil:
    return a if a > b else b


cdef inline Py_ssize_t _first_ending_after(RangeSet rs, uint64_t value) noexcept nogil:
    """_first_ending_after: index of the first range of |rs| whose end is
    greater than |value| (rs.count when there is none)."""
    cdef Py_ssize_t lo = 0, hi = rs.count, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if rs.ends[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _remove_range(RangeSet rs, uint64_t start, uint64_t end) except -1:
    """_remove_range removes [|start|, |end|) from |rs| in place, splitting a
    range when the hole falls inside it. Raises MemoryError only on a split."""
    if start >= end:
        return 0
    cdef Py_ssize_t n = rs.count
    cdef Py_ssize_t i = _first_ending_after(rs, start), j
    if i == n or rs.starts[i] >= end:
        return 0
    if rs.starts[i] < start:
        if rs.ends[i] > end:
            # The hole is strictly inside range i: split it in two.
            if n == rs.capacity:
                rs._grow()
            memmove(&rs.starts[i + 1], &rs.starts[i], (n - i) * sizeof(uint64_t))
            memmove(&rs.ends[i + 1], &rs.ends[i], (n - i) * sizeof(uint64_t))
            rs.ends[i] = start
            rs.starts[i + 1] = end
            rs.count = n + 1
            return 0
        rs.ends[i] = start
        i += 1
    j = i
    while j < n and rs.ends[j] <= end:
        j += 1
    if j < n and rs.starts[j] < end:
        rs.starts[j] = end
    if j > i:
        memmove(&rs.starts[i], &rs.starts[j], (n - j) * sizeof(uint64_t))
        memmove(&rs.ends[i], &rs.ends[j], (n - j) * sizeof(uint64_t))
        rs.count = n - (j - i)
    return 0


@cython.no_gc   # holds only range sets and bytes: never part of a cycle
@cython.freelist(256)
cdef class SendBuffer:
    """`SendBuffer()`: the sending half of a stream's data (RFC 9000 §3.1).

    Drivers, in the order the engine uses them: the application's
    `write`/`write_fin`; packet building calls `has_data_to_send` and
    `next_frame` (lost ranges first, then new data within the flow limit);
    loss recovery reports each STREAM frame with `on_acked` or `on_lost`.
    `reset` abandons the data when RESET_STREAM is sent.
    """

    def __cinit__(self):
        # _acked and _lost are made on first need: in-order ACKs and no loss,
        # the common case, never need them.
        self._next_size = INITIAL_CAPACITY

    def __dealloc__(self):
        self.acked_offset = self.write_offset
        self._release_front()
        PyMem_Free(self._segments)

    cdef Py_ssize_t _find(self, uint64_t offset) noexcept:
        """_find is the index of the segment holding stream |offset|
        (acked_offset <= offset < write_offset)."""
        cdef Py_ssize_t lo = self._first, hi = self._first + self._count, mid
        cdef SendSegment* seg
        if lo <= self._cursor < hi:
            seg = &self._segments[self._cursor]
            if seg.offset <= offset < seg.offset + <uint64_t>seg.length:
                return self._cursor
            if self._cursor + 1 < hi:
                seg += 1
                if seg.offset <= offset < seg.offset + <uint64_t>seg.length:
                    self._cursor += 1
                    return self._cursor
        # Binary search: the last segment starting at or below offset.
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if self._segments[mid].offset <= offset:
                lo = mid
            else:
                hi = mid
        self._cursor = lo
        return lo

    cdef SendSegment* _append(self) except NULL:
        """_append adds an empty segment at write_offset and returns it."""
        cdef Py_ssize_t allocated
        cdef SendSegment* grown
        cdef SendSegment* seg
        if self._first + self._count == self._allocated:
            if self._first:
                memmove(self._segments, self._segments + self._first, self._count * sizeof(SendSegment))
                self._cursor -= self._first
                self._first = 0
            else:
                allocated = self._allocated * 2 if self._allocated else 8
                grown = <SendSegment*>PyMem_Realloc(self._segments, allocated * sizeof(SendSegment))
                if grown == NULL:
                    raise MemoryError()
                self._segments = grown
                self._allocated = allocated
        seg = &self._segments[self._first + self._count]
        seg.offset = self.write_offset
        seg.length = seg.capacity = 0
        seg.data = NULL
        seg.owner = NULL
        self._count += 1
        return seg

    cdef void _release_front(self) noexcept:
        """_release_front frees the segments that end at or below
        acked_offset (all of them once everything is acknowledged)."""
        cdef SendSegment* seg
        while self._count:
            seg = &self._segments[self._first]
            if seg.offset + <uint64_t>seg.length > self.acked_offset:
                break
            if seg.owner != NULL:
                Py_XDECREF(seg.owner)
            else:
                PyMem_Free(seg.data)
            self._first += 1
            self._count -= 1
        if self._count == 0:
            self._first = 0
            self._cursor = 0
            # An emptied buffer starts over with a small segment.
            self._next_size = INITIAL_CAPACITY

    cdef int write(self, const uint8_t* data, Py_ssize_t length) except -1:
        """write appends |length| bytes (copied) at write_offset. Raises
        ValueError after write_fin or reset."""
        cdef SendSegment* seg = NULL
        cdef Py_ssize_t n, capacity
        if self.fin_written or self.is_reset:
            raise ValueError("cannot write to a stream after FIN or reset")
        while length > 0:
            if self._count:
                seg = &self._segments[self._first + self._count - 1]
            if seg == NULL or seg.owner != NULL or seg.length == seg.capacity:
                capacity = self._next_size
                if capacity < length:
                    capacity = length
                seg = self._append()
                seg.data = <uint8_t*>PyMem_Malloc(capacity)
                if seg.data == NULL:
                    self._count -= 1
                    raise MemoryError()
                seg.capacity = capacity
                if self._next_size < MAX_SEGMENT:
                    self._next_size *= 2
            n = seg.capacity - seg.length
            if n > length:
                n = length
            memcpy(seg.data + seg.length, data, n)
            seg.length += n
            self.write_offset += <uint64_t>n
            data += n
            length -= n
        return 0

    cdef int write_object(self, bytes data) except -1:
        """write_object appends |data|: a large bytes object is kept by
        reference until its last byte is acknowledged (no copy), a small one
        is copied like write. Raises ValueError after write_fin or reset."""
        cdef Py_ssize_t length = PyBytes_GET_SIZE(data)
        cdef SendSegment* seg
        if length < LEND_MIN_BYTES or self.fin_written or self.is_reset:
            return self.write(<const uint8_t*>PyBytes_AS_STRING(data), length)
        seg = self._append()
        seg.data = <uint8_t*>PyBytes_AS_STRING(data)
        seg.length = seg.capacity = length
        Py_INCREF(data)
        seg.owner = <PyObject*>data
        self.write_offset += <uint64_t>length
        return 0

    cdef void write_fin(self):
        """write_fin ends the stream at write_offset (its final size)."""
        if not self.is_reset:
            self.fin_written = True

    cdef bint has_data_to_send(self, uint64_t flow_limit):
        if self.is_reset:
            return False
        if self._lost is not None and self._lost.count:
            return True
        if self.sent_offset < self.write_offset:
            return self.sent_offset < flow_limit
        return self.fin_written and not self.fin_sent

    cdef Py_ssize_t next_frame(self, uint64_t flow_limit, Py_ssize_t max_length,
                               uint64_t* offset, bint* fin, const uint8_t** data) noexcept:
        """next_frame chooses the next STREAM frame's payload and marks it
        sent. Lost ranges go first (they were within the peer's limit when
        first sent and limits only grow), then new bytes up to |flow_limit|,
        then a bare FIN. Sets |offset|, |fin| and |data| (pointing into the
        buffer, valid until the next write/on_acked/reset) and returns the
        length: 0 with *fin set for a bare FIN, -1 when there is nothing to
        send or |max_length| leaves no room for data."""
        cdef uint64_t start, end
        cdef SendSegment* seg
        if self.is_reset:
            return -1
        if self._lost is not None and self._lost.count and max_length > 0:
            start = self._lost.starts[0]
            end = _min64(self._lost.ends[0], start + <uint64_t>max_length)
            seg = &self._segments[self._find(start)]
            # A frame's bytes are contiguous: stop at the end of the segment.
            end = _min64(end, seg.offset + <uint64_t>seg.length)
            # The lowest lost range is consumed from its start, so dropping
            # everything below `end` removes exactly [start, end).
            self._lost.remove_below(end)
        elif self.sent_offset < self.write_offset:
            if max_length <= 0 or self.sent_offset >= flow_limit:
                return -1
            start = self.sent_offset
            end = _min64(_min64(self.write_offset, flow_limit), start + <uint64_t>max_length)
            seg = &self._segments[self._find(start)]
            end = _min64(end, seg.offset + <uint64_t>seg.length)
            self.sent_offset = end
        elif self.fin_written and not self.fin_sent:
            self.fin_sent = True
            offset[0] = self.write_offset
            fin[0] = True
            data[0] = NULL
            return 0
        else:
            return -1
        # RFC 9000 §3.1: the FIN rides on the frame that reaches the final size.
        fin[0] = self.fin_written and not self.fin_sent and end == self.write_offset
        if fin[0]:
            self.fin_sent = True
        offset[0] = start
        data[0] = seg.data + (start - seg.offset)
        return <Py_ssize_t>(end - start)

    cdef void on_acked(self, uint64_t offset, uint64_t length, bint fin):
        """on_acked records that a STREAM frame [offset, offset+length) (with
        the FIN when |fin|) was acknowledged; releases the segments the
        acknowledged prefix now covers."""
        cdef uint64_t start = _max64(offset, self.acked_offset)
        cdef uint64_t end = _min64(offset + length, self.sent_offset)
        if self.is_reset:
            return
        if fin and self.fin_written:
            # Also covers a late ACK for a FIN already declared lost: it
            # arrived, so it need not go again.
            self.fin_acked = True
            self.fin_sent = True
        if start >= end:
            return
        if start == self.acked_offset and (self._acked is None or self._acked.count == 0):
            # In order, nothing acknowledged above: just move the prefix.
            self.acked_offset = end
            if self._lost is not None:
                self._lost.remove_below(end)
            self._release_front()
            return
        if self._acked is None:
            self._acked = RangeSet.__new__(RangeSet)
        self._acked.add(start, end)
        if self._lost is not None:
            _remove_range(self._lost, start, end)
        if self._acked.starts[0] <= self.acked_offset:
            self.acked_offset = self._acked.ends[0]
            self._acked.remove_below(self.acked_offset)
            if self._lost is not None:
                self._lost.remove_below(self.acked_offset)
            self._release_front()

    cdef void on_lost(self, uint64_t offset, uint64_t length, bint fin):
        """on_lost queues the parts of [offset, offset+length) that are not
        acknowledged for retransmission, and the FIN when |fin| and not acked."""
        cdef uint64_t start = _max64(offset, self.acked_offset)
        cdef uint64_t end = _min64(offset + length, self.sent_offset)
        cdef Py_ssize_t i
        if self.is_reset:
            return
        if fin and not self.fin_acked:
            self.fin_sent = False
        if start >= end:
            return
        if self._lost is None:
            self._lost = RangeSet.__new__(RangeSet)
        if self._acked is not None:
            i = _first_ending_after(self._acked, start)
            while i < self._acked.count and self._acked.starts[i] < end:
                if self._acked.starts[i] > start:
                    self._lost.add(start, self._acked.starts[i])
                start = _max64(start, self._acked.ends[i])
                i += 1
        if start < end:
            self._lost.add(start, end)

    cdef uint64_t buffered(self):
        """buffered is the number of bytes held (written, not yet acked)."""
        return self.write_offset - self.acked_offset

    cdef bint all_acked(self):
        return self.fin_acked and self.acked_offset == self.write_offset

    cdef void reset(self):
        """reset drops all data (RESET_STREAM sent, RFC 9000 §3.1): nothing
        is sent or retransmitted afterwards."""
        self.is_reset = True
        if self._acked is not None:
            self._acked.clear()
        if self._lost is not None:
            self._lost.clear()
        self.acked_offset = self.write_offset
        self._release_front()

    # Python-visible API (tests, slow path).

    def write_bytes(self, const uint8_t[::1] data not None):
        """Append `data` (copied); raises ValueError after the FIN or a reset."""
        self.write(&data[0] if data.shape[0] else NULL, data.shape[0])

    def write_bytes_object(self, bytes data not None):
        """Append `data`, kept by reference when large; raises ValueError
        after the FIN or a reset."""
        self.write_object(data)

    def segment_count(self):
        """How many segments hold the buffered bytes (for tests)."""
        return self._count

    def write_eof(self):
        self.write_fin()

    def next_frame_py(self, uint64_t flow_limit, Py_ssize_t max_length):
        """`(offset, data, fin)` of the next frame to send, or None."""
        cdef uint64_t offset = 0
        cdef bint fin = False
        cdef const uint8_t* data = NULL
        cdef Py_ssize_t n = self.next_frame(flow_limit, max_length, &offset, &fin, &data)
        if n < 0:
            return None
        return offset, PyBytes_FromStringAndSize(<const char*>data, n) if n else b"", bool(fin)

    def pending(self, uint64_t flow_limit):
        return self.has_data_to_send(flow_limit)

    def ack(self, uint64_t offset, uint64_t length, bint fin=False):
        self.on_acked(offset, length, fin)

    def lose(self, uint64_t offset, uint64_t length, bint fin=False):
        self.on_lost(offset, length, fin)

    def buffered_bytes(self):
        return self.buffered()

    def is_all_acked(self):
        return self.all_acked()

    def reset_stream(self):
        self.reset()

    def lost_ranges(self):
        """The ranges queued for retransmission, lowest first."""
        return list(self._lost) if self._lost is not None else []


@cython.no_gc   # holds only a range set and a bytes object: never part of a cycle
@cython.freelist(256)
cdef class RecvBuffer:
    """`RecvBuffer()`: the receiving half of a stream's data (RFC 9000 §2.2, §3.2).

    Drivers: the engine calls `receive` for each STREAM frame after checking
    flow-control limits (and charges `highest_offset` increases to the
    connection), `reset` for RESET_STREAM; the application calls `readable`
    and `read`/`read_into` until `is_finished`.
    """

    def __cinit__(self):
        self.final_size = -1
        self._received = RangeSet.__new__(RangeSet)

    def __dealloc__(self):
        Py_XDECREF(self._store)

    cdef void _drop_store(self) noexcept:
        Py_XDECREF(self._store)
        self._store = NULL
        self._data = NULL
        self._capacity = 0

    cdef int _reserve(self, uint64_t end) except -1:
        """_reserve makes the area reach stream offset |end|: it moves the
        held bytes to the front when that leaves a quarter free, else it
        copies them into a larger area (doubling, or the last handed-over
        size for a first area)."""
        cdef uint64_t need = end - self._data_offset
        cdef Py_ssize_t live = 0, capacity
        cdef object fresh
        if need <= <uint64_t>self._capacity:
            return 0
        if self._received.count:
            live = <Py_ssize_t>(self._received.ends[self._received.count - 1] - self.read_offset)
        need = end - self.read_offset
        if need * 4 <= <uint64_t>self._capacity * 3:
            if live and self.read_offset > self._data_offset:
                memmove(self._data, self._data + (self.read_offset - self._data_offset), live)
            self._data_offset = self.read_offset
            return 0
        if self._capacity:
            capacity = self._capacity * 2
        elif self.final_size >= 0:
            # The FIN came first (a short stream in one frame, typically):
            # exactly the rest of the stream, which read() can then hand over.
            capacity = <Py_ssize_t>(<uint64_t>self.final_size - self.read_offset)
        else:
            capacity = self._next_capacity if self._next_capacity > INITIAL_CAPACITY else INITIAL_CAPACITY
        if <uint64_t>capacity < need:
            capacity = <Py_ssize_t>need
        fresh = PyBytes_FromStringAndSize(NULL, capacity)
        if live:
            memcpy(PyBytes_AS_STRING(fresh), self._data + (self.read_offset - self._data_offset), live)
        self._drop_store()
        Py_INCREF(fresh)
        self._store = <PyObject*>fresh
        self._data = <uint8_t*>PyBytes_AS_STRING(fresh)
        self._capacity = capacity
        self._data_offset = self.read_offset
        return 0

    cdef int receive(self, uint64_t offset, const uint8_t* data, Py_ssize_t length, bint fin) except -1:
        """receive stores a STREAM frame's bytes. Returns 0, or
        FINAL_SIZE_ERROR (without raising) when the data ends past a known
        final size, a FIN changes a known final size, or a FIN is below data
        already received (RFC 9000 §4.5). Raises MemoryError only."""
        cdef uint64_t end = offset + <uint64_t>length
        cdef uint64_t start, cur, gap_end
        cdef Py_ssize_t i
        cdef RangeSet received = self._received
        if self.final_size >= 0:
            if end > <uint64_t>self.final_size or (fin and end != <uint64_t>self.final_size):
                return FINAL_SIZE_ERROR
        elif fin:
            if end < self.highest_offset:
                return FINAL_SIZE_ERROR
            self.final_size = <int64_t>end
        if end > self.highest_offset:
            self.highest_offset = end
        start = _max64(offset, self.read_offset)
        if self.reset_received or start >= end:
            return 0
        self._reserve(end)
        if received.count == 0 or start >= received.ends[received.count - 1]:
            # In-order (or beyond everything held): one copy.
            memcpy(self._data + (start - self._data_offset), data + (start - offset), end - start)
        else:
            # Copy only into the gaps; bytes already held win (§2.2 lets a
            # receiver ignore retransmitted data that overlaps).
            cur = start
            i = _first_ending_after(received, cur)
            while cur < end:
                if i < received.count and received.starts[i] <= cur:
                    cur = received.ends[i]
                    i += 1
                    continue
                gap_end = end
                if i < received.count and received.starts[i] < end:
                    gap_end = received.starts[i]
                memcpy(self._data + (cur - self._data_offset), data + (cur - offset), gap_end - cur)
                cur = gap_end
        received.add(start, end)
        return 0

    cdef Py_ssize_t readable(self):
        """readable is the number of contiguous bytes available at read_offset."""
        if self._received.count and self._received.starts[0] <= self.read_offset:
            return <Py_ssize_t>(self._received.ends[0] - self.read_offset)
        return 0

    cdef Py_ssize_t read_into(self, uint8_t* out, Py_ssize_t max_length) noexcept:
        """read_into copies up to |max_length| contiguous bytes to |out| and
        consumes them; returns the count."""
        cdef Py_ssize_t n = 0
        cdef uint64_t released, live
        if self._received.count and self._received.starts[0] <= self.read_offset:
            n = <Py_ssize_t>(self._received.ends[0] - self.read_offset)
        if max_length < n:
            n = max_length
        if n <= 0:
            return 0
        memcpy(out, self._data + (self.read_offset - self._data_offset), n)
        self.read_offset += <uint64_t>n
        self._received.remove_below(self.read_offset)
        if self._received.count == 0:
            self._data_offset = self.read_offset
        else:
            released = self.read_offset - self._data_offset
            live = self._received.ends[self._received.count - 1] - self.read_offset
            if released >= <uint64_t>COMPACT_MIN_BYTES and released >= live:
                memmove(self._data, self._data + released, live)
                self._data_offset = self.read_offset
        return n

    cdef bytes read(self, Py_ssize_t max_length):
        """read returns up to |max_length| contiguous bytes (-1: all). When
        that is everything held and the area starts at read_offset, the
        area itself is returned, trimmed to size: no copy."""
        cdef Py_ssize_t n = self.readable()
        cdef object out
        if 0 <= max_length < n:
            n = max_length
        if n <= 0:
            return b""
        if ((n >= HANDOVER_MIN_BYTES or n == self._capacity) and self._data_offset == self.read_offset
                and self._received.count == 1 and self._received.ends[0] == self.read_offset + <uint64_t>n):
            if n < self._capacity:
                try:
                    # Shrinking never moves a block this large in practice;
                    # on failure CPython has freed it and the data is gone.
                    _PyBytes_Resize(&self._store, n)
                except MemoryError:
                    self._store = NULL
                    self._drop_store()
                    raise
            out = <object>self._store
            self._drop_store()
            self._next_capacity = 2 * n if n < MAX_CAPACITY_HINT else 2 * MAX_CAPACITY_HINT
            self.read_offset += <uint64_t>n
            self._received.clear()
            self._data_offset = self.read_offset
            return out
        out = PyBytes_FromStringAndSize(NULL, n)
        self.read_into(<uint8_t*>PyBytes_AS_STRING(out), n)
        return out

    cdef bint is_finished(self):
        return self.final_size >= 0 and self.read_offset == <uint64_t>self.final_size

    cdef int reset(self, uint64_t final_size) except -1:
        """reset handles RESET_STREAM: checks |final_size| like a FIN (returns
        FINAL_SIZE_ERROR, RFC 9000 §4.5) and drops buffered data. highest_offset
        becomes the final size so the engine charges the connection for it."""
        if self.final_size >= 0:
            if final_size != <uint64_t>self.final_size:
                return FINAL_SIZE_ERROR
        elif final_size < self.highest_offset:
            return FINAL_SIZE_ERROR
        self.final_size = <int64_t>final_size
        self.highest_offset = final_size
        self.reset_received = True
        self._received.clear()
        self._drop_store()
        self._data_offset = self.read_offset
        return 0

    # Python-visible API (tests, slow path).

    def receive_bytes(self, uint64_t offset, const uint8_t[::1] data not None, bint fin=False):
        """Store a frame's bytes; returns 0 or a QUIC error code."""
        return self.receive(offset, &data[0] if data.shape[0] else NULL, data.shape[0], fin)

    def read_bytes(self, Py_ssize_t max_length=-1):
        return self.read(max_length)

    def readable_bytes(self):
        return self.readable()

    def finished(self):
        return self.is_finished()

    def reset_stream(self, uint64_t final_size):
        """RESET_STREAM received; returns 0 or FINAL_SIZE_ERROR."""
        return self.reset(final_size)
