"""TLS 1.3 for QUIC, in pure Python on ``cryptography``.

Implements RFC 8446 (TLS 1.3 handshake, key schedule, resumption, 0-RTT)
as profiled by RFC 9001 §4 and §8 (TLS over QUIC CRYPTO frames), plus the
X25519MLKEM768 hybrid group (draft-ietf-tls-ecdhe-mlkem).

The protocol engine drives :class:`ClientHandshake` / :class:`ServerHandshake`
(``start``, ``receive``, ``output``, ``on_secret``); users configure
:class:`TLSConfig`.
"""

from .alerts import AlertDescription, AlertError
from .config import ClientHelloInfo, TLSConfig
from .context import ClientHandshake, Level, ServerHandshake
from .key_exchange import Group
from .key_schedule import CipherSuite
from .session import SessionTicket, SessionTicketStore
from .signatures import SignatureScheme

__all__ = [
    "AlertDescription",
    "AlertError",
    "CipherSuite",
    "ClientHandshake",
    "ClientHelloInfo",
    "Group",
    "Level",
    "ServerHandshake",
    "SessionTicket",
    "SessionTicketStore",
    "SignatureScheme",
    "TLSConfig",
]
