"""Public exceptions and error-code enums of quicfast.

Error codes: `TransportErrorCode` implements RFC 9000 §20.1 (plus
VERSION_NEGOTIATION_ERROR from RFC 9368 §10.2 and the CRYPTO_ERROR range that
carries a TLS alert, RFC 9001 §4.8); `H3ErrorCode` implements RFC 9114 §8.1,
QPACK's codes from RFC 9204 §6 and H3_DATAGRAM_ERROR from RFC 9297 §5.

Exceptions follow quic-go's error types, in Python's idiom. The tree is::

    QuicError
    ├── ConnectionClosedError          the connection is gone; `except` this to catch any reason
    │   ├── TransportError             closed with a transport error code (either side)
    │   ├── ApplicationError           closed with an application error code (either side)
    │   ├── IdleTimeoutError           also a builtin TimeoutError
    │   ├── HandshakeTimeoutError      also a builtin TimeoutError
    │   ├── StatelessResetError
    │   └── VersionNegotiationError
    ├── StreamError                    one stream was reset / stopped / used after close
    ├── StreamStateError
    ├── StreamLimitReachedError
    ├── DatagramNotSupportedError
    ├── DatagramTooLargeError
    ├── ZeroRTTRejectedError
    ├── ServerClosedError
    └── TransportClosedError

Every error that ends a connection says who erred: `remote=True` means the
peer closed the connection with that code (it arrived in a CONNECTION_CLOSE
frame); `remote=False` means this endpoint detected the problem and closed the
connection itself.

Engine convention: `quicfast.proto` raises `TransportError(code, frame_type,
reason, remote=False)` directly when it detects a protocol violation (for
example `decode_transport_parameters` raises TRANSPORT_PARAMETER_ERROR). The
connection catches it, sends CONNECTION_CLOSE with that code, frame type and
reason, and reports the same exception to the application. There is no
separate internal exception type.
"""

from __future__ import annotations

import copy
from enum import IntEnum
from typing import Literal, Sequence

__all__ = [
    "ApplicationError",
    "ConnectionClosedError",
    "DatagramNotSupportedError",
    "DatagramTooLargeError",
    "H3ErrorCode",
    "HandshakeTimeoutError",
    "IdleTimeoutError",
    "QuicError",
    "ServerClosed",
    "ServerClosedError",
    "StatelessResetError",
    "StreamError",
    "StreamLimitReachedError",
    "StreamStateError",
    "TransportClosedError",
    "TransportError",
    "TransportErrorCode",
    "VersionNegotiationError",
    "ZeroRTTRejected",
    "ZeroRTTRejectedError",
    "crypto_error",
    "transport_error_name",
]


class TransportErrorCode(IntEnum):
    """QUIC transport error codes (RFC 9000 §20.1), carried in CONNECTION_CLOSE type 0x1c."""

    NO_ERROR = 0x00
    INTERNAL_ERROR = 0x01
    CONNECTION_REFUSED = 0x02
    FLOW_CONTROL_ERROR = 0x03
    STREAM_LIMIT_ERROR = 0x04
    STREAM_STATE_ERROR = 0x05
    FINAL_SIZE_ERROR = 0x06
    FRAME_ENCODING_ERROR = 0x07
    TRANSPORT_PARAMETER_ERROR = 0x08
    CONNECTION_ID_LIMIT_ERROR = 0x09
    PROTOCOL_VIOLATION = 0x0A
    INVALID_TOKEN = 0x0B
    APPLICATION_ERROR = 0x0C
    CRYPTO_BUFFER_EXCEEDED = 0x0D
    KEY_UPDATE_ERROR = 0x0E
    AEAD_LIMIT_REACHED = 0x0F
    NO_VIABLE_PATH = 0x10
    # RFC 9368 §10.2: compatible version negotiation failed or was tampered with.
    VERSION_NEGOTIATION_ERROR = 0x11
    # RFC 9000 §20.1: 0x0100-0x01ff is CRYPTO_ERROR, the low byte is the TLS alert.
    CRYPTO_ERROR = 0x100


