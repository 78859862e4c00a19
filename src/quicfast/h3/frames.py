"""HTTP/3 framing: variable-length integers, frame and stream types,
SETTINGS, GOAWAY and the incremental frame reader used on every HTTP/3 stream.

Implements RFC 9114 §7 (frame layout §7.1, frame definitions §7.2, reserved
frame types §7.2.8, SETTINGS parameters §7.2.4.1 and the reserved HTTP/2
settings §11.2.2), the stream types of §6.2 and their greasing (§6.2.3),
the QPACK settings of RFC 9204 §5, SETTINGS_ENABLE_CONNECT_PROTOCOL of
RFC 9220 §3 and SETTINGS_H3_DATAGRAM of RFC 9297 §2.1.1.

Strategy: `FrameReader` pulls bytes from a QUIC receive stream on demand.
Frame headers (two varints) are parsed from a small look-ahead buffer; the
payload of a DATA frame is never buffered but handed out chunk by chunk as
the stream delivers it (no copy when a chunk lies wholly inside the frame);
the payload of any other frame is buffered only up to a caller-given bound,
beyond which `FrameTooLarge` is raised; unknown frame types are skipped
without buffering. Nothing here knows about asyncio beyond awaiting
`stream.read()`.
"""

from __future__ import annotations

import os
import random
from typing import Optional

from ..errors import H3ErrorCode
from .exceptions import FrameError, H3ConnectionError

__all__ = [
    "FrameType", "StreamType", "Setting", "encode_varint", "decode_varint", "encode_frame",
    "encode_frame_header", "encode_settings", "decode_settings", "grease_value", "is_grease",
    "FrameReader", "FrameTooLarge", "RESERVED_HTTP2_FRAME_TYPES", "RESERVED_HTTP2_SETTINGS",
]


class FrameType:
    """Frame types, RFC 9114 §7.2 and §11.2.1."""

    DATA = 0x00
    HEADERS = 0x01
    CANCEL_PUSH = 0x03
    SETTINGS = 0x04
    PUSH_PROMISE = 0x05
    GOAWAY = 0x07
    MAX_PUSH_ID = 0x0D


class StreamType:
    """Unidirectional stream types, RFC 9114 §6.2 and RFC 9204 §4.2."""

    CONTROL = 0x00
    PUSH = 0x01
    QPACK_ENCODER = 0x02
    QPACK_DECODER = 0x03


class Setting:
    """SETTINGS identifiers."""

    QPACK_MAX_TABLE_CAPACITY = 0x01     # RFC 9204 §5
    MAX_FIELD_SECTION_SIZE = 0x06       # RFC 9114 §7.2.4.1
    QPACK_BLOCKED_STREAMS = 0x07        # RFC 9204 §5
    ENABLE_CONNECT_PROTOCOL = 0x08      # RFC 9220 §3
    H3_DATAGRAM = 0x33                  # RFC 9297 §2.1.1


#: HTTP/2 frame types that must not appear in HTTP/3 (RFC 9114 §7.2.8):
#: PRIORITY, PING, WINDOW_UPDATE, CONTINUATION.
RESERVED_HTTP2_FRAME_TYPES = frozenset({0x02, 0x06, 0x08, 0x09})
#: HTTP/2 settings that must not appear in HTTP/3 (RFC 9114 §7.2.4.1, §11.2.2).
RESERVED_HTTP2_SETTINGS = frozenset({0x00, 0x02, 0x03, 0x04, 0x05})

VARINT_MAX = (1 << 62) - 1


