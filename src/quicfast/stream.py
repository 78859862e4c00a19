"""Streams of the asyncio API: `Stream`, `SendStream`, `ReceiveStream`
(quic-go's Stream interfaces in Python's idiom; RFC 9000 §2–3).

Reading pulls bytes straight out of the engine's reassembly buffer when the
connection reports them available, once per receive batch. Writing appends to
the engine's send buffer (no packetisation here) and asks the transport to
flush once per loop iteration. `drain()` waits until the unacknowledged bytes
of the stream fall below its high-water mark: that is the backpressure.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional

from .errors import StreamError

if TYPE_CHECKING:
    from .connection import Connection

#: Bytes a stream may hold unacknowledged before drain() waits.
DEFAULT_HIGH_WATER = 4 * 1024 * 1024

__all__ = ["ReceiveStream", "SendStream", "Stream"]


class _StreamBase:
    def __init__(self, connection: "Connection", stream_id: int) -> None:
        self._conn = connection
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stream_id}>"


class ReceiveStream(_StreamBase):
    """The receiving half of a stream."""

    def __init__(self, connection: "Connection", stream_id: int) -> None:
        super().__init__(connection, stream_id)
        self._eof = False
        self._read_error: Optional[BaseException] = None
        self._readable = asyncio.Event()

    def _notify_readable(self) -> None:
        self._readable.set()

    def _fail_read(self, exc: BaseException) -> None:
        if self._read_error is None and not self._eof:
            self._read_error = exc
        self._readable.set()

    async def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes (all available when -1); b"" at the end of the stream.

        :raises StreamError: when the peer reset the stream or we cancelled reading.
        :raises ConnectionClosedError: when the connection closed first.
        """
        while True:
            if self._eof:
                return b""
            if self._read_error is not None:
                raise self._read_error
            engine = self._conn._engine
            data, fin = engine.read_stream(self.stream_id, n)
            if data or fin:
                if fin:
                    self._eof = True
                self._conn._schedule_flush()
                if data:
                    return data
                return b""
            if self._read_error is not None:
                raise self._read_error
            self._readable.clear()
            await self._readable.wait()

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        """Read until the end of the stream (at most `limit` bytes, else ValueError)."""
        chunks = []
        total = 0
        while True:
            chunk = await self.read()
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"stream {self.stream_id} exceeded {limit} bytes")
            chunks.append(chunk)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly `n` bytes; asyncio.IncompleteReadError at an early end."""
        parts = []
        need = n
        while need:
            chunk = await self.read(need)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            need -= len(chunk)
        return b"".join(parts)

    def cancel_read(self, error_code: int) -> None:
        """Stop reading: sends STOP_SENDING (quic-go CancelRead)."""
        if not self._eof:
            self._conn._engine.stop_stream(self.stream_id, error_code)
            self._fail_read(StreamError(self.stream_id, error_code, remote=False, kind="stop_sending"))
            self._conn._schedule_flush()


class SendStream(_StreamBase):
    """The sending half of a stream."""

    def __init__(self, connection: "Connection", stream_id: int, high_water: int = DEFAULT_HIGH_WATER) -> None:
        super().__init__(connection, stream_id)
        self.high_water = high_water
        self._write_error: Optional[BaseException] = None
        self._closed = False
        self._drained = asyncio.Event()
        self._drained.set()

    def _check_drained(self) -> None:
        if self._write_error is not None or self._conn._engine.stream_send_buffered(self.stream_id) <= self.high_water:
            self._drained.set()

    def _fail_write(self, exc: BaseException) -> None:
        if self._write_error is None:
            self._write_error = exc
        self._drained.set()

    def write(self, data: bytes) -> None:
        """Queue `data` (copied once into the send buffer); call `drain()` to
        respect backpressure.

        :raises StreamError: when the peer stopped the stream or we reset it.
        """
        if self._write_error is not None:
            raise self._write_error
        if self._closed:
            raise StreamError(self.stream_id, 0, remote=False, kind="closed")
        self._conn._engine.send_stream_data(self.stream_id, data, False)
        self._conn._schedule_flush()
        if self._conn._engine.stream_send_buffered(self.stream_id) > self.high_water:
            self._drained.clear()

    async def drain(self) -> None:
        """Wait until the stream holds fewer than `high_water` unacknowledged bytes."""
        while True:
            if self._write_error is not None:
                raise self._write_error
            self._check_drained()
            if self._drained.is_set():
                return
            self._conn._watch_drain(self)
            await self._drained.wait()

    def close(self) -> None:
        """Finish the sending side (FIN), like quic-go's Stream.Close."""
        if self._closed or self._write_error is not None:
            return
        self._closed = True
        self._conn._engine.send_stream_data(self.stream_id, b"", True)
        self._conn._schedule_flush()

    write_eof = close

    def cancel_write(self, error_code: int) -> None:
        """Abandon sending: RESET_STREAM with `error_code` (quic-go CancelWrite)."""
        if self._write_error is None:
            self._conn._engine.reset_stream(self.stream_id, error_code)
            self._fail_write(StreamError(self.stream_id, error_code, remote=False, kind="reset"))
            self._conn._schedule_flush()

    @property
    def send_buffered(self) -> int:
        """Bytes written and not yet acknowledged by the peer."""
        return self._conn._engine.stream_send_buffered(self.stream_id)


class Stream(ReceiveStream, SendStream):
    """A bidirectional stream."""

    def __init__(self, connection: "Connection", stream_id: int, high_water: int = DEFAULT_HIGH_WATER) -> None:
        ReceiveStream.__init__(self, connection, stream_id)
        SendStream.__init__(self, connection, stream_id, high_water)
