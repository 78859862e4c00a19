"""Streams of the asyncio API: `Stream`, `SendStream`, `ReceiveStream`
(quic-go's Stream interfaces in Python's idiom; RFC 9000 §2–3).

Reading pulls bytes straight out of the engine's reassembly buffer when the
connection reports them available, once per receive batch. Writing appends to
the engine's send buffer (no packetisation here) and asks the transport to
flush once per loop iteration.

Backpressure: `write()` never blocks; `drain()` waits while the stream holds
more than its high-water mark of unacknowledged bytes, or while the whole
connection holds more than `Config.connection_send_high_water` (see
`Connection`). As with asyncio's StreamWriter, each writer can overshoot a mark
by at most the one write it made before calling `drain()`.

A stream costs little while nobody waits: no asyncio object is made for it
until a reader or a drain() actually has to wait (one future then).

Why this module is Cython while the rest of the shell is Python: a
request/response stream makes a stream object and calls its read, write and
close methods several times, each of which calls the engine. As `cdef`
classes the fields are C struct members and the engine calls go straight to
its C entry points (`quicfast.proto.connection` ``_read_stream``,
``_send_stream_data``, ``_stream_send_buffered``), with no argument tuples,
no ``(data, fin)`` tuple and no Python frames (docs/design.md has the
instruction counts). `StreamHost`, the connection's side of its streams
(opening, accepting, the engine's stream events, flush requests), is here for
the same reason; what stays Python in the shell runs per datagram, per flush
or per connection.
"""

import asyncio
import collections
import weakref

from libc.stdint cimport uint64_t
from quicfast.proto.connection cimport Connection as Engine
from quicfast.proto.events cimport StreamDataAvailable, StreamOpened, StreamsAvailable

from quicfast import errors
from quicfast.errors import StreamError

#: Bytes a stream may hold unacknowledged before drain() waits.
DEFAULT_HIGH_WATER = 4 * 1024 * 1024

__all__ = ["ReceiveStream", "SendStream", "Stream"]


cdef enum:
    # Streams finished (FIN written) since the last flush after which the
    # connection is flushed at once instead of at the end of the loop pass.
    FLUSH_AFTER_FINISHED = 8
    # Streams accept() hands out back to back before it lets the event loop
    # run once: the handlers an accept loop spawned for the start of a burst
    # of new streams run (and answer) before it takes the rest.
    ACCEPT_BURST_C = 16

#: Streams finished (FIN written) since the last flush after which the
#: connection is flushed at once instead of at the end of the loop pass.
FLUSH_AFTER_FINISHED_STREAMS = FLUSH_AFTER_FINISHED
#: Streams `Connection.accept_stream()` hands out back to back before it lets
#: the event loop run once.
ACCEPT_BURST = ACCEPT_BURST_C


