"""quicfast: QUIC (RFC 9000/9001/9002) for Python with a Cython/C engine and a
quic-go-style asyncio API (Transport, Listener, Connection, Stream, Config)."""

from .config import Config, LRUTokenStore, TokenStore
from .connection import Connection, ConnectionState, EarlyConnection
from .errors import (
    ApplicationError, ConnectionClosedError, DatagramNotSupportedError, DatagramTooLargeError,
    HandshakeTimeoutError, IdleTimeoutError, QuicError, ServerClosed, ServerClosedError,
    StatelessResetError, StreamError, StreamLimitReachedError, StreamStateError, TransportClosedError,
    TransportError, TransportErrorCode, VersionNegotiationError, ZeroRTTRejected, ZeroRTTRejectedError,
)
from .stream import ReceiveStream, SendStream, Stream
from .tls import SessionTicketStore, TLSConfig
from .transport import (
    EarlyListener, Listener, Transport, dial, dial_addr, dial_addr_early, dial_early, listen,
    listen_addr, listen_addr_early, listen_early,
)

__version__ = "0.1.0"

__all__ = [
    "ApplicationError", "Config", "Connection", "ConnectionClosedError", "ConnectionState",
    "DatagramNotSupportedError", "DatagramTooLargeError", "EarlyConnection", "EarlyListener",
    "HandshakeTimeoutError", "IdleTimeoutError", "LRUTokenStore", "Listener", "QuicError",
    "ReceiveStream", "SendStream", "ServerClosed", "ServerClosedError", "SessionTicketStore",
    "StatelessResetError", "Stream", "StreamError", "StreamLimitReachedError", "StreamStateError",
    "TLSConfig", "TokenStore", "Transport", "TransportClosedError", "TransportError",
    "TransportErrorCode", "VersionNegotiationError", "ZeroRTTRejected", "ZeroRTTRejectedError",
    "dial", "dial_addr", "dial_addr_early", "dial_early", "listen", "listen_addr",
    "listen_addr_early", "listen_early",
]