CRYPTO_ERROR_MAX = 0x1FF


def crypto_error(alert: int) -> int:
    """The transport error code for TLS alert `alert` (0..255): 0x100 + alert.

    RFC 9001 §4.8 maps each TLS alert into the CRYPTO_ERROR range.
    """
    if not 0 <= alert <= 0xFF:
        raise ValueError(f"TLS alert {alert} out of range 0..255")
    return TransportErrorCode.CRYPTO_ERROR + alert


def transport_error_name(error_code: int) -> str:
    """A readable name for a transport error code.

    The enum name when known, ``CRYPTO_ERROR(alert N)`` for the crypto range,
    and the hex value otherwise (codes are extensible, RFC 9000 §22.5).
    """
    if TransportErrorCode.CRYPTO_ERROR <= error_code <= CRYPTO_ERROR_MAX:
        return f"CRYPTO_ERROR(alert {error_code - TransportErrorCode.CRYPTO_ERROR})"
    try:
        return TransportErrorCode(error_code).name
    except ValueError:
        return f"0x{error_code:x}"


class H3ErrorCode(IntEnum):
    """HTTP/3 application error codes (RFC 9114 §8.1) and QPACK's (RFC 9204 §6)."""

    H3_DATAGRAM_ERROR = 0x33  # RFC 9297 §5: malformed HTTP Datagram or capsule
    H3_NO_ERROR = 0x100
    H3_GENERAL_PROTOCOL_ERROR = 0x101
    H3_INTERNAL_ERROR = 0x102
    H3_STREAM_CREATION_ERROR = 0x103
    H3_CLOSED_CRITICAL_STREAM = 0x104
    H3_FRAME_UNEXPECTED = 0x105
    H3_FRAME_ERROR = 0x106
    H3_EXCESSIVE_LOAD = 0x107
    H3_ID_ERROR = 0x108
    H3_SETTINGS_ERROR = 0x109
    H3_MISSING_SETTINGS = 0x10A
    H3_REQUEST_REJECTED = 0x10B
    H3_REQUEST_CANCELLED = 0x10C
    H3_REQUEST_INCOMPLETE = 0x10D
    H3_MESSAGE_ERROR = 0x10E
    H3_CONNECT_ERROR = 0x10F
    H3_VERSION_FALLBACK = 0x110
    QPACK_DECOMPRESSION_FAILED = 0x200
    QPACK_ENCODER_STREAM_ERROR = 0x201
    QPACK_DECODER_STREAM_ERROR = 0x202


def _side(remote: bool) -> str:
    return "remote" if remote else "local"


def _versions(versions: Sequence[int]) -> str:
    return "[" + ", ".join(f"0x{v:08x}" for v in versions) + "]"


class QuicError(Exception):
    """Base class of every exception quicfast raises on purpose."""


class ConnectionClosedError(QuicError):
    """Base class of the reasons a connection ended.

    Raised (as one of its subclasses) by every pending and later operation on
    a connection or its streams once the connection is closed, so
    ``except ConnectionClosedError`` catches any way a connection can end.
    """


class TransportError(ConnectionClosedError):
    """The connection was closed with a QUIC transport error code.

    Raised when the peer sends CONNECTION_CLOSE type 0x1c (``remote=True``),
    or when this endpoint detects a protocol error and closes the connection
    (``remote=False``); the engine raises it directly for the latter.

    :param error_code: a `TransportErrorCode` value, or any other code.
    :param frame_type: type of the frame that triggered the error, or None
        when unknown (sent as 0 on the wire, RFC 9000 §19.19).
    :param reason: human-readable reason phrase, may be empty.
    :param remote: True when the peer closed the connection with this error.
    """

    def __init__(
        self,
        error_code: int,
        frame_type: int | None = None,
        reason: str = "",
        remote: bool = False,
    ) -> None:
        super().__init__(error_code, frame_type, reason, remote)
        self.error_code = error_code
        self.frame_type = frame_type
        self.reason = reason
        self.remote = remote

    def __str__(self) -> str:
        text = f"transport error {transport_error_name(self.error_code)} ({_side(self.remote)})"
        if self.frame_type is not None:
            text += f", frame type 0x{self.frame_type:x}"
        if self.reason:
            text += f": {self.reason}"
        return text