cdef void _wake_all(list waiters) except *:
    """Resolve every future in `waiters` (those not cancelled meanwhile) and empty it."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    del waiters[:]


cdef class StreamHost:
    """A connection's streams: their table, opening and accepting them,
    the engine's stream events delivered to them, and their flush requests.

    Cython, with the stream classes, because all of it runs for every
    stream; `quicfast.Connection` keeps the rest and delegates here.

    :param connection: the `quicfast.Connection`.
    :param engine: its sans-I/O engine.
    :param streams: its dict of streams by id (never replaced).
    :param loop: its event loop.
    :param closed: its future of the close cause (resolved once closed).
    :param stream_high_water: the default `SendStream.high_water`.
    """

    # connection_ref is a weak reference to the `quicfast.Connection` whose
    # streams these are (it holds this object: no reference cycle).
    cdef object connection_ref
    cdef Engine engine
    cdef dict streams
    cdef object loop
    cdef object closed
    cdef Py_ssize_t stream_high_water
    # flush_pending is set while a flush of the connection is scheduled for
    # this loop pass; finished_unflushed counts the streams finished since
    # the connection was last flushed.
    cdef public bint flush_pending
    cdef public int finished_unflushed
    # incoming_bidi/incoming_uni are the peer's streams not yet accepted;
    # accepted_in_a_row counts those accept() returned without waiting or
    # yielding; streams_opened is set when the peer opened streams since the
    # transport last looked.
    cdef readonly object incoming_bidi, incoming_uni
    cdef int accepted_in_a_row
    cdef public bint streams_opened
    # The futures of the tasks waiting in accept() and open_sync().
    cdef list accept_waiters, stream_credit_waiters

    def __init__(self, connection, Engine engine, dict streams, loop, closed, Py_ssize_t stream_high_water):
        self.connection_ref = weakref.ref(connection)
        self.engine = engine
        self.streams = streams
        self.loop = loop
        self.closed = closed
        self.stream_high_water = stream_high_water
        self.incoming_bidi = collections.deque()
        self.incoming_uni = collections.deque()
        self.accept_waiters = []
        self.stream_credit_waiters = []

    cdef object live_connection(self):
        """The connection, or None once it was freed (it was closed and only
        some of its streams are still held)."""
        # Calling the reference, not PyWeakref_GetObject: that C API is
        # deprecated from Python 3.13 on, and this runs about once per flush.
        return self.connection_ref()

    cdef int raise_if_closed(self) except -1:
        if self.closed.done():
            raise errors.fresh_copy(self.closed.result())
        return 0

    # -- flushing ------------------------------------------------------------

    cdef int request_flush(self) except -1:
        """Have the transport flush the connection this loop pass (after a
        write, or a read that returns flow-control credit)."""
        if not self.flush_pending:
            conn = self.live_connection()
            if conn is not None:
                conn._schedule_flush()
        return 0

    cdef int stream_finished(self) except -1:
        """A stream's FIN was written: flush soon, or now when several wait.

        With many short request/response streams, flushing only at the end of
        the loop pass makes the two ends take turns: one answers a whole batch
        while the other waits for it. Sending every few streams lets the peer
        start on the first answers while we write the rest. Smaller batches
        cost some CPU per stream on both ends (more datagrams and wake-ups),
        for a higher rate when the two ends run on different cores.
        """
        if not self.flush_pending:
            return self.request_flush()
        self.finished_unflushed += 1
        if self.finished_unflushed >= FLUSH_AFTER_FINISHED:
            conn = self.live_connection()
            if conn is not None:
                conn._transport._flush_connection(conn)
        return 0

    # -- engine events -------------------------------------------------------

    def deliver_events(self):
        """Take the engine's pending events and deliver the stream ones
        (StreamOpened, StreamDataAvailable, StreamsAvailable) here; returns
        the others, oldest first, for the connection to handle (a list,
        empty when there were none)."""
        cdef list others = []
        cdef list batch
        while True:
            batch = self.engine.drain_events()
            if not batch:
                return others
            for event in batch:
                kind = type(event)
                if kind is StreamDataAvailable:
                    stream = self.streams.get((<StreamDataAvailable>event).stream_id)
                    if stream is not None:
                        (<_StreamBase>stream)._wake_reader()
                elif kind is StreamOpened:
                    self._on_stream_opened((<StreamOpened>event).stream_id)
                elif kind is StreamsAvailable:
                    if self.stream_credit_waiters:
                        _wake_all(self.stream_credit_waiters)
                else:
                    others.append(event)

    cdef int _on_stream_opened(self, sid) except -1:
        # Only the peer opens streams this way: a uni one is receive-only.
        if sid & 2:
            stream = ReceiveStream(self, sid)
            self.incoming_uni.append(stream)
        else:
            stream = Stream(self, sid)
            self.incoming_bidi.append(stream)
        self.streams[sid] = stream
        self.streams_opened = True
        if self.accept_waiters:
            _wake_all(self.accept_waiters)
        return 0

    def on_terminated(self, error):
        """The connection closed with `error`: fail every stream and wake
        every waiter (they see the closed future)."""
        for stream in list(self.streams.values()):
            stream._fail_read(error)
            stream._fail_write(error)
        self.streams.clear()
        _wake_all(self.accept_waiters)
        _wake_all(self.stream_credit_waiters)

    # -- opening and accepting -----------------------------------------------

    async def accept(self, bint unidirectional):
        """The next stream the peer opened (`Connection.accept_stream`)."""
        queue = self.incoming_uni if unidirectional else self.incoming_bidi
        if not queue or self.accepted_in_a_row >= ACCEPT_BURST_C:
            if self.accepted_in_a_row >= ACCEPT_BURST_C:
                self.accepted_in_a_row = 0
                await asyncio.sleep(0)
            while not queue:
                self.accepted_in_a_row = 0
                self.raise_if_closed()
                await self.wait(self.accept_waiters)
        self.accepted_in_a_row += 1
        return queue.popleft()

    async def open_sync(self, bint unidirectional, kind):
        """A new stream of class `kind`, opened at once within the peer's
        limit or past it while `Engine._may_open_stream_past_limit` allows,
        else once the peer's MAX_STREAMS allows (`Connection.open_stream_sync`)."""
        engine = self.engine
        while not engine._may_open_stream_past_limit(unidirectional):
            self.raise_if_closed()
            await self.wait(self.stream_credit_waiters)
        self.raise_if_closed()
        sid = engine._open_stream(unidirectional, True)
        stream = self.streams[sid] = kind(self, sid)
        return stream

    def open(self, bint unidirectional, kind):
        """A new stream of class `kind` within the peer's limit (`Connection.open_stream`)."""
        self.raise_if_closed()
        sid = self.engine._open_stream(unidirectional, False)
        stream = self.streams[sid] = kind(self, sid)
        return stream

    async def wait(self, list waiters):
        """Wait until something resolves the future this adds to `waiters`
        (the accept and stream-credit lists here, the connection's datagram
        lists); a cancelled wait takes its future out again."""
        waiter = self.loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter.cancelled() and waiter in waiters:   # do not leave it behind
                waiters.remove(waiter)