def encode_varint(value: int) -> bytes:
    """RFC 9000 §16 variable-length integer."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    if value <= VARINT_MAX:
        return (value | 0xC000000000000000).to_bytes(8, "big")
    raise ValueError(f"{value} does not fit a QUIC varint")


def decode_varint(data, pos: int = 0) -> tuple[int, int]:
    """Decode a varint at `pos`; returns (value, next position).

    :raises IndexError: when `data` ends inside the integer.
    """
    first = data[pos]
    length = 1 << (first >> 6)
    if pos + length > len(data):
        raise IndexError("truncated varint")
    value = first & 0x3F
    for i in range(1, length):
        value = (value << 8) | data[pos + i]
    return value, pos + length


def encode_frame_header(frame_type: int, length: int) -> bytes:
    return encode_varint(frame_type) + encode_varint(length)


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    return encode_varint(frame_type) + encode_varint(len(payload)) + payload


def grease_value(limit: int = (1 << 62) - 1) -> int:
    """A random reserved identifier of the form 0x1f * N + 0x21 (RFC 9114 §7.2.8, §6.2.3)."""
    n = random.randrange(0, (limit - 0x21) // 0x1F + 1)
    return 0x1F * n + 0x21


def is_grease(value: int) -> bool:
    return value >= 0x21 and (value - 0x21) % 0x1F == 0


def encode_settings(settings: dict[int, int], grease: bool = True) -> bytes:
    """The payload of a SETTINGS frame; with `grease`, one reserved setting is added."""
    out = bytearray()
    for ident, value in settings.items():
        out += encode_varint(ident) + encode_varint(value)
    if grease:
        out += encode_varint(grease_value(1 << 30)) + encode_varint(int.from_bytes(os.urandom(2), "big"))
    return bytes(out)


def decode_settings(payload: bytes) -> dict[int, int]:
    """Parse a SETTINGS payload (RFC 9114 §7.2.4).

    Reserved HTTP/2 identifiers and duplicates are H3_SETTINGS_ERROR; a
    truncated payload is H3_FRAME_ERROR; unknown identifiers are kept (and
    ignored by the caller).
    """
    settings: dict[int, int] = {}
    pos = 0
    try:
        while pos < len(payload):
            ident, pos = decode_varint(payload, pos)
            value, pos = decode_varint(payload, pos)
            if ident in RESERVED_HTTP2_SETTINGS:
                raise H3ConnectionError(H3ErrorCode.H3_SETTINGS_ERROR, f"HTTP/2 setting 0x{ident:x} in SETTINGS")
            if ident in settings:
                raise H3ConnectionError(H3ErrorCode.H3_SETTINGS_ERROR, f"duplicate setting 0x{ident:x}")
            settings[ident] = value
    except IndexError:
        raise FrameError("truncated SETTINGS frame") from None
    for ident in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.H3_DATAGRAM):
        if settings.get(ident, 0) > 1:
            raise H3ConnectionError(H3ErrorCode.H3_SETTINGS_ERROR, f"setting 0x{ident:x} must be 0 or 1")
    return settings


def decode_single_varint(payload: bytes, what: str) -> int:
    """The payload of GOAWAY, MAX_PUSH_ID or CANCEL_PUSH: exactly one varint (else H3_FRAME_ERROR)."""
    try:
        value, pos = decode_varint(payload, 0)
    except IndexError:
        raise FrameError(f"truncated {what} frame") from None
    if pos != len(payload):
        raise FrameError(f"trailing bytes in {what} frame")
    return value


class FrameTooLarge(Exception):
    """A frame's declared length exceeds what the reader was told to buffer."""

    def __init__(self, frame_type: int, length: int) -> None:
        super().__init__(f"frame 0x{frame_type:x} of {length} bytes is too large")
        self.frame_type = frame_type
        self.length = length


class FrameReader:
    """Reads HTTP/3 frames from one receive stream (see the module's Strategy).

    Usage: `await next_frame()` returns (type, length) or None at a clean end
    of stream; then either `await read_payload(limit)` for the whole payload,
    `await read_chunk()` repeatedly until it returns b"" for streamed payloads,
    or `await skip_payload()`.
    """

    __slots__ = ("_stream", "_buf", "_pos", "_remaining", "_frame_type", "_eof", "read_size")

    def __init__(self, stream, read_size: int = 1 << 18) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        #: payload bytes of the current frame not yet consumed
        self._remaining = 0
        self._frame_type = -1
        self._eof = False
        self.read_size = read_size

    async def _fill(self) -> bool:
        """Read more from the stream into the look-ahead; False at end of stream."""
        if self._eof:
            return False
        chunk = await self._stream.read(self.read_size)
        if not chunk:
            self._eof = True
            return False
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos:] + chunk
        else:
            self._buf = chunk
        self._pos = 0
        return True

    async def read_varint(self) -> Optional[int]:
        """A varint from the stream; None at a clean end, FrameError if cut short."""
        while True:
            if self._pos < len(self._buf):
                try:
                    value, self._pos = decode_varint(self._buf, self._pos)
                    return value
                except IndexError:
                    pass
            at_start = self._pos >= len(self._buf)
            if not await self._fill():
                if at_start:
                    return None
                raise FrameError("stream ended inside a varint")

    async def next_frame(self) -> Optional[tuple[int, int]]:
        """The next frame's (type, length); None when the stream ends between frames."""
        if self._remaining:
            await self.skip_payload()
        frame_type = await self.read_varint()
        if frame_type is None:
            return None
        length = await self.read_varint()
        if length is None:
            raise FrameError("stream ended inside a frame header")
        self._frame_type = frame_type
        self._remaining = length
        return frame_type, length

    async def read_payload(self, limit: int) -> bytes:
        """The whole payload of the current frame, at most `limit` bytes."""
        if self._remaining > limit:
            raise FrameTooLarge(self._frame_type, self._remaining)
        parts = []
        while self._remaining:
            chunk = await self.read_chunk()
            parts.append(chunk)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    async def read_chunk(self) -> bytes:
        """Next part of the current frame's payload; b"" once it is consumed.

        :raises FrameError: when the stream ends inside the frame.
        """
        remaining = self._remaining
        if not remaining:
            return b""
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            if self._eof:
                raise FrameError("stream ended inside a frame")
            chunk = await self._stream.read(self.read_size)
            if not chunk:
                self._eof = True
                raise FrameError("stream ended inside a frame")
            if len(chunk) <= remaining:
                self._remaining = remaining - len(chunk)
                return chunk
            self._buf, self._pos = chunk, remaining
            self._remaining = 0
            return chunk[:remaining]
        available = len(buf) - pos
        if available <= remaining:
            data = buf[pos:] if pos else buf
            self._buf, self._pos = b"", 0
            self._remaining = remaining - available
            return data
        self._pos = pos + remaining
        self._remaining = 0
        return buf[pos:pos + remaining]

    async def skip_payload(self) -> None:
        while self._remaining:
            await self.read_chunk()

    async def at_eof(self) -> bool:
        """Whether the stream ends here (used after trailers)."""
        if self._pos < len(self._buf):
            return False
        return not await self._fill()
