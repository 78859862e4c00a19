"""Events the engine reports to its driver (`Connection.next_event()`).

Each event is a frozen slotted dataclass. Stream data is not carried in the
events: `StreamDataAvailable` is reported once per stream per input batch and
the driver pulls the bytes with `Connection.read_stream()`, so the bulk path
creates no object per packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The TLS handshake finished (client: Finished sent; server: Finished received)."""

    #: alpn_protocol is the negotiated ALPN, or None.
    alpn_protocol: Optional[str]
    #: session_resumed is True when a session ticket was used.
    session_resumed: bool
    #: early_data_accepted is True when the server accepted our/their 0-RTT data.
    early_data_accepted: bool


@dataclass(frozen=True, slots=True)
class HandshakeConfirmed:
    """The handshake is confirmed (RFC 9001 §4.1.2): HANDSHAKE_DONE received or sent."""


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer opened `stream_id` (fired once, before any data event for it)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamDataAvailable:
    """Bytes or the end of `stream_id` can be read with `read_stream()`.
    Fired at most once per stream per `receive_datagram` call."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer reset its sending side of `stream_id` (RESET_STREAM)."""

    stream_id: int
    error_code: int
    final_size: int


@dataclass(frozen=True, slots=True)
class StopSendingReceived:
    """The peer asked us to stop sending on `stream_id` (STOP_SENDING); the
    engine has already answered with RESET_STREAM carrying the same code."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class StreamsAvailable:
    """The peer raised its stream limit (MAX_STREAMS): more streams can be opened."""

    unidirectional: bool


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    """A DATAGRAM frame (RFC 9221) arrived."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued:
    """We issued `connection_id`: packets to it belong to this connection."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired:
    """`connection_id` no longer routes to this connection."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ZeroRTTRejected:
    """The server rejected our 0-RTT data; the engine will resend stream data as 1-RTT."""


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The connection is over: closed by either side, idle, reset or failed.

    `error` is the exception describing the cause (a `quicfast.errors` class).
    """

    error: Exception
