"""Exceptions of quicfast.h3: connection errors and stream errors carrying
an HTTP/3 error code (RFC 9114 §8, RFC 9204 §6, RFC 9297 §5).

A connection error closes the whole QUIC connection with its code
(CONNECTION_CLOSE of type 0x1d); a stream error resets one request stream.
"""

from __future__ import annotations

from ..errors import H3ErrorCode, QuicError

__all__ = ["H3Error", "H3ConnectionError", "H3StreamError", "FrameError", "MessageError",
           "RequestCancelled", "GoAwayError"]


class H3Error(QuicError):
    """Base of HTTP/3 errors; `error_code` is an `H3ErrorCode`."""

    def __init__(self, error_code: int, reason: str = "") -> None:
        super().__init__(f"{_code_name(error_code)}: {reason}" if reason else _code_name(error_code))
        self.error_code = error_code
        self.reason = reason


class H3ConnectionError(H3Error):
    """An error that ends the connection (RFC 9114 §8)."""


class FrameError(H3ConnectionError):
    """A frame did not parse (H3_FRAME_ERROR, RFC 9114 §7.1)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(H3ErrorCode.H3_FRAME_ERROR, reason)


class H3StreamError(H3Error):
    """An error confined to one request stream (it is reset, the connection lives)."""


class MessageError(H3StreamError):
    """A malformed request or response (H3_MESSAGE_ERROR, RFC 9114 §4.1.2)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(H3ErrorCode.H3_MESSAGE_ERROR, reason)


class RequestCancelled(H3StreamError):
    """The peer reset or stopped the request stream."""


class GoAwayError(H3StreamError):
    """The server sent GOAWAY before this request was processed: it is safe to retry
    (H3_REQUEST_REJECTED semantics, RFC 9114 §5.2)."""

    def __init__(self, reason: str = "connection is going away") -> None:
        super().__init__(H3ErrorCode.H3_REQUEST_REJECTED, reason)


def _code_name(code: int) -> str:
    try:
        return H3ErrorCode(code).name
    except ValueError:
        return f"0x{code:x}"