cdef class _StreamBase:
    """What both halves share. A half is over once `_eof` or `_read_error`
    (receiving), `_closed` or `_write_error` (sending) is set; the connection
    forgets the stream when both are. Users get the subclasses below."""

    # _host is what the stream shares with the others of its connection.
    cdef StreamHost _host
    # _sid is stream_id as a C integer, for the engine calls.
    cdef uint64_t _sid
    cdef readonly object stream_id
    # receiving half: _eof is set once the FIN was read; _read_error is why
    # reading failed; _read_waiter is the future of a read() that waits.
    cdef bint _eof
    cdef object _read_error
    cdef object _read_waiter
    # sending half: high_water is what drain() waits below; _closed is set
    # once the FIN was written; _write_error is why writing failed;
    # _drain_waiters are the futures of drain() calls that wait (or None).
    cdef public Py_ssize_t high_water
    cdef bint _closed
    cdef object _write_error
    cdef list _drain_waiters

    def __init__(self, StreamHost host not None, stream_id, high_water=None):
        self._host = host
        self._sid = stream_id
        self.stream_id = stream_id
        # A half this class lacks is over from the start.
        if isinstance(self, SendStream):
            self.high_water = host.stream_high_water if high_water is None else high_water
        else:
            self._closed = True
        if not isinstance(self, ReceiveStream):
            self._eof = True

    def __repr__(self):
        return f"<{type(self).__name__} {self.stream_id}>"

    cdef int _half_done(self) except -1:
        """Forget the stream in the connection once both halves are over."""
        if ((self._eof or self._read_error is not None)
                and (self._closed or self._write_error is not None)):
            self._host.streams.pop(self.stream_id, None)
        return 0

    # -- what the connection calls ------------------------------------------

    cdef int _wake_reader(self) except -1:
        """More can be read (or reading failed): resume a waiting read()."""
        waiter = self._read_waiter
        if waiter is not None:
            self._read_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return 0

    def _fail_read(self, exc):
        if self._read_error is None and not self._eof:
            self._read_error = exc
        self._wake_reader()
        self._half_done()

    def _fail_write(self, exc):
        if self._write_error is None:
            self._write_error = exc
        self._wake_drain()
        self._half_done()

    def _wake_drain(self):
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _drained(self):
        """Whether neither this stream nor its connection is over its mark."""
        if self._write_error is not None:
            return True
        if self._host.engine._stream_send_buffered(self._sid) > <uint64_t>self.high_water:
            return False
        conn = self._host.live_connection()
        return conn is None or conn._send_below_high_water()

    # -- receiving ----------------------------------------------------------

    cdef object _read_now(self, Py_ssize_t n):
        """What can be read at once: bytes, b"" at the end of the stream, or
        None when the caller has to wait for the peer."""
        cdef bint fin
        if self._eof:
            return b""
        if self._read_error is not None:
            raise errors.fresh_copy(self._read_error)
        data = self._host.engine._read_stream(self._sid, n, &fin)
        if fin:
            # Only an open receiving half gets this far.
            self._eof = True
            if self._closed or self._write_error is not None:
                self._host.streams.pop(self.stream_id, None)    # _half_done, inline
        elif not data:
            return None
        # Reading returns flow-control credit (and may retire the stream).
        self._host.request_flush()
        return data

    cdef object _readable(self):
        """A future the connection resolves when more can be read (or reading failed)."""
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError(f"stream {self.stream_id}: another task is already waiting in read()")
        waiter = self._read_waiter = self._host.loop.create_future()
        return waiter


