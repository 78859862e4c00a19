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
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional

from . import errors
from .errors import StreamError

if TYPE_CHECKING:
    from .connection import Connection

#: Bytes a stream may hold unacknowledged before drain() waits.
DEFAULT_HIGH_WATER = 4 * 1024 * 1024

__all__ = ["ReceiveStream", "SendStream", "Stream"]


class _StreamBase:
    # Every slot lives here so that Stream can inherit from both halves. A
    # half is over once _eof or _read_error (receiving), _closed or
    # _write_error (sending) is set; the stream is forgotten when both are.
    __slots__ = (
        "_conn", "_engine", "stream_id",
        # receiving half
        "_eof", "_read_error", "_read_waiter",
        # sending half
        "high_water", "_closed", "_write_error", "_drain_waiters",
    )

    def __init__(self, connection: "Connection", stream_id: int, high_water: Optional[int] = None) -> None:
        # Both halves open: the bidirectional case, the one made per request;
        # the one-way subclasses close a half after this.
        self._conn = connection
        self._engine = connection._engine
        self.stream_id = stream_id
        self._eof = False
        self._read_error: Optional[BaseException] = None
        self._read_waiter: Optional[asyncio.Future] = None
        self.high_water = connection._stream_high_water if high_water is None else high_water
        self._closed = False
        self._write_error: Optional[BaseException] = None
        self._drain_waiters: Optional[list] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stream_id}>"

    def _half_done(self) -> None:
        """Forget the stream in the connection once both halves are over."""
        if ((self._eof or self._read_error is not None)
                and (self._closed or self._write_error is not None)):
            self._conn._streams.pop(self.stream_id, None)

    # -- receiving half ---------------------------------------------------

    def _fail_read(self, exc: BaseException) -> None:
        if self._read_error is None and not self._eof:
            self._read_error = exc
        waiter = self._read_waiter
        if waiter is not None:
            self._read_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self._half_done()

    # -- sending half -----------------------------------------------------

    def _fail_write(self, exc: BaseException) -> None:
        if self._write_error is None:
            self._write_error = exc
        self._wake_drain()
        self._half_done()

    def _wake_drain(self) -> None:
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


class ReceiveStream(_StreamBase):
    """The receiving half of a stream."""

    __slots__ = ()

    def __init__(self, connection: "Connection", stream_id: int) -> None:
        _StreamBase.__init__(self, connection, stream_id, 0)
        self._closed = True

    def _read_now(self, n: int) -> Optional[bytes]:
        """What can be read at once: bytes, b"" at the end of the stream, or
        None when the caller has to wait for the peer."""
        if self._eof:
            return b""
        if self._read_error is not None:
            raise errors.fresh_copy(self._read_error)
        data, fin = self._engine.read_stream(self.stream_id, n)
        if data or fin:
            conn = self._conn
            if fin:
                # Only an open receiving half gets this far.
                self._eof = True
                if self._closed or self._write_error is not None:
                    conn._streams.pop(self.stream_id, None)   # _half_done, inline
            # Reading returns flow-control credit (and may retire the stream).
            if not conn._flush_pending:
                conn._schedule_flush()
            return data
        return None

    def _readable(self) -> asyncio.Future:
        """A future the connection resolves when more can be read (or reading failed)."""
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError(f"stream {self.stream_id}: another task is already waiting in read()")
        waiter = self._read_waiter = self._conn._loop.create_future()
        return waiter

    async def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes (all available when -1); b"" at the end of the stream.

        :raises StreamError: when the peer reset the stream or we cancelled reading.
        :raises ConnectionClosedError: when the connection closed first.
        :raises RuntimeError: when another task is already waiting in read().
        """
        while True:
            data = self._read_now(n)
            if data is not None:
                return data
            await self._readable()

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        """Read until the end of the stream (at most `limit` bytes, else ValueError)."""
        chunks = None
        total = 0
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

    async def readexactly(self, n: int) -> bytes:
        """Read exactly `n` bytes; asyncio.IncompleteReadError at an early end."""
        parts = None
        need = n
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

    def cancel_read(self, error_code: int) -> None:
        """Stop reading: sends STOP_SENDING (quic-go CancelRead)."""
        if not self._eof:
            self._engine.stop_stream(self.stream_id, error_code)
            self._fail_read(StreamError(self.stream_id, error_code, remote=False, kind="stop_sending"))
            self._conn._schedule_flush()


class SendStream(_StreamBase):
    """The sending half of a stream.

    :param high_water: drain() waits while more bytes than this are unacknowledged.
    """

    __slots__ = ()

    def __init__(self, connection: "Connection", stream_id: int, high_water: Optional[int] = None) -> None:
        _StreamBase.__init__(self, connection, stream_id, high_water)
        self._eof = True

    def write(self, data: bytes) -> None:
        """Queue `data` (copied once into the send buffer); call `drain()` to
        respect backpressure.

        :raises StreamError: when the peer stopped the stream or we reset it.
        """
        if self._write_error is not None:
            raise errors.fresh_copy(self._write_error)
        if self._closed:
            raise StreamError(self.stream_id, 0, remote=False, kind="closed")
        self._engine.send_stream_data(self.stream_id, data)
        conn = self._conn
        if not conn._flush_pending:
            conn._schedule_flush()

    def _drained(self) -> bool:
        """Whether neither this stream nor its connection is over its mark."""
        if self._write_error is not None:
            return True
        if self._engine.stream_send_buffered(self.stream_id) > self.high_water:
            return False
        return self._conn._send_below_high_water()

    async def drain(self) -> None:
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
            waiter = self._conn._loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = [waiter]
            else:
                self._drain_waiters.append(waiter)
            self._conn._watch_drain(self)
            try:
                await waiter
            finally:
                waiters = self._drain_waiters
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)

    def close(self) -> None:
        """Finish the sending side (FIN), like quic-go's Stream.Close."""
        if self._closed or self._write_error is not None:
            return
        self._closed = True
        self._engine.send_stream_data(self.stream_id, b"", True)
        conn = self._conn
        conn._stream_finished()
        # The sending half was open until now (neither closed nor failed).
        if self._eof or self._read_error is not None:
            del conn._streams[self.stream_id]

    write_eof = close

    def cancel_write(self, error_code: int) -> None:
        """Abandon sending: RESET_STREAM with `error_code` (quic-go CancelWrite).

        Also after `close()`, while some of the data or the FIN is
        unacknowledged; a no-op for the peer once it acknowledged everything.
        """
        if self._write_error is None:
            self._engine.reset_stream(self.stream_id, error_code)
            self._fail_write(StreamError(self.stream_id, error_code, remote=False, kind="reset"))
            self._conn._schedule_flush()

    @property
    def send_buffered(self) -> int:
        """Bytes written and not yet acknowledged by the peer."""
        return self._engine.stream_send_buffered(self.stream_id)


class Stream(ReceiveStream, SendStream):
    """A bidirectional stream."""

    __slots__ = ()

    __init__ = _StreamBase.__init__