class ApplicationError(ConnectionClosedError):
    """The connection was closed with an application error code.

    Raised when the peer sends CONNECTION_CLOSE type 0x1d (``remote=True``),
    or after the application itself closed the connection with
    ``Connection.close(error_code, reason)`` (``remote=False``). For HTTP/3
    the code is an `H3ErrorCode`.
    """

    def __init__(self, error_code: int, reason: str = "", remote: bool = False) -> None:
        super().__init__(error_code, reason, remote)
        self.error_code = error_code
        self.reason = reason
        self.remote = remote

    def __str__(self) -> str:
        text = f"application error 0x{self.error_code:x} ({_side(self.remote)})"
        if self.reason:
            text += f": {self.reason}"
        return text


class IdleTimeoutError(ConnectionClosedError, TimeoutError):
    """The connection was silently closed after the idle timeout (RFC 9000 §10.1).

    Raised when no packet was received for the negotiated idle timeout. It is
    also a builtin `TimeoutError`, as quic-go's reports ``Timeout() == true``.
    """

    def __init__(self) -> None:
        super().__init__()

    def __str__(self) -> str:
        return "timeout: no recent network activity"


class HandshakeTimeoutError(ConnectionClosedError, TimeoutError):
    """The handshake did not complete within ``Config.handshake_idle_timeout``.

    Raised by dial and accept calls and by operations on a connection whose
    handshake timed out. It is also a builtin `TimeoutError`.
    """

    def __init__(self) -> None:
        super().__init__()

    def __str__(self) -> str:
        return "timeout: handshake did not complete in time"


class StatelessResetError(ConnectionClosedError):
    """The peer reset the connection with a stateless reset (RFC 9000 §10.3).

    Raised when a datagram ending in a stateless reset token the peer issued
    for this connection arrives. `token` is that 16-byte token.
    """

    def __init__(self, token: bytes) -> None:
        super().__init__(token)
        self.token = token

    def __str__(self) -> str:
        return f"received a stateless reset with token {self.token.hex()}"


class VersionNegotiationError(ConnectionClosedError):
    """No QUIC version is supported by both sides (RFC 9000 §6, RFC 9368).

    Raised by a dial call when the server's Version Negotiation packet lists
    none of our versions. `ours` are the versions we offered, `theirs` those
    the server listed.
    """

    def __init__(self, ours: Sequence[int], theirs: Sequence[int]) -> None:
        super().__init__(tuple(ours), tuple(theirs))
        self.ours = tuple(ours)
        self.theirs = tuple(theirs)

    def __str__(self) -> str:
        return (
            f"no compatible QUIC version found"
            f" (we support {_versions(self.ours)}, server offered {_versions(self.theirs)})"
        )


StreamErrorKind = Literal["reset", "stop_sending", "closed"]
_STREAM_ERROR_VERBS = {"reset": "reset", "stop_sending": "stopped (STOP_SENDING)", "closed": "closed"}


