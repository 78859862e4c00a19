"""`H3Connection`: HTTP/3 over one quicfast `Connection`, for clients and servers.

Implements RFC 9114 §3.2 (ALPN "h3"), §4.1 (message framing on request
streams: HEADERS, DATA, trailers; interim responses), §4.1.2 (malformed
messages), §5.2 (GOAWAY in both directions), §6.1–6.2 (request and
unidirectional streams: control, push, and unknown stream types ignored),
§7 (frames; CANCEL_PUSH and MAX_PUSH_ID handled though no push is sent;
reserved frame and stream types ignored and greased), §8 (error codes);
RFC 9204 §4.2 (QPACK encoder and decoder streams; the dynamic table through
pylsqpack's `Encoder`/`Decoder`, with blocked streams); RFC 9220 §3
(SETTINGS_ENABLE_CONNECT_PROTOCOL, the `:protocol` pseudo-header) and
RFC 9297 §2–3 (SETTINGS_H3_DATAGRAM and HTTP Datagrams keyed by quarter
stream ID).

Theory of operation: on `start()` each side opens its control stream
(SETTINGS first, then a greased reserved frame) and its QPACK encoder and
decoder streams, and spawns one task that accepts the peer's unidirectional
streams and one task per such stream. Request streams are driven by whoever
holds the `RequestStream` (the client's `request`, the server's ASGI
handler), so their frames are parsed on demand and backpressure is QUIC's
flow control. A connection error (an `H3ConnectionError` raised anywhere)
closes the QUIC connection with its code; a stream error resets one stream.

Bounded memory: a HEADERS frame larger than our advertised
SETTINGS_MAX_FIELD_SECTION_SIZE, a control frame larger than
`MAX_CONTROL_FRAME_SIZE`, and DATA are never buffered beyond those bounds
(DATA is streamed); unknown frames are skipped without buffering.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from dataclasses import dataclass
from typing import Optional

import pylsqpack

from ..errors import ConnectionClosedError, H3ErrorCode, QuicError, StreamError
from .exceptions import (
    FrameError, GoAwayError, H3ConnectionError, H3StreamError, MessageError,
)
from .frames import (
    RESERVED_HTTP2_FRAME_TYPES, FrameReader, FrameTooLarge, FrameType, Setting, StreamType,
    decode_settings, decode_single_varint, decode_varint, encode_frame, encode_frame_header,
    encode_settings, encode_varint, grease_value, is_grease,
)

__all__ = ["H3Connection", "H3Settings", "RequestStream", "ALPN"]

log = logging.getLogger("quicfast.h3")

ALPN = "h3"
#: Largest SETTINGS / GOAWAY / MAX_PUSH_ID / CANCEL_PUSH payload we buffer.
MAX_CONTROL_FRAME_SIZE = 16 * 1024
#: HTTP Datagrams queued per request stream before the oldest are dropped.
MAX_QUEUED_DATAGRAMS = 256
#: Per-field overhead when sizing a field section (RFC 9114 §4.2.2).
FIELD_OVERHEAD = 32

_CONTROL_ONLY_FRAMES = frozenset({FrameType.SETTINGS, FrameType.GOAWAY, FrameType.MAX_PUSH_ID,
                                  FrameType.CANCEL_PUSH})


@dataclass
class H3Settings:
    """What we advertise in SETTINGS, and the limits we enforce on the peer."""

    #: QPACK dynamic table capacity we let the peer's encoder use (RFC 9204 §5).
    qpack_max_table_capacity: int = 4096
    #: Streams the peer may leave blocked on our QPACK decoder (RFC 9204 §5).
    qpack_blocked_streams: int = 16
    #: Largest field section (headers or trailers) we accept (RFC 9114 §4.2.2).
    max_field_section_size: int = 64 * 1024
    #: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220); a server offers it.
    enable_connect_protocol: bool = False
    #: SETTINGS_H3_DATAGRAM (RFC 9297); needs QUIC datagrams (Config.enable_datagrams).
    h3_datagram: bool = False
    #: Send reserved settings, frames and streams (RFC 9114 §7.2.4.1, §7.2.8, §6.2.3).
    grease: bool = True

    def as_dict(self) -> dict[int, int]:
        settings = {
            Setting.QPACK_MAX_TABLE_CAPACITY: self.qpack_max_table_capacity,
            Setting.QPACK_BLOCKED_STREAMS: self.qpack_blocked_streams,
            Setting.MAX_FIELD_SECTION_SIZE: self.max_field_section_size,
        }
        if self.enable_connect_protocol:
            settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1
        if self.h3_datagram:
            settings[Setting.H3_DATAGRAM] = 1
        return settings


def declared_length(headers) -> Optional[int]:
    """The Content-Length of a header section (RFC 9110 §8.6); None when absent
    or in an interim (1xx) response. A list of equal values counts as one.

    :raises MessageError: for a value that is not a number, or differing values.
    """
    length = None
    for name, value in headers:
        if name == b":status" and value[:1] == b"1":
            return None
        if name == b"content-length":
            for part in value.split(b","):
                part = part.strip()
                if not part.isdigit() or (length is not None and int(part) != length):
                    raise MessageError(f"invalid content-length {value!r}")
                length = int(part)
    return length


def field_section_size(headers) -> int:
    return sum(len(name) + len(value) + FIELD_OVERHEAD for name, value in headers)


class RequestStream:
    """One request/response exchange on a bidirectional QUIC stream (RFC 9114 §4.1).

    The side that holds it sends with `send_headers`/`send_data`/`send_trailers`
    and receives with `receive_headers`/`read_data`; after `read_data` returned
    b"", `trailers` holds the trailer section if one came.
    """

    def __init__(self, h3: "H3Connection", stream) -> None:
        self._h3 = h3
        self.stream = stream
        self.stream_id: int = stream.stream_id
        self._reader = FrameReader(stream)
        self._headers_received = False
        self._body_done = False
        self._pending_data_frame = False
        #: Content-Length of the message being received (None: not given or not binding)
        self.expected_length: Optional[int] = None
        self._data_received = 0
        self._sent_headers = False
        self._send_closed = False
        self.trailers: Optional[list[tuple[bytes, bytes]]] = None
        self._datagrams: collections.deque = collections.deque(maxlen=MAX_QUEUED_DATAGRAMS)
        self._datagram_waiter = asyncio.Event()

    def __repr__(self) -> str:
        return f"<RequestStream {self.stream_id}>"

    # -- sending -----------------------------------------------------------

    def send_headers(self, headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """Encode `headers` with QPACK and send them in a HEADERS frame."""
        block = self._h3._encode_headers(self.stream_id, headers)
        self.stream.write(encode_frame(FrameType.HEADERS, block))
        self._sent_headers = True
        if end_stream:
            self.end()

    def send_data(self, data: bytes, end_stream: bool = False) -> None:
        """Send `data` in one DATA frame (the payload is copied once, into the send buffer)."""
        if data:
            self.stream.write(encode_frame_header(FrameType.DATA, len(data)))
            self.stream.write(data)
        if end_stream:
            self.end()

    def send_trailers(self, trailers: list[tuple[bytes, bytes]]) -> None:
        """Send a trailer section and end the stream."""
        self.send_headers(trailers, end_stream=True)

    async def drain(self) -> None:
        await self.stream.drain()

    def end(self) -> None:
        if not self._send_closed:
            self._send_closed = True
            self.stream.close()

    def reset(self, error_code: int = H3ErrorCode.H3_REQUEST_CANCELLED) -> None:
        """Abandon both directions with `error_code` (RESET_STREAM + STOP_SENDING)."""
        self._send_closed = True
        try:
            self.stream.cancel_write(error_code)
        except QuicError:
            pass
        if not self._body_done:
            try:
                self.stream.cancel_read(error_code)
            except QuicError:
                pass
            self._h3._cancel_decoding(self.stream_id)
        self._h3._forget(self)

    # -- receiving ---------------------------------------------------------

    async def receive_headers(self) -> list[tuple[bytes, bytes]]:
        """The next header section: the request/response headers (interim
        responses are returned too; the caller loops while :status is 1xx).

        :raises MessageError: when the stream ends or DATA comes first.
        """
        try:
            while True:
                frame = await self._next_frame()
                if frame is None:
                    raise MessageError("stream ended before HEADERS")
                frame_type, length = frame
                if frame_type == FrameType.HEADERS:
                    headers = await self._read_header_block(length)
                    self._headers_received = True
                    self.expected_length = declared_length(headers)
                    return headers
                if frame_type == FrameType.DATA:
                    raise H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, "DATA before HEADERS")
                await self._reader.skip_payload()
        except H3ConnectionError as exc:
            # E.g. the stream ended inside the HEADERS payload (RFC 9114 §7.1: H3_FRAME_ERROR):
            # a connection error closes the connection whoever holds the request.
            self._h3._connection_error(exc)
            raise

    async def read_data(self) -> bytes:
        """Next chunk of the body; b"" at its end (trailers, if any, are then in `trailers`)."""
        if self._body_done:
            return b""
        reader = self._reader
        try:
            while True:
                if self._pending_data_frame:
                    chunk = await reader.read_chunk()
                    if chunk:
                        return chunk
                    self._pending_data_frame = False
                frame = await self._next_frame()
                if frame is None:
                    self._body_done = True
                    self._check_length(True)
                    return b""
                frame_type, length = frame
                if frame_type == FrameType.DATA:
                    self._pending_data_frame = length > 0
                    self._data_received += length
                    self._check_length(False)
                elif frame_type == FrameType.HEADERS:
                    self._check_length(True)
                    self.trailers = await self._read_header_block(length)
                    # RFC 9114 §4.1: nothing but unknown frames may follow trailers.
                    while (frame := await self._next_frame()) is not None:
                        if frame[0] in (FrameType.DATA, FrameType.HEADERS):
                            raise H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, "frame after trailers")
                        await reader.skip_payload()
                    self._body_done = True
                    return b""
                else:
                    await reader.skip_payload()
        except H3ConnectionError as exc:
            self._h3._connection_error(exc)
            raise

    def _check_length(self, at_end: bool) -> None:
        """RFC 9114 §4.1.2: a message whose DATA does not add up to its
        Content-Length is malformed (checked as DATA frames are announced)."""
        expected = self.expected_length
        if expected is None:
            return
        if self._data_received > expected or (at_end and self._data_received != expected):
            self._body_done = True
            raise MessageError(f"{self._data_received} bytes of DATA{' so far' if not at_end else ''} "
                               f"against content-length {expected}")

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        parts, total = [], 0
        while chunk := await self.read_data():
            total += len(chunk)
            if total > limit:
                raise ValueError(f"body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def _next_frame(self):
        """Next frame that may appear on a request stream; errors per RFC 9114 §7.2."""
        try:
            frame = await self._reader.next_frame()
        except H3ConnectionError as exc:
            self._h3._connection_error(exc)
            raise
        if frame is None:
            return None
        frame_type = frame[0]
        if frame_type in (FrameType.DATA, FrameType.HEADERS):
            if frame_type == FrameType.DATA and not self._headers_received:
                exc = H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, "DATA before HEADERS")
                self._h3._connection_error(exc)
                raise exc
            return frame
        if frame_type in _CONTROL_ONLY_FRAMES or frame_type in RESERVED_HTTP2_FRAME_TYPES:
            exc = H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, f"frame 0x{frame_type:x} on a request stream")
            self._h3._connection_error(exc)
            raise exc
        if frame_type == FrameType.PUSH_PROMISE:
            # We never send MAX_PUSH_ID, so any push ID is beyond the limit (RFC 9114 §7.2.5);
            # a client never sends PUSH_PROMISE (§7.2.5).
            code = H3ErrorCode.H3_ID_ERROR if self._h3.is_client else H3ErrorCode.H3_FRAME_UNEXPECTED
            exc = H3ConnectionError(code, "PUSH_PROMISE without MAX_PUSH_ID")
            self._h3._connection_error(exc)
            raise exc
        return frame   # unknown or reserved (grease): the caller skips it

    async def _read_header_block(self, length: int) -> list[tuple[bytes, bytes]]:
        limit = self._h3.settings.max_field_section_size
        try:
            block = await self._reader.read_payload(limit + 1024)
        except FrameTooLarge:
            raise H3StreamError(H3ErrorCode.H3_EXCESSIVE_LOAD, f"field section of {length} bytes") from None
        headers = await self._h3._decode_headers(self.stream_id, block)
        if field_section_size(headers) > limit:
            raise H3StreamError(H3ErrorCode.H3_EXCESSIVE_LOAD, "field section exceeds our limit")
        return headers

    # -- HTTP Datagrams (RFC 9297) -----------------------------------------

    def send_datagram(self, data: bytes) -> None:
        """Send an HTTP Datagram tied to this request (needs SETTINGS_H3_DATAGRAM on both sides)."""
        self._h3.send_datagram(self.stream_id, data)

    async def receive_datagram(self) -> bytes:
        while not self._datagrams:
            if self._h3.closed:
                raise ConnectionClosedError("connection closed")
            self._datagram_waiter.clear()
            await self._datagram_waiter.wait()
        return self._datagrams.popleft()


class H3Connection:
    """HTTP/3 on a quicfast `Connection` whose ALPN is "h3".

    Call `await start()` first. A client then opens requests with
    `await open_request()`; a server takes them with `await accept_request()`.
    """

    def __init__(self, quic, *, is_client: bool, settings: Optional[H3Settings] = None) -> None:
        self.quic = quic
        self.is_client = is_client
        self.settings = settings or H3Settings()
        self._encoder = pylsqpack.Encoder()
        self._decoder = pylsqpack.Decoder(self.settings.qpack_max_table_capacity,
                                          self.settings.qpack_blocked_streams)
        self._blocked: dict[int, asyncio.Future] = {}
        self._control = None
        self._encoder_stream = None
        self._decoder_stream = None
        self._peer_critical: set[int] = set()
        #: the peer's SETTINGS, once received
        self.peer_settings: Optional[dict[int, int]] = None
        self._settings_received = asyncio.get_running_loop().create_future()
        self._peer_max_field_section_size = (1 << 62) - 1
        #: GOAWAY ID received from the peer (stream ID from a server, push ID from a client)
        self.goaway_received: Optional[int] = None
        self.goaway_sent: Optional[int] = None
        self._goaway_event = asyncio.Event()
        self._max_push_id_received: Optional[int] = None
        self._requests: dict[int, RequestStream] = {}
        self._highest_request_id = -4
        self._tasks: set[asyncio.Task] = set()
        self._closed_error: Optional[BaseException] = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Open our control and QPACK streams, send SETTINGS, start reading the peer's streams."""
        if self._started:
            return
        self._started = True
        quic = self.quic
        self._control = await quic.open_uni_stream_sync()
        settings = self.settings.as_dict()
        self._control.write(encode_varint(StreamType.CONTROL)
                            + encode_frame(FrameType.SETTINGS, encode_settings(settings, self.settings.grease)))
        if self.settings.grease:
            # RFC 9114 §7.2.8: a reserved frame type after SETTINGS.
            self._control.write(encode_frame(grease_value(1 << 30), os.urandom(4)))
        self._encoder_stream = await quic.open_uni_stream_sync()
        self._encoder_stream.write(encode_varint(StreamType.QPACK_ENCODER))
        self._decoder_stream = await quic.open_uni_stream_sync()
        self._decoder_stream.write(encode_varint(StreamType.QPACK_DECODER))
        if self.settings.grease and quic.can_open_stream(True):
            # RFC 9114 §6.2.3: a reserved stream type the peer must ignore. Only
            # when the peer's stream limit leaves room beyond the three critical streams.
            grease = quic.open_uni_stream()
            grease.write(encode_varint(grease_value(1 << 30)) + b"grease")
            grease.close()
        self._spawn(self._accept_uni_streams())
        if self.is_client:
            self._spawn(self._refuse_server_bidi_streams())
        if self.settings.h3_datagram:
            self._spawn(self._receive_datagrams())
        self._spawn(self._watch_closed())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch_closed(self) -> None:
        self._closed_error = await self.quic.wait_closed()
        for fut in self._blocked.values():
            if not fut.done():
                fut.set_exception(self._closed_error)
                fut.exception()
        if not self._settings_received.done():
            self._settings_received.set_exception(self._closed_error)
            self._settings_received.exception()
        self._goaway_event.set()
        for req in list(self._requests.values()):
            req._datagram_waiter.set()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    @property
    def closed(self) -> bool:
        return self._closed_error is not None or self.quic.close_error is not None

    async def wait_settings(self) -> dict[int, int]:
        """Wait for the peer's SETTINGS."""
        return await asyncio.shield(self._settings_received)

    def close(self, error_code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """Close the QUIC connection with an HTTP/3 code (H3_NO_ERROR by default)."""
        self.quic.close_with_error(int(error_code), reason)

    async def wait_closed(self):
        return await self.quic.wait_closed()

    def _connection_error(self, exc: H3ConnectionError) -> None:
        log.debug("HTTP/3 connection error: %s", exc)
        self.close(exc.error_code, exc.reason)

    # -- requests --------------------------------------------------------------

    async def open_request(self) -> RequestStream:
        """Client: a new request stream (waits for stream credit).

        :raises GoAwayError: when the server sent GOAWAY.
        """
        if self.goaway_received is not None:
            raise GoAwayError()
        stream = await self.quic.open_stream_sync()
        if self.goaway_received is not None and stream.stream_id >= self.goaway_received:
            stream.cancel_write(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise GoAwayError()
        req = RequestStream(self, stream)
        self._requests[stream.stream_id] = req
        return req

    async def accept_request(self) -> RequestStream:
        """Server: the next request stream from the client.

        :raises ConnectionClosedError: when the connection is over.
        """
        while True:
            stream = await self.quic.accept_stream()
            sid = stream.stream_id
            if self.goaway_sent is not None and sid >= self.goaway_sent:
                # RFC 9114 §5.2: requests at or above the GOAWAY ID are rejected, retryable.
                stream.cancel_read(H3ErrorCode.H3_REQUEST_REJECTED)
                stream.cancel_write(H3ErrorCode.H3_REQUEST_REJECTED)
                continue
            self._highest_request_id = max(self._highest_request_id, sid)
            req = RequestStream(self, stream)
            self._requests[sid] = req
            return req

    def _forget(self, req: RequestStream) -> None:
        self._requests.pop(req.stream_id, None)

    @property
    def active_requests(self) -> int:
        return len(self._requests)

    # -- GOAWAY (RFC 9114 §5.2) --------------------------------------------------

    def send_goaway(self, identifier: Optional[int] = None) -> None:
        """Begin a graceful shutdown. A server announces the first request
        stream ID it will not process (default: one past the highest accepted);
        a client sends a push ID (0: it allows no push)."""
        if identifier is None:
            identifier = self._highest_request_id + 4 if not self.is_client else 0
        if self.goaway_sent is not None and identifier > self.goaway_sent:
            identifier = self.goaway_sent   # §5.2: the ID must not increase
        self.goaway_sent = identifier
        if self._control is not None and not self.closed:
            try:
                self._control.write(encode_frame(FrameType.GOAWAY, encode_varint(identifier)))
            except QuicError:
                pass   # the connection is already closing

    async def wait_goaway(self) -> Optional[int]:
        await self._goaway_event.wait()
        return self.goaway_received

    # -- QPACK (RFC 9204) ------------------------------------------------------

    def _encode_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        if field_section_size(headers) > self._peer_max_field_section_size:
            raise H3StreamError(H3ErrorCode.H3_EXCESSIVE_LOAD,
                                "field section exceeds the peer's SETTINGS_MAX_FIELD_SECTION_SIZE")
        encoder_data, block = self._encoder.encode(stream_id, headers)
        if encoder_data:
            self._encoder_stream.write(encoder_data)
        return block

    async def _decode_headers(self, stream_id: int, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            try:
                control, headers = self._decoder.feed_header(stream_id, block)
            except pylsqpack.StreamBlocked:
                if len(self._blocked) >= self.settings.qpack_blocked_streams:
                    raise H3ConnectionError(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, "too many blocked streams")
                fut = asyncio.get_running_loop().create_future()
                self._blocked[stream_id] = fut
                try:
                    await fut
                finally:
                    self._blocked.pop(stream_id, None)
                control, headers = self._decoder.resume_header(stream_id)
        except pylsqpack.DecompressionFailed as exc:
            error = H3ConnectionError(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, str(exc))
            self._connection_error(error)
            raise error from None
        except H3ConnectionError as exc:
            self._connection_error(exc)
            raise
        if control and self._decoder_stream is not None:
            self._decoder_stream.write(control)
        return headers

    def _cancel_decoding(self, stream_id: int) -> None:
        fut = self._blocked.pop(stream_id, None)
        if fut is not None and not fut.done():
            fut.cancel()
        try:
            data = self._decoder.cancel_stream(stream_id)
        except Exception:
            data = b""
        if data and self._decoder_stream is not None and not self.closed:
            try:
                self._decoder_stream.write(data)
            except QuicError:
                pass

    # -- the peer's unidirectional streams (RFC 9114 §6.2) ---------------------

    async def _accept_uni_streams(self) -> None:
        try:
            while True:
                stream = await self.quic.accept_uni_stream()
                self._spawn(self._handle_uni_stream(stream))
        except ConnectionClosedError:
            pass

    async def _handle_uni_stream(self, stream) -> None:
        reader = FrameReader(stream, read_size=1 << 16)
        stream_type = None
        try:
            try:
                stream_type = await reader.read_varint()
            except FrameError:
                return
            if stream_type is None:
                return
            if stream_type in (StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER):
                if stream_type in self._peer_critical:
                    raise H3ConnectionError(H3ErrorCode.H3_STREAM_CREATION_ERROR,
                                            f"second stream of type 0x{stream_type:x}")
                self._peer_critical.add(stream_type)
                if stream_type == StreamType.CONTROL:
                    await self._read_control_stream(reader)
                else:
                    await self._read_qpack_stream(reader, stream_type)
                raise H3ConnectionError(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
                                        f"critical stream of type 0x{stream_type:x} closed")
            if stream_type == StreamType.PUSH:
                # A client that sent no MAX_PUSH_ID sees any push as an ID error
                # (RFC 9114 §4.6); a server must never receive one (§6.2.2).
                if self.is_client:
                    raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, "push stream without MAX_PUSH_ID")
                raise H3ConnectionError(H3ErrorCode.H3_STREAM_CREATION_ERROR, "client opened a push stream")
            # Unknown or reserved type (RFC 9114 §6.2, §9): stop reading it.
            stream.cancel_read(H3ErrorCode.H3_STREAM_CREATION_ERROR)
        except H3ConnectionError as exc:
            self._connection_error(exc)
        except StreamError:
            if stream_type_is_critical(stream_type):
                self._connection_error(H3ConnectionError(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
                                                         "critical stream reset"))
        except ConnectionClosedError:
            pass

    async def _read_qpack_stream(self, reader: FrameReader, stream_type: int) -> None:
        stream = reader._stream
        # Whatever the look-ahead already holds belongs to the instruction stream.
        pending = reader._buf[reader._pos:]
        reader._buf, reader._pos = b"", 0
        while True:
            data = pending or await stream.read(1 << 16)
            pending = b""
            if not data:
                return
            if stream_type == StreamType.QPACK_ENCODER:
                try:
                    unblocked = self._decoder.feed_encoder(data)
                except pylsqpack.EncoderStreamError as exc:
                    raise H3ConnectionError(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR, str(exc)) from None
                for sid in unblocked:
                    fut = self._blocked.get(sid)
                    if fut is not None and not fut.done():
                        fut.set_result(None)
            else:
                try:
                    self._encoder.feed_decoder(data)
                except pylsqpack.DecoderStreamError as exc:
                    raise H3ConnectionError(H3ErrorCode.QPACK_DECODER_STREAM_ERROR, str(exc)) from None

    async def _read_control_stream(self, reader: FrameReader) -> None:
        first = True
        while True:
            frame = await reader.next_frame()
            if frame is None:
                return
            frame_type, length = frame
            if first and frame_type != FrameType.SETTINGS:
                raise H3ConnectionError(H3ErrorCode.H3_MISSING_SETTINGS, "control stream must start with SETTINGS")
            if frame_type in (FrameType.SETTINGS, FrameType.GOAWAY, FrameType.MAX_PUSH_ID, FrameType.CANCEL_PUSH):
                try:
                    payload = await reader.read_payload(MAX_CONTROL_FRAME_SIZE)
                except FrameTooLarge:
                    raise H3ConnectionError(H3ErrorCode.H3_EXCESSIVE_LOAD, "control frame too large") from None
            if frame_type == FrameType.SETTINGS:
                if not first:
                    raise H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, "second SETTINGS frame")
                self._apply_peer_settings(decode_settings(payload))
            elif frame_type == FrameType.GOAWAY:
                self._on_goaway(decode_single_varint(payload, "GOAWAY"))
            elif frame_type == FrameType.MAX_PUSH_ID:
                if self.is_client:
                    raise H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, "MAX_PUSH_ID sent by a server")
                push_id = decode_single_varint(payload, "MAX_PUSH_ID")
                if self._max_push_id_received is not None and push_id < self._max_push_id_received:
                    raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, "MAX_PUSH_ID decreased")
                self._max_push_id_received = push_id   # we never push: nothing else to do
            elif frame_type == FrameType.CANCEL_PUSH:
                push_id = decode_single_varint(payload, "CANCEL_PUSH")
                if self.is_client:
                    # We allowed no push ID, so every one is beyond the limit (RFC 9114 §7.2.3).
                    raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, f"CANCEL_PUSH {push_id} without MAX_PUSH_ID")
                if self._max_push_id_received is None or push_id > self._max_push_id_received:
                    raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, f"CANCEL_PUSH {push_id} beyond MAX_PUSH_ID")
                # We never promised a push, so there is nothing to cancel.
            elif frame_type in (FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE) \
                    or frame_type in RESERVED_HTTP2_FRAME_TYPES:
                raise H3ConnectionError(H3ErrorCode.H3_FRAME_UNEXPECTED, f"frame 0x{frame_type:x} on the control stream")
            else:
                await reader.skip_payload()   # unknown or reserved: ignored (§9)
            first = False

    def _apply_peer_settings(self, settings: dict[int, int]) -> None:
        if settings.get(Setting.H3_DATAGRAM) == 1 and not self.quic.connection_state().supports_datagrams:
            # RFC 9297 §2.1.1: H3_DATAGRAM needs the QUIC datagram extension.
            raise H3ConnectionError(H3ErrorCode.H3_SETTINGS_ERROR, "H3_DATAGRAM without QUIC datagrams")
        self.peer_settings = settings
        self._peer_max_field_section_size = settings.get(Setting.MAX_FIELD_SECTION_SIZE, (1 << 62) - 1)
        data = self._encoder.apply_settings(settings.get(Setting.QPACK_MAX_TABLE_CAPACITY, 0),
                                            settings.get(Setting.QPACK_BLOCKED_STREAMS, 0))
        if data:
            self._encoder_stream.write(data)
        if not self._settings_received.done():
            self._settings_received.set_result(settings)

    def _on_goaway(self, identifier: int) -> None:
        if self.is_client and identifier % 4 != 0:
            raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, "GOAWAY with a non-request stream ID")
        if self.goaway_received is not None and identifier > self.goaway_received:
            raise H3ConnectionError(H3ErrorCode.H3_ID_ERROR, "GOAWAY ID increased")
        self.goaway_received = identifier
        self._goaway_event.set()
        if self.is_client:
            # Requests the server will not process are safe to retry elsewhere.
            for sid, req in list(self._requests.items()):
                if sid >= identifier:
                    req.stream._fail_read(GoAwayError())
                    req.stream._fail_write(GoAwayError())

    async def _refuse_server_bidi_streams(self) -> None:
        try:
            await self.quic.accept_stream()
        except ConnectionClosedError:
            return
        # RFC 9114 §6.1: server-initiated bidirectional streams are an error.
        self._connection_error(H3ConnectionError(H3ErrorCode.H3_STREAM_CREATION_ERROR,
                                                 "server opened a bidirectional stream"))

    # -- HTTP Datagrams (RFC 9297 §2.1) ------------------------------------------

    @property
    def datagrams_enabled(self) -> bool:
        return bool(self.settings.h3_datagram and self.peer_settings
                    and self.peer_settings.get(Setting.H3_DATAGRAM) == 1)

    def send_datagram(self, stream_id: int, data: bytes) -> None:
        if not self.datagrams_enabled:
            raise H3StreamError(H3ErrorCode.H3_DATAGRAM_ERROR, "HTTP Datagrams not negotiated")
        self.quic.send_datagram(encode_varint(stream_id // 4) + data)

    async def _receive_datagrams(self) -> None:
        try:
            while True:
                data = await self.quic.receive_datagram()
                try:
                    quarter, pos = decode_varint(data, 0)
                except IndexError:
                    self._connection_error(H3ConnectionError(H3ErrorCode.H3_DATAGRAM_ERROR, "truncated datagram"))
                    return
                # Datagrams for streams we no longer (or do not yet) know are dropped (RFC 9297 §2.1).
                req = self._requests.get(quarter * 4)
                if req is not None:
                    req._datagrams.append(data[pos:])
                    req._datagram_waiter.set()
        except ConnectionClosedError:
            pass


def stream_type_is_critical(stream_type) -> bool:
    return stream_type in (StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER)
