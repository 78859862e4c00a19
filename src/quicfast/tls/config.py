"""TLSConfig: certificates, trust anchors, ALPN, groups, suites and tickets.

The user-facing configuration of ``quicfast.tls``. Method names follow
``ssl.SSLContext`` (``load_cert_chain``, ``load_verify_locations``,
``set_alpn_protocols``, ``check_hostname``, ``verify_mode``,
``keylog_filename``). One TLSConfig may be shared by many connections: it
caches the parsed trust store, the server's ticket keys and the 0-RTT
anti-replay memory.

Implements the configuration side of RFC 8446 §4.2.7 (group preference),
§4.2.3 (signature schemes), §4.6.1 and §8 (tickets, 0-RTT anti-replay),
RFC 9001 §4.6.1 (max_early_data_size 0xffffffff for QUIC).
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from .key_exchange import Group
from .key_schedule import CipherSuite
from .session import AntiReplayCache, SessionTicketStore, TicketKeyring
from .signatures import DEFAULT_SIGNATURE_SCHEMES, schemes_for_certificate
from .verify import VerifiedChainCache, build_trust_store, default_trust_store, load_certificates

__all__ = ["TLSConfig", "ClientHelloInfo"]


@dataclass
class ClientHelloInfo:
    """What a server knows of a client when choosing a config."""

    server_name: str | None
    alpn_protocols: list[str] | None
    remote_address: Any


class TLSConfig:
    """TLS settings for clients and servers.

    ``verify_mode`` left as ``None`` means the side's default:
    ``ssl.CERT_REQUIRED`` for a client, ``ssl.CERT_NONE`` for a server. On a
    server, ``CERT_OPTIONAL``/``CERT_REQUIRED`` request and verify a client
    certificate (mutual TLS).
    """

    def __init__(self) -> None:
        #: certificate chain (leaf first) presented to the peer
        self.certificate_chain: list[x509.Certificate] = []
        #: private key of the leaf certificate
        self.private_key: Any = None
        #: ALPN protocols, most preferred first
        self.alpn_protocols: list[str] | None = None
        #: verify the server's name against its certificate (client)
        self.check_hostname: bool = True
        #: ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED, None = side default
        self.verify_mode: ssl.VerifyMode | None = None
        #: NSS key log file (default: $SSLKEYLOGFILE)
        self.keylog_filename: str | None = os.environ.get("SSLKEYLOGFILE") or None
        #: default server name for clients
        self.server_name: str | None = None
        #: key exchange groups, most preferred first
        self.groups: list[Group] = [
            Group.X25519MLKEM768,
            Group.X25519,
            Group.SECP256R1,
            Group.SECP384R1,
        ]
        #: number of leading groups a client sends key shares for (2, as browsers do:
        #: X25519MLKEM768 and x25519, so servers without HelloRetryRequest still agree)
        self.key_share_count: int = 2
        #: cipher suites, most preferred first
        self.cipher_suites: list[CipherSuite] = [
            CipherSuite.AES_128_GCM_SHA256,
            CipherSuite.AES_256_GCM_SHA384,
            CipherSuite.CHACHA20_POLY1305_SHA256,
        ]
        #: signature schemes offered / accepted, most preferred first
        self.signature_algorithms: list[int] = list(DEFAULT_SIGNATURE_SCHEMES)
        #: extra check after chain validation: ``f(certs, server_name)``;
        #: raise AlertError or return False to reject
        self.verify_callback: Callable[[list[x509.Certificate], str | None], Any] | None = None
        #: client: where received tickets go and resumptions come from
        self.session_ticket_store: SessionTicketStore | None = SessionTicketStore()
        #: server: issue a ticket after each handshake
        self.session_tickets: bool = True
        #: server: ticket_lifetime in seconds
        self.ticket_lifetime: int = 86400
        #: server: seconds between ticket key rotations
        self.ticket_key_rotation: float = 86400.0
        #: server: accept 0-RTT
        self.allow_early_data: bool = False
        #: server: max_early_data_size advertised (RFC 9001 §4.6.1 requires 0xffffffff)
        self.max_early_data: int = 0xFFFFFFFF
        #: server: tolerated difference between client and server ticket age (s)
        self.max_early_data_age_skew: float = 10.0
        #: server: pick another config per ClientHello (SNI, ALPN)
        self.get_config_for_client: Callable[[ClientHelloInfo], "TLSConfig | None"] | None = None
        #: time source, seconds since the epoch
        self.clock: Callable[[], float] = time.time
        self.anti_replay = AntiReplayCache()
        #: client: server chains that verified recently, so a reconnect skips
        #: path validation (see VerifiedChainCache); None verifies every time
        self.verified_chain_cache: VerifiedChainCache | None = VerifiedChainCache()
        self._trust_store: verification.Store | None = None
        self._ca_locations: tuple[Any, Any, Any] | None = None
        self._ticket_keyring: TicketKeyring | None = None
        self._signature_schemes_for_key: tuple[int, ...] = ()
        self._certificate_ders: list[bytes] = []

    # -- certificates --------------------------------------------------------

    def load_cert_chain(
        self,
        certfile: str,
        keyfile: str | None = None,
        password: bytes | str | Callable[[], bytes | str] | None = None,
    ) -> None:
        """Load a PEM certificate chain and its private key (as ssl.SSLContext)."""
        with open(certfile, "rb") as f:
            cert_data = f.read()
        certificates = load_certificates(cert_data)
        key_data = cert_data
        if keyfile is not None:
            with open(keyfile, "rb") as f:
                key_data = f.read()
        if callable(password):
            password = password()
        if isinstance(password, str):
            password = password.encode("utf-8")
        private_key = serialization.load_pem_private_key(key_data, password=password)
        self.set_certificate_chain(certificates, private_key)

    def set_certificate_chain(self, certificates: Sequence[x509.Certificate], private_key: Any) -> None:
        """Use ``certificates`` (leaf first) and ``private_key``."""
        certificates = list(certificates)
        if not certificates:
            raise ValueError("empty certificate chain")
        # The leaf decides between rsa_pss_rsae_* and rsa_pss_pss_* for an
        # RSA key (RFC 8446 §4.2.3): cryptography loads both kinds alike.
        schemes = schemes_for_certificate(certificates[0], private_key)
        if not schemes:
            raise ValueError("unsupported private key type or certificate key parameters")
        self.certificate_chain = certificates
        self.private_key = private_key
        self._signature_schemes_for_key = schemes
        self._certificate_ders = [
            c.public_bytes(serialization.Encoding.DER) for c in certificates
        ]

    # -- trust anchors ---------------------------------------------------------

    def load_verify_locations(
        self,
        cafile: str | None = None,
        capath: str | None = None,
        cadata: bytes | str | None = None,
    ) -> None:
        """Trust the CAs in a PEM file, a directory of PEM files, or PEM/DER data."""
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")
        # Parse now so that errors surface here, and cache the store.
        self._trust_store = build_trust_store(cafile, capath, cadata)
        self._ca_locations = (cafile, capath, cadata)
        cache = self.verified_chain_cache
        if cache is not None:
            # What verified against the old anchors proves nothing about the new.
            self.verified_chain_cache = VerifiedChainCache(cache.max_entries, cache.max_age)

    def set_alpn_protocols(self, protocols: Sequence[str]) -> None:
        """ALPN protocols to offer (client) or accept (server), preferred first."""
        self.alpn_protocols = list(protocols)

    def trust_store(self) -> verification.Store:
        """The configured trust anchors, else the system's (cached)."""
        if self._trust_store is not None:
            return self._trust_store
        return default_trust_store()

    def effective_verify_mode(self, is_client: bool) -> int:
        """``verify_mode`` with the side's default applied."""
        if self.verify_mode is not None:
            return self.verify_mode
        return ssl.CERT_REQUIRED if is_client else ssl.CERT_NONE

    def ticket_keyring(self) -> TicketKeyring:
        """The server's ticket keys (created on first use)."""
        if self._ticket_keyring is None:
            self._ticket_keyring = TicketKeyring(self.clock, self.ticket_key_rotation)
        return self._ticket_keyring