class StreamError(QuicError):
    """An operation on one stream failed; the connection itself is still up.

    Raised by reads after the peer reset the stream (``kind="reset"``,
    RESET_STREAM), by writes after the peer asked us to stop
    (``kind="stop_sending"``, STOP_SENDING), and by operations on a side of
    the stream this endpoint already cancelled (``kind="closed"``,
    ``remote=False``).

    :param stream_id: the stream's ID.
    :param error_code: the application error code given with the reset/stop.
    :param remote: True when the peer reset or stopped the stream.
    :param kind: ``"reset"``, ``"stop_sending"`` or ``"closed"``.
    """

    def __init__(self, stream_id: int, error_code: int, remote: bool, kind: StreamErrorKind = "reset") -> None:
        super().__init__(stream_id, error_code, remote, kind)
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote
        self.kind = kind

    def __str__(self) -> str:
        what = _STREAM_ERROR_VERBS.get(self.kind, self.kind)
        by = "by peer" if self.remote else "locally"
        return f"stream {self.stream_id} {what} {by} with error code 0x{self.error_code:x}"


class StreamStateError(QuicError):
    """The operation does not fit the stream's kind or state.

    Raised when reading from a stream with no receiving half (a locally
    initiated unidirectional stream), writing to one with no sending half
    (a peer's unidirectional stream), or naming a stream that does not exist.
    The argument is a message saying which.
    """


class StreamLimitReachedError(QuicError):
    """Opening a stream would exceed the peer's stream limit (RFC 9000 §4.6).

    Raised by the non-waiting ``open_stream``/``open_uni_stream`` calls when
    the peer's MAX_STREAMS does not allow another stream yet; the waiting
    variants block instead.
    """

    def __init__(self, limit: int | None = None, bidirectional: bool = True) -> None:
        super().__init__(limit, bidirectional)
        self.limit = limit
        self.bidirectional = bidirectional

    def __str__(self) -> str:
        kind = "bidirectional" if self.bidirectional else "unidirectional"
        text = f"too many open {kind} streams"
        if self.limit is not None:
            text += f" (peer allows {self.limit})"
        return text


class DatagramNotSupportedError(QuicError):
    """DATAGRAM frames cannot be sent on this connection (RFC 9221 §3).

    Raised by ``send_datagram`` when the peer did not send the
    max_datagram_frame_size transport parameter, or when datagrams are not
    enabled in our own `Config`.
    """

    def __str__(self) -> str:
        return super().__str__() or "DATAGRAM frames are not supported on this connection"


class DatagramTooLargeError(QuicError):
    """A datagram does not fit in one packet (RFC 9221 §5).

    Raised by ``send_datagram`` when the payload is larger than `max_size`,
    the most that currently fits given the peer's max_datagram_frame_size
    and the path MTU.
    """

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.max_size = max_size

    def __str__(self) -> str:
        return f"DATAGRAM frame too large (at most {self.max_size} bytes fit)"


class ZeroRTTRejectedError(QuicError):
    """The server rejected 0-RTT (RFC 9001 §4.6.2); quic-go's ``Err0RTTRejected``.

    Raised on an early connection and its streams when the handshake
    completes without the server accepting the 0-RTT data: everything sent
    early was discarded and must be sent again on a new connection.
    """

    def __str__(self) -> str:
        return "0-RTT rejected"


class ServerClosedError(QuicError):
    """The listener was closed; quic-go's ``ErrServerClosed``.

    Raised by ``Listener.accept`` once the listener (or its Transport) has
    been closed.
    """

    def __str__(self) -> str:
        return "server closed"


class TransportClosedError(QuicError):
    """The Transport was closed; quic-go's ``ErrTransportClosed``.

    Raised by dial and listen calls on a `Transport` that has been closed.
    """

    def __str__(self) -> str:
        return "transport closed"


# Short names, as quic-go's Err0RTTRejected / ErrServerClosed read.
ZeroRTTRejected = ZeroRTTRejectedError
ServerClosed = ServerClosedError


def fresh_copy(error: BaseException) -> BaseException:
    """A copy of a stored `error` (same type, arguments and attributes, no
    traceback), for raising it once more.

    A connection or stream keeps its close cause and raises it from every
    later call. Raising the stored instance itself would give it a traceback
    whose frames refer back to the connection, a reference cycle that only
    the garbage collector frees, lengthened by every raise.
    """
    return copy.copy(error)
