"""The `h3_frames` fuzz target: HTTP/3 frames as the peer would send them,
into quicfast.h3's real stream handlers, with no QUIC underneath.

Covers the HTTP/3 frame layer of RFC 9114 §7 (frame headers, SETTINGS
§7.2.4, GOAWAY §7.2.6, MAX_PUSH_ID §7.2.7, CANCEL_PUSH §7.2.3, reserved
types §7.2.8), the unidirectional stream types of §6.2 (control, push, QPACK
encoder/decoder of RFC 9204 §4.2, unknown ones), request-stream framing and
message checks of §4.1 (HEADERS, DATA, trailers; `check_request` and
`check_response`), and QPACK header blocks through pylsqpack.

Input layout: byte 0 holds flags (bit 0: we are the client; bits 1-2: the
size of the reads the fake streams hand out, 1, 3, 17 or 64 KiB bytes; bit 3:
the peer's QUIC transport offers datagrams; bit 4, as a server: the request
goes through the server's ASGI request cycle, `quicfast.h3.server`, to an
application that reads the whole body and answers, instead of being read
directly). The rest is a list of sections,
each a 2-byte big-endian length and that many bytes (a short last section
takes what is left): every section but the last is one unidirectional
stream from the peer (starting with its stream type), the last is a request
stream (a request to a server, a response to a client). Besides, the whole
tail goes straight to `decode_settings` and `decode_single_varint`.

Documented outcome: every handler returns, or raises an `H3Error`
(connection or stream error), or closes the connection through
`H3Connection._connection_error` with an `H3ErrorCode`; a request waiting on
QPACK for encoder instructions that never came is cancelled at the end.
Anything else (another exception, a close with a code that is not an HTTP/3
code, a task still waiting for something else) is a finding.
"""

from __future__ import annotations

import asyncio
import types

from quicfast.errors import H3ErrorCode
from quicfast.h3.connection import H3Connection, H3Settings, RequestStream
from quicfast.h3.exceptions import H3ConnectionError, H3Error
from quicfast.h3.server import _RequestCycle
from quicfast.h3.frames import decode_settings, decode_single_varint
from quicfast.h3.messages import check_request, check_response

READ_SIZES = (1, 3, 17, 1 << 16)
MAX_STREAMS = 4
#: Loop iterations after which a task not waiting on QPACK counts as a hang.
MAX_TURNS = 10_000
H3_CODES = frozenset(int(c) for c in H3ErrorCode)


class FakeReceiveStream:
    """A peer stream whose bytes are all there: `read` hands them out in
    pieces of `read_size`, yielding to the loop between reads."""

    def __init__(self, stream_id: int, data: bytes, read_size: int) -> None:
        self.stream_id = stream_id
        self._data = data
        self._pos = 0
        self._read_size = read_size
        self._error = None
        self.cancelled_with = None

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        if self._error is not None:
            raise self._error
        size = self._read_size if n < 0 else min(n, self._read_size)
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk

    def cancel_read(self, code: int) -> None:
        self.cancelled_with = code

    def cancel_write(self, code: int) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _fail_read(self, exc: BaseException) -> None:
        self._error = exc

    def _fail_write(self, exc: BaseException) -> None:
        pass


class Sink:
    """Our control / QPACK streams: what we write is dropped."""

    def write(self, data: bytes) -> None:
        pass


class FakeQuic:
    def __init__(self, datagrams: bool) -> None:
        self.close_error = None
        self.closed_with = []
        self._state = types.SimpleNamespace(supports_datagrams=datagrams)
        self.local_addr = ("127.0.0.1", 443)
        self.remote_addr = ("127.0.0.1", 50000)

    def connection_state(self):
        return self._state

    def close_with_error(self, code: int, reason: str = "") -> None:
        self.closed_with.append(int(code))
        if self.close_error is None:
            self.close_error = H3Error(code, reason)


def sections(data: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(data) and len(out) < MAX_STREAMS:
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    if pos < len(data):
        out.append(data[pos:])
    return out


def encode_sections(parts: list[bytes]) -> bytes:
    """The inverse of `sections` (for seeds and tests)."""
    return b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def _decode_payload(data: bytes) -> None:
    for decode in (decode_settings, lambda p: decode_single_varint(p, "GOAWAY")):
        try:
            decode(data)
        except H3Error:
            pass


async def _request(h3: H3Connection, stream: FakeReceiveStream, is_client: bool) -> None:
    req = RequestStream(h3, stream)
    if is_client:
        h3._requests[stream.stream_id] = req
    try:
        headers = await req.receive_headers()
        if is_client:
            while check_response(headers)[0] < 200:      # interim responses (RFC 9114 §4.1)
                headers = await req.receive_headers()
        else:
            check_request(headers, h3.settings.enable_connect_protocol)
        while await req.read_data():
            pass
    except H3Error:
        pass


async def _echo_app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
    await send({"type": "http.response.body", "body": body[:64]})
    await send({"type": "http.response.trailers", "headers": [(b"x-length", str(len(body)).encode())]})


_ASGI_SERVER = types.SimpleNamespace(app=_echo_app, root_path="", server_header=True)


async def _asgi_request(h3: H3Connection, stream: FakeReceiveStream) -> None:
    """What `Server._handle_request` runs; only connection errors may escape it
    (the server swallows them after closing the connection)."""
    try:
        await _RequestCycle(_ASGI_SERVER, h3, RequestStream(h3, stream)).run()
    except H3ConnectionError:
        pass


async def run_input(data: bytes) -> None:
    flags, tail = data[0], data[1:]
    is_client = bool(flags & 1)
    read_size = READ_SIZES[(flags >> 1) & 3]
    _decode_payload(tail)
    quic = FakeQuic(bool(flags & 8))
    h3 = H3Connection(quic, is_client=is_client, settings=H3Settings(grease=False, enable_connect_protocol=True))
    h3._control = h3._encoder_stream = h3._decoder_stream = Sink()
    parts = sections(tail)
    request_data = parts.pop() if parts else b""
    # Peer-initiated unidirectional stream IDs: 2, 6, ... from a client; 3, 7, ... from a server.
    uni_base = 3 if is_client else 2
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(h3._handle_uni_stream(FakeReceiveStream(uni_base + 4 * i, part, read_size)))
             for i, part in enumerate(parts)]
    request_stream = FakeReceiveStream(0, request_data, read_size)
    if flags & 16 and not is_client:
        tasks.append(loop.create_task(_asgi_request(h3, request_stream)))
    else:
        tasks.append(loop.create_task(_request(h3, request_stream, is_client)))
    for _ in range(MAX_TURNS):
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0)
    pending = [t for t in tasks if not t.done()]
    if pending and not h3._blocked:
        for t in pending:
            t.cancel()
        raise AssertionError(f"{len(pending)} stream handler(s) still waiting after {MAX_TURNS} turns")
    for t in pending:            # waiting on QPACK encoder instructions that never came
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
    bad = [c for c in quic.closed_with if c not in H3_CODES]
    if bad:
        raise AssertionError(f"connection closed with non-HTTP/3 code(s) {bad}")


_loop = None


def h3_frames(data: bytes) -> None:
    global _loop
    if not data or len(data) > 1 << 20:
        return
    if _loop is None:
        _loop = asyncio.new_event_loop()
    _loop.run_until_complete(run_input(bytes(data)))