cdef class ReceiveStream(_StreamBase):
    """The receiving half of a stream."""

    async def read(self, Py_ssize_t n=-1):
        """Read up to `n` bytes (all available when -1); b"" at the end of the
        stream, and at once when `n` is 0 (as asyncio's StreamReader).

        :raises StreamError: when the peer reset the stream or we cancelled reading.
        :raises ConnectionClosedError: when the connection closed first.
        :raises RuntimeError: when another task is already waiting in read().
        """
        if n == 0:
            return b""
        while True:
            data = self._read_now(n)
            if data is not None:
                return data
            await self._readable()

    async def read_all(self, Py_ssize_t limit=1 << 30):
        """Read until the end of the stream (at most `limit` bytes, else ValueError)."""
        cdef list chunks = None
        cdef Py_ssize_t total = 0
        while True:
            data = self._read_now(-1)
            if data is None:
                await self._readable()
                continue
            if not data:
                return b"".join(chunks) if chunks else b""
            total += len(data)
            if total > limit:
                raise ValueError(f"stream {self.stream_id} exceeded {limit} bytes")
            if chunks is None:
                if self._eof:
                    return data     # the usual small message: whole, with its FIN
                chunks = [data]
            else:
                chunks.append(data)

    async def readexactly(self, Py_ssize_t n):
        """Read exactly `n` bytes; asyncio.IncompleteReadError at an early end."""
        cdef list parts = None
        cdef Py_ssize_t need = n
        while need:
            data = self._read_now(need)
            if data is None:
                await self._readable()
                continue
            if not data:
                raise asyncio.IncompleteReadError(b"".join(parts) if parts else b"", n)
            if parts is None and len(data) == n:
                return data
            if parts is None:
                parts = []
            parts.append(data)
            need -= len(data)
        return b"".join(parts) if parts else b""

    def cancel_read(self, error_code):
        """Stop reading: sends STOP_SENDING (quic-go CancelRead)."""
        if not self._eof:
            self._host.engine.stop_stream(self._sid, error_code)
            self._fail_read(StreamError(self.stream_id, error_code, remote=False, kind="stop_sending"))
            self._host.request_flush()


cdef class SendStream(_StreamBase):
    """The sending half of a stream.

    :param high_water: drain() waits while more bytes than this are unacknowledged.
    """

    def write(self, data):
        """Queue `data` (copied once into the send buffer); call `drain()` to
        respect backpressure.

        :raises StreamError: when the peer stopped the stream or we reset it.
        """
        if self._write_error is not None:
            raise errors.fresh_copy(self._write_error)
        if self._closed:
            raise StreamError(self.stream_id, 0, remote=False, kind="closed")
        self._host.engine._send_stream_data(self._sid, data, False)
        self._host.request_flush()

    async def drain(self):
        """Wait until the stream holds at most `high_water` unacknowledged
        bytes and the connection at most its `connection_send_high_water`.

        :raises StreamError: when the peer stopped the stream or we reset it.
        :raises ConnectionClosedError: when the connection closed first.
        """
        while True:
            if self._write_error is not None:
                raise errors.fresh_copy(self._write_error)
            if self._drained():
                return
            waiter = self._host.loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = [waiter]
            else:
                self._drain_waiters.append(waiter)
            conn = self._host.live_connection()
            if conn is not None:
                conn._watch_drain(self)
            try:
                await waiter
            finally:
                waiters = self._drain_waiters
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)

    def close(self):
        """Finish the sending side (FIN), like quic-go's Stream.Close."""
        if self._closed or self._write_error is not None:
            return
        self._closed = True
        self._host.engine._send_stream_data(self._sid, b"", True)
        self._host.stream_finished()
        # The sending half was open until now (neither closed nor failed).
        if self._eof or self._read_error is not None:
            del self._host.streams[self.stream_id]

    def write_eof(self):
        """Same as `close()` (asyncio StreamWriter's name)."""
        self.close()

    def cancel_write(self, error_code):
        """Abandon sending: RESET_STREAM with `error_code` (quic-go CancelWrite).

        Also after `close()`, while some of the data or the FIN is
        unacknowledged; a no-op for the peer once it acknowledged everything.
        """
        if self._write_error is None:
            self._host.engine.reset_stream(self._sid, error_code)
            self._fail_write(StreamError(self.stream_id, error_code, remote=False, kind="reset"))
            self._host.request_flush()

    @property
    def send_buffered(self):
        """Bytes written and not yet acknowledged by the peer."""
        return self._host.engine._stream_send_buffered(self._sid)


class Stream(ReceiveStream, SendStream):
    """A bidirectional stream."""

    __slots__ = ()
