"""TLS 1.3 client and server handshake state machines for QUIC.

Implements RFC 8446 §2 and §4 (full handshake, HelloRetryRequest with
cookie, PSK resumption in psk_dhe_ke mode, 0-RTT, client certificates),
§4.4.1 (transcript), §7.1 (key schedule use), §7.5 (exporters) and
RFC 9001 §4 and §8 (TLS carried in QUIC CRYPTO frames: no records, no
ChangeCipherSpec, empty legacy_session_id, no EndOfEarlyData, no KeyUpdate,
ALPN and quic_transport_parameters required, max_early_data_size
0xffffffff).

Rules:

- The engine feeds the CRYPTO bytes of each encryption level with
  :meth:`receive`, in order, and drains :attr:`output` after each call.
- A traffic secret is handed to ``on_secret`` the moment it exists, in
  handshake order. The client gets: ZERO_RTT write (when offering early
  data), HANDSHAKE read, HANDSHAKE write, ONE_RTT read, ONE_RTT write. The
  server gets: ZERO_RTT read (when accepting early data), HANDSHAKE read,
  HANDSHAKE write, ONE_RTT write (after its Finished), ONE_RTT read (after
  verifying the client's Finished).
- Any failure raises :class:`AlertError`; the handshake is then dead and
  every later call raises again.

Theory of operation: each side keeps ``_state`` naming the message it waits
for and the encryption level that message must arrive at. Incoming bytes are
split into complete handshake messages; each message, header included, goes
to the handler for the current state and is added to the transcript as
received, so nothing is re-serialized. Messages a side sends are built once
and the same bytes go to both the transcript and :attr:`output`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from enum import IntEnum
from typing import Any, Callable

from cryptography import x509

from .alerts import AlertDescription, AlertError
from .config import ClientHelloInfo, TLSConfig
from .key_exchange import Group, KeyShare, server_key_exchange
from .key_schedule import CIPHER_SUITE_HASH, CipherSuite, KeySchedule, Transcript
from .messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    MAX_HANDSHAKE_MESSAGE_SIZE,
    PSK_DHE_KE,
    TLS_VERSION_1_3,
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    ExtensionType,
    Finished,
    HandshakeType,
    NewSessionTicket,
    OfferedPsks,
    ServerHello,
    binders_length,
    pull_certificate,
    pull_certificate_request,
    pull_certificate_verify,
    pull_client_hello,
    pull_encrypted_extensions,
    pull_finished,
    pull_new_session_ticket,
    pull_server_hello,
    push_certificate,
    push_certificate_request,
    push_certificate_verify,
    push_client_hello,
    push_encrypted_extensions,
    push_finished,
    push_new_session_ticket,
    push_server_hello,
    vec1,
    vec2,
)
from .session import MAX_TICKET_LIFETIME, ServerTicketState, SessionTicket
from .signatures import (
    CLIENT_CONTEXT,
    SERVER_CONTEXT,
    certificate_verify_content,
    schemes_for_certificate,
    sign,
    verify,
)
from .verify import VerifiedChain, ip_literal, verify_client_certificates, verify_server_certificates

__all__ = ["Level", "ClientHandshake", "ServerHandshake"]

#: Bytes of incomplete handshake data buffered per level before giving up.
MAX_BUFFERED_DATA = 131072

_A = AlertDescription


class Level(IntEnum):
    """QUIC encryption levels (RFC 9001 §4)."""

    INITIAL = 0
    ZERO_RTT = 1
    HANDSHAKE = 2
    ONE_RTT = 3


_LEVELS = tuple(Level)  # iterating the enum class itself is slow


class _State(IntEnum):
    CLIENT_START = 0
    CLIENT_WAIT_SERVER_HELLO = 1
    CLIENT_WAIT_ENCRYPTED_EXTENSIONS = 2
    CLIENT_WAIT_CERTIFICATE_OR_REQUEST = 3
    CLIENT_WAIT_CERTIFICATE = 4
    CLIENT_WAIT_CERTIFICATE_VERIFY = 5
    CLIENT_WAIT_FINISHED = 6
    CLIENT_CONNECTED = 7
    SERVER_WAIT_CLIENT_HELLO = 10
    SERVER_WAIT_SECOND_CLIENT_HELLO = 11
    SERVER_WAIT_CERTIFICATE = 12
    SERVER_WAIT_CERTIFICATE_VERIFY = 13
    SERVER_WAIT_FINISHED = 14
    SERVER_CONNECTED = 15
    FAILED = 99


# The level each awaited message must arrive at (None: nothing expected).
_STATE_LEVEL = {
    _State.CLIENT_START: None,
    _State.CLIENT_WAIT_SERVER_HELLO: Level.INITIAL,
    _State.CLIENT_WAIT_ENCRYPTED_EXTENSIONS: Level.HANDSHAKE,
    _State.CLIENT_WAIT_CERTIFICATE_OR_REQUEST: Level.HANDSHAKE,
    _State.CLIENT_WAIT_CERTIFICATE: Level.HANDSHAKE,
    _State.CLIENT_WAIT_CERTIFICATE_VERIFY: Level.HANDSHAKE,
    _State.CLIENT_WAIT_FINISHED: Level.HANDSHAKE,
    _State.CLIENT_CONNECTED: Level.ONE_RTT,
    _State.SERVER_WAIT_CLIENT_HELLO: Level.INITIAL,
    _State.SERVER_WAIT_SECOND_CLIENT_HELLO: Level.INITIAL,
    _State.SERVER_WAIT_CERTIFICATE: Level.HANDSHAKE,
    _State.SERVER_WAIT_CERTIFICATE_VERIFY: Level.HANDSHAKE,
    _State.SERVER_WAIT_FINISHED: Level.HANDSHAKE,
    _State.SERVER_CONNECTED: None,
    _State.FAILED: None,
}

# Extensions a client may see in a ServerHello / HelloRetryRequest / EE.
_SERVER_HELLO_EXTENSIONS = frozenset(
    (ExtensionType.supported_versions, ExtensionType.key_share, ExtensionType.pre_shared_key)
)
_RETRY_EXTENSIONS = frozenset(
    (ExtensionType.supported_versions, ExtensionType.key_share, ExtensionType.cookie)
)
_ENCRYPTED_EXTENSIONS = frozenset(
    (
        ExtensionType.server_name,
        ExtensionType.supported_groups,
        ExtensionType.application_layer_protocol_negotiation,
        ExtensionType.early_data,
        ExtensionType.quic_transport_parameters,
    )
)
_KNOWN_EXTENSIONS = frozenset(int(e) for e in ExtensionType)


def _alert(description: int, message: str) -> AlertError:
    return AlertError(description, message)


def _parse_certificates(ders: list[bytes]) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(der) for der in ders]
    except Exception as exc:  # ValueError, x509.InvalidVersion, ...
        raise _alert(_A.bad_certificate, f"unparsable certificate: {exc}") from None


def _verify_chain(check: Callable[..., None], *args: Any) -> None:
    """Run a chain check, reporting malformed certificates as bad_certificate.

    cryptography parses certificate fields lazily, so a malformed field may
    only surface during verification, as ValueError or an x509 exception.
    """
    try:
        check(*args)
    except AlertError:
        raise
    except Exception as exc:
        raise _alert(_A.bad_certificate, f"malformed certificate: {exc}") from None


def _leaf_key_and_schemes(certificate: x509.Certificate) -> tuple[Any, tuple[int, ...]]:
    try:
        public_key = certificate.public_key()
    except (ValueError, TypeError) as exc:  # unsupported key type
        raise _alert(_A.unsupported_certificate, f"unsupported certificate key: {exc}") from None
    return public_key, schemes_for_certificate(certificate, public_key)


class _Handshake:
    """State shared by both sides: buffering, dispatch, secrets, key log."""

    _handlers: dict[_State, dict[int, Callable[[Any, bytes], None]]] = {}

    def __init__(self, config: TLSConfig, is_client: bool) -> None:
        self.config = config
        self.is_client = is_client
        #: handshake bytes to send, per level; drained by the engine
        self.output: dict[Level, bytearray] = {level: bytearray() for level in _LEVELS}
        #: ``f(level, is_write, cipher_suite, secret)``, see module docstring
        self.on_secret: Callable[[Level, bool, CipherSuite, bytes], None] | None = None
        #: client: ``f(ticket)`` for each NewSessionTicket
        self.on_session_ticket: Callable[[SessionTicket], None] | None = None
        #: True once the handshake is complete (Finished sent and received)
        self.handshake_complete = False
        #: negotiated ALPN protocol
        self.alpn_protocol: str | None = None
        #: the peer's quic_transport_parameters extension body
        self.peer_transport_parameters: bytes | None = None
        #: negotiated cipher suite
        self.cipher_suite: CipherSuite | None = None
        #: negotiated key exchange group
        self.group: Group | None = None
        #: True if a PSK from a ticket was accepted
        self.session_resumed = False
        #: True if 0-RTT data is accepted
        self.early_data_accepted = False
        #: the peer's certificate chain, leaf first (empty if none / resumed)
        self.peer_certificates: list[x509.Certificate] = []
        #: the leaf's public key and the signature schemes it allows, once known
        self._peer_key_and_schemes: tuple[Any, tuple[int, ...]] | None = None
        #: the server name (client: requested; server: from SNI)
        self.server_name: str | None = None
        self._state = _State.FAILED
        self._buffer = b""
        self._buffer_level: Level | None = None
        self._transcript = Transcript()
        self._key_schedule: KeySchedule | None = None
        self._client_random = b""
        self._client_handshake_secret = b""
        self._server_handshake_secret = b""
        self._client_application_secret = b""
        self._resumption_master_secret = b""
        self._exporter_transcript_hash: bytes | None = None
        self._exporter_master_secret: bytes | None = None

    # -- input -------------------------------------------------------------------

    def receive(self, level: Level, data: bytes) -> None:
        """Process CRYPTO bytes received at ``level``.

        ``data`` may hold partial or several messages. Afterwards, send what
        :attr:`output` holds.

        :raises AlertError: on any protocol violation.
        """
        if self._state == _State.FAILED:
            raise _alert(_A.internal_error, "handshake has already failed")
        if not data:
            return
        try:
            self._receive(level if level.__class__ is Level else Level(level), bytes(data))
        except AlertError:
            self._state = _State.FAILED
            raise
        except Exception as exc:  # a bug or an unexpected library error
            self._state = _State.FAILED
            raise _alert(_A.internal_error, f"{type(exc).__name__}: {exc}") from exc

    def _receive(self, level: Level, data: bytes) -> None:
        if _STATE_LEVEL[self._state] != level:
            raise _alert(
                _A.unexpected_message,
                f"handshake data at {level.name} level while expecting "
                f"{'none' if _STATE_LEVEL[self._state] is None else _STATE_LEVEL[self._state].name}",
            )
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        end = len(buffer)
        while end - pos >= 4:
            length = int.from_bytes(buffer[pos + 1 : pos + 4], "big")
            if length > MAX_HANDSHAKE_MESSAGE_SIZE:
                raise _alert(_A.decode_error, f"handshake message of {length} bytes is too large")
            stop = pos + 4 + length
            if stop > end:
                break
            message = buffer[pos:stop]
            pos = stop
            if _STATE_LEVEL[self._state] != level:
                # RFC 8446 §5.1: messages must not span a key change
                raise _alert(_A.unexpected_message, "handshake data continues after a key change")
            handler = self._handlers[self._state].get(message[0])
            if handler is None:
                try:
                    name = HandshakeType(message[0]).name
                except ValueError:
                    name = f"type {message[0]}"
                raise _alert(
                    _A.unexpected_message, f"unexpected {name} message in state {self._state.name}"
                )
            handler(self, message)
        self._buffer = buffer[pos:]
        if self._buffer:
            if _STATE_LEVEL[self._state] != level:
                raise _alert(_A.unexpected_message, "handshake data continues after a key change")
            if len(self._buffer) > MAX_BUFFERED_DATA:
                raise _alert(_A.decode_error, "too much incomplete handshake data")

    # -- secrets -----------------------------------------------------------------

    def _keylog(self, label: str, secret: bytes) -> None:
        if self.config.keylog_filename:
            line = f"{label} {self._client_random.hex()} {secret.hex()}\n"
            with open(self.config.keylog_filename, "a") as f:
                f.write(line)

    def _install_secret(self, level: Level, is_write: bool, secret: bytes, label: str,
                        cipher_suite: CipherSuite | None = None) -> None:
        suite = cipher_suite if cipher_suite is not None else self.cipher_suite
        self._keylog(label, secret)
        if self.on_secret is not None:
            self.on_secret(level, is_write, suite, secret)

    def _derive_handshake_secrets(self, shared_secret: bytes) -> None:
        ks = self._key_schedule
        ks.extract(shared_secret)
        transcript_hash = self._transcript.digest()
        self._client_handshake_secret = ks.derive_secret(b"c hs traffic", transcript_hash)
        self._server_handshake_secret = ks.derive_secret(b"s hs traffic", transcript_hash)
        client, server = self._client_handshake_secret, self._server_handshake_secret
        if self.is_client:
            self._install_secret(Level.HANDSHAKE, False, server, "SERVER_HANDSHAKE_TRAFFIC_SECRET")
            self._install_secret(Level.HANDSHAKE, True, client, "CLIENT_HANDSHAKE_TRAFFIC_SECRET")
        else:
            self._install_secret(Level.HANDSHAKE, False, client, "CLIENT_HANDSHAKE_TRAFFIC_SECRET")
            self._install_secret(Level.HANDSHAKE, True, server, "SERVER_HANDSHAKE_TRAFFIC_SECRET")

    def _derive_application_secrets(self) -> bytes:
        """Master secret and both 1-RTT secrets; returns the server's."""
        ks = self._key_schedule
        ks.extract(None)
        transcript_hash = self._transcript.digest()
        self._client_application_secret = ks.derive_secret(b"c ap traffic", transcript_hash)
        # exporter_master_secret is derived on first use (most connections
        # never export); the key log needs it now.
        self._exporter_transcript_hash = transcript_hash
        if self.config.keylog_filename:
            self._keylog("EXPORTER_SECRET", self._exporter_secret())
        return ks.derive_secret(b"s ap traffic", transcript_hash)

    def _exporter_secret(self) -> bytes:
        if self._exporter_master_secret is None:
            self._exporter_master_secret = self._key_schedule.exporter_master_secret(
                self._exporter_transcript_hash
            )
        return self._exporter_master_secret

    def export_keying_material(self, label: bytes | str, context: bytes = b"",
                               length: int = 32) -> bytes:
        """Keying material from the TLS exporter (RFC 8446 §7.5, RFC 5705).

        Both sides get the same bytes for the same ``label``, ``context`` and
        ``length``. TLS 1.3 makes no difference between an empty and an
        absent context. Available once the 1-RTT secrets exist: on the
        client after the server's Finished, on the server after sending its
        own Finished (the client is then not yet authenticated).

        :param label: ASCII label, at most 249 bytes (e.g. ``"EXPERIMENTAL-x"``).
        :param context: context value, hashed into the output.
        :param length: bytes of output, at most 255 hash lengths.
        :raises RuntimeError: before the exporter secret exists.
        :raises ValueError: for an over-long or non-ASCII label or a bad length.
        """
        if self._exporter_transcript_hash is None:
            raise RuntimeError("the exporter is not available before the handshake keys")
        if isinstance(label, str):
            try:
                label = label.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError("exporter label must be ASCII") from None
        return self._key_schedule.export(self._exporter_secret(), bytes(label), bytes(context),
                                         length)

    def _verify_finished(self, base_key: bytes, message: bytes) -> None:
        expected = self._key_schedule.finished_verify_data(base_key, self._transcript.digest())
        if not hmac.compare_digest(expected, pull_finished(message).verify_data):
            raise _alert(_A.decrypt_error, "bad Finished verify_data")
        self._transcript.update(message)

    def _send(self, level: Level, message: bytes) -> None:
        self._transcript.update(message)
        self.output[level] += message

    def _send_certificate(self, level: Level, context: bytes, schemes_offered: list[int],
                          signing_context: bytes) -> bool:
        """Certificate + CertificateVerify; False if nothing suitable to send."""
        config = self.config
        scheme = None
        if config.private_key is not None:
            for candidate in config.signature_algorithms:
                if candidate in config._signature_schemes_for_key and candidate in schemes_offered:
                    scheme = candidate
                    break
        if scheme is None:
            self._send(level, push_certificate(Certificate(context, [])))
            return False
        self._send(level, push_certificate(Certificate(context, config._certificate_ders)))
        content = certificate_verify_content(signing_context, self._transcript.digest())
        signature = sign(config.private_key, scheme, content)
        self._send(level, push_certificate_verify(CertificateVerify(scheme, signature)))
        return True

    def _check_certificate_verify(self, message: bytes, context: bytes) -> None:
        certificate_verify = pull_certificate_verify(message)
        scheme = certificate_verify.algorithm
        if scheme not in self.config.signature_algorithms:
            raise _alert(_A.illegal_parameter, f"signature scheme {scheme:#06x} was not offered")
        public_key, schemes = self._peer_key_and_schemes or _leaf_key_and_schemes(self.peer_certificates[0])
        if scheme not in schemes:
            raise _alert(
                _A.illegal_parameter,
                f"signature scheme {scheme:#06x} does not match the certificate key",
            )
        content = certificate_verify_content(context, self._transcript.digest())
        verify(public_key, scheme, certificate_verify.signature, content)
        self._transcript.update(message)

    def _run_verify_callback(self, server_name: str | None) -> None:
        callback = self.config.verify_callback
        if callback is not None and callback(self.peer_certificates, server_name) is False:
            raise _alert(_A.bad_certificate, "certificate rejected by verify_callback")


# =============================================================================
# Client
# =============================================================================


class ClientHandshake(_Handshake):
    """The client side of a TLS 1.3 handshake over QUIC.

    Drivers: call :meth:`start` once, then :meth:`receive` for every chunk of
    CRYPTO data; after each call send :attr:`output` and install the secrets
    reported through ``on_secret``.

    :param config: TLS settings (trust anchors, ALPN, groups, suites).
    :param server_name: name to send in SNI and to verify; defaults to
        ``config.server_name``.
    :param transport_parameters: our encoded QUIC transport parameters.
    :param alpn_protocols: ALPN offer; defaults to ``config.alpn_protocols``.
    :param session_ticket: ticket to resume with; defaults to one popped from
        ``config.session_ticket_store``.
    :param early_data: offer 0-RTT if the ticket allows it.
    """

    def __init__(
        self,
        config: TLSConfig,
        server_name: str | None,
        transport_parameters: bytes,
        alpn_protocols: list[str] | None = None,
        session_ticket: SessionTicket | None = None,
        early_data: bool = False,
    ) -> None:
        super().__init__(config, is_client=True)
        self.server_name = server_name if server_name is not None else config.server_name
        self.transport_parameters = transport_parameters
        self.alpn_protocols = (
            list(alpn_protocols) if alpn_protocols is not None else config.alpn_protocols
        )
        self.session_ticket = session_ticket
        self.early_data_requested = early_data
        self._state = _State.CLIENT_START
        self._key_shares: dict[int, KeyShare] = {}
        self._hello: ClientHello | None = None
        self._offered_psk: SessionTicket | None = None
        self._psk_schedule: KeySchedule | None = None
        self._early_data_offered = False
        self._retry_cipher_suite: int | None = None
        self._certificate_request: CertificateRequest | None = None

    def start(self) -> None:
        """Produce the ClientHello in ``output[Level.INITIAL]``."""
        if self._state != _State.CLIENT_START:
            raise RuntimeError("start() may be called once")
        try:
            self._start()
        except AlertError:
            self._state = _State.FAILED
            raise

    def _start(self) -> None:
        config = self.config
        now = config.clock()
        self._client_random = os.urandom(32)
        x25519_key = None
        for group in config.groups[: max(1, config.key_share_count)]:
            # X25519 and X25519MLKEM768 offered together share one X25519 key.
            share = self._key_shares[group] = KeyShare(group, x25519_key)
            x25519_key = x25519_key or share.x25519_key
        ticket = self.session_ticket
        if ticket is None and config.session_ticket_store is not None:
            ticket = config.session_ticket_store.pop(self.server_name, now)
        if ticket is not None and not (
            ticket.is_valid(now)
            and ticket.cipher_suite in config.cipher_suites
            and ticket.server_name == self.server_name
        ):
            ticket = None
        self._offered_psk = ticket
        server_name = self.server_name
        if server_name is not None and ip_literal(server_name) is not None:
            server_name = None  # RFC 6066 §3: no IP literals in SNI
        hello = ClientHello(
            random=self._client_random,
            legacy_session_id=b"",
            cipher_suites=[int(s) for s in config.cipher_suites],
            server_name=server_name,
            supported_versions=[TLS_VERSION_1_3],
            supported_groups=[int(g) for g in config.groups],
            key_shares=[(g, k.public) for g, k in self._key_shares.items()],
            signature_algorithms=list(config.signature_algorithms),
            alpn_protocols=self.alpn_protocols,
            quic_transport_parameters=self.transport_parameters,
        )
        # Always offered, not just with a ticket: servers such as aioquic and
        # OpenSSL issue NewSessionTicket only to clients that send it
        # (RFC 8446 §4.2.9), so without it we could never resume.
        hello.psk_key_exchange_modes = [PSK_DHE_KE]
        if ticket is not None:
            self._early_data_offered = hello.early_data = bool(
                self.early_data_requested
                and ticket.max_early_data > 0
                and (ticket.alpn is None or (self.alpn_protocols and ticket.alpn in self.alpn_protocols))
            )
        self._hello = hello
        message = self._push_hello(None)
        self._transcript.update(message)
        self.output[Level.INITIAL] += message
        if self._early_data_offered:
            ks = self._psk_schedule
            secret = ks.derive_secret(b"c e traffic", hashlib.new(ks.hash_name, message).digest())
            self._install_secret(
                Level.ZERO_RTT, True, secret, "CLIENT_EARLY_TRAFFIC_SECRET", ticket.cipher_suite
            )
        self._state = _State.CLIENT_WAIT_SERVER_HELLO

    def _push_hello(self, transcript_prefix: Transcript | None) -> bytes:
        """Serialize the ClientHello, computing the PSK binder if offering one.

        ``transcript_prefix`` holds what precedes this ClientHello in the
        transcript (``message_hash(CH1) || HelloRetryRequest``), or None.
        """
        hello = self._hello
        ticket = self._offered_psk
        if ticket is None:
            hello.pre_shared_key = None
            return push_client_hello(hello)
        ks = KeySchedule(ticket.cipher_suite)
        ks.extract(ticket.resumption_secret)
        self._psk_schedule = ks
        placeholder = bytes(ks.hash_length)
        hello.pre_shared_key = OfferedPsks(
            [(ticket.ticket, ticket.obfuscated_age(self.config.clock()))], [placeholder]
        )
        message = push_client_hello(hello)
        truncated = message[: len(message) - binders_length([placeholder])]
        if transcript_prefix is None:
            truncated_hash = hashlib.new(ks.hash_name, truncated).digest()
        else:
            truncated_hash = transcript_prefix.digest_with(truncated)
        binder = ks.binder(False, truncated_hash)
        hello.pre_shared_key.binders = [binder]
        return truncated + vec2(vec1(binder))

    # -- handlers --------------------------------------------------------------------

    def _handle_server_hello(self, message: bytes) -> None:
        hello = pull_server_hello(message)
        if hello.supported_version is None:
            raise _alert(_A.protocol_version, "server does not support TLS 1.3")
        if hello.supported_version != TLS_VERSION_1_3:
            raise _alert(_A.illegal_parameter, "server selected a version we did not offer")
        if hello.legacy_session_id_echo != self._hello.legacy_session_id:
            raise _alert(_A.illegal_parameter, "legacy_session_id_echo does not match")
        if hello.cipher_suite not in self._hello.cipher_suites:
            raise _alert(_A.illegal_parameter, "server selected a cipher suite we did not offer")
        if hello.legacy_compression_method != 0:
            raise _alert(_A.illegal_parameter, "server selected compression")
        if hello.random == HELLO_RETRY_REQUEST_RANDOM:
            self._handle_hello_retry_request(hello, message)
            return
        for ext_type in hello.extension_types:
            if ext_type not in _SERVER_HELLO_EXTENSIONS:
                raise _alert(_A.unsupported_extension, f"unexpected extension {ext_type} in ServerHello")
        if self._retry_cipher_suite is not None and hello.cipher_suite != self._retry_cipher_suite:
            raise _alert(_A.illegal_parameter, "cipher suite differs from HelloRetryRequest")
        if hello.key_share is None:
            raise _alert(_A.missing_extension, "ServerHello lacks key_share")
        group, server_share = hello.key_share
        key_share = self._key_shares.get(group)
        if key_share is None:
            raise _alert(_A.illegal_parameter, "server key_share group was not offered")
        self.cipher_suite = CipherSuite(hello.cipher_suite)
        self.group = Group(group)
        hash_name = CIPHER_SUITE_HASH[hello.cipher_suite]
        psk: bytes | None = None
        if hello.selected_identity is not None:
            ticket = self._offered_psk
            if ticket is None or hello.selected_identity != 0:
                raise _alert(_A.illegal_parameter, "server selected a PSK we did not offer")
            if CIPHER_SUITE_HASH[ticket.cipher_suite] != hash_name:
                raise _alert(_A.illegal_parameter, "PSK hash does not match the cipher suite")
            psk = ticket.resumption_secret
            self.session_resumed = True
        if self._transcript.hash_name is None:
            self._transcript.set_hash(hash_name)
        self._transcript.update(message)
        if psk is not None and self._psk_schedule.cipher_suite == hello.cipher_suite:
            self._key_schedule = self._psk_schedule  # early secret already extracted
        else:
            self._key_schedule = KeySchedule(hello.cipher_suite)
            self._key_schedule.extract(psk)
        self._derive_handshake_secrets(key_share.exchange(server_share))
        # Only a HelloRetryRequest needs the ClientHello again: drop it (and
        # its lists) now rather than keep them for the connection's lifetime.
        self._key_shares = {}
        self._hello = None
        self._state = _State.CLIENT_WAIT_ENCRYPTED_EXTENSIONS

    def _handle_hello_retry_request(self, retry: ServerHello, message: bytes) -> None:
        if self._retry_cipher_suite is not None:
            raise _alert(_A.unexpected_message, "second HelloRetryRequest")
        for ext_type in retry.extension_types:
            if ext_type not in _RETRY_EXTENSIONS:
                raise _alert(
                    _A.unsupported_extension, f"unexpected extension {ext_type} in HelloRetryRequest"
                )
        group = retry.key_share[0] if retry.key_share is not None else None
        if group is None and retry.cookie is None:
            raise _alert(_A.illegal_parameter, "HelloRetryRequest would not change the ClientHello")
        if group is not None and (group not in self.config.groups or group in self._key_shares):
            raise _alert(_A.illegal_parameter, "HelloRetryRequest selected an unusable group")
        self._retry_cipher_suite = retry.cipher_suite
        hash_name = CIPHER_SUITE_HASH[retry.cipher_suite]
        transcript = self._transcript
        transcript.set_hash(hash_name)
        transcript.restart_for_retry()
        transcript.update(message)
        hello = self._hello
        if group is not None:
            self._key_shares = {group: KeyShare(group)}
            hello.key_shares = [(group, self._key_shares[group].public)]
        hello.cookie = retry.cookie
        # RFC 8446 §4.2.10: no early data after a HelloRetryRequest.
        hello.early_data = False
        self._early_data_offered = False
        ticket = self._offered_psk
        if ticket is not None and CIPHER_SUITE_HASH[ticket.cipher_suite] != hash_name:
            self._offered_psk = None
        second_hello = self._push_hello(transcript)
        transcript.update(second_hello)
        self.output[Level.INITIAL] += second_hello

    def _handle_encrypted_extensions(self, message: bytes) -> None:
        extensions = pull_encrypted_extensions(message)
        for ext_type in extensions.extension_types:
            if ext_type not in _ENCRYPTED_EXTENSIONS:
                if ext_type in _KNOWN_EXTENSIONS:
                    raise _alert(_A.illegal_parameter, f"extension {ext_type} not allowed in EncryptedExtensions")
                raise _alert(_A.unsupported_extension, f"unsolicited extension {ext_type}")
        if extensions.quic_transport_parameters is None:
            raise _alert(_A.missing_extension, "server sent no quic_transport_parameters")
        offered = self.alpn_protocols
        if extensions.alpn_protocol is not None:
            if not offered or extensions.alpn_protocol not in offered:
                raise _alert(_A.illegal_parameter, "server selected an ALPN protocol we did not offer")
        elif offered:
            raise _alert(_A.no_application_protocol, "server did not select an ALPN protocol")
        self.alpn_protocol = extensions.alpn_protocol
        if extensions.early_data:
            if not (self._early_data_offered and self.session_resumed):
                raise _alert(_A.illegal_parameter, "server accepted early data we did not offer")
            if self._offered_psk.alpn != self.alpn_protocol:
                raise _alert(_A.illegal_parameter, "early data accepted with a different ALPN")
            self.early_data_accepted = True
        self.peer_transport_parameters = extensions.quic_transport_parameters
        self._transcript.update(message)
        self._state = (
            _State.CLIENT_WAIT_FINISHED
            if self.session_resumed
            else _State.CLIENT_WAIT_CERTIFICATE_OR_REQUEST
        )

    def _handle_certificate_request(self, message: bytes) -> None:
        request = pull_certificate_request(message)
        if request.request_context:
            raise _alert(_A.illegal_parameter, "handshake CertificateRequest context must be empty")
        self._certificate_request = request
        self._transcript.update(message)
        self._state = _State.CLIENT_WAIT_CERTIFICATE

    def _handle_certificate(self, message: bytes) -> None:
        certificate = pull_certificate(message)
        if certificate.request_context:
            raise _alert(_A.illegal_parameter, "server Certificate has a request context")
        if not certificate.certificates:
            raise _alert(_A.decode_error, "server sent an empty Certificate")
        if self.config.effective_verify_mode(True) == ssl.CERT_NONE:
            self.peer_certificates = _parse_certificates(certificate.certificates)
        else:
            self._take_verified_chain(certificate.certificates)
        self._run_verify_callback(self.server_name)
        self._transcript.update(message)
        self._state = _State.CLIENT_WAIT_CERTIFICATE_VERIFY

    def _take_verified_chain(self, ders: list[bytes]) -> None:
        """Set peer_certificates from a chain that verifies, from the
        config's VerifiedChainCache when it already did."""
        config = self.config
        now = config.clock()
        name = self.server_name if config.check_hostname else None
        cache = config.verified_chain_cache
        known = cache.get(ders, name, now) if cache is not None else None
        if known is not None:
            self.peer_certificates = list(known.certificates)
            self._peer_key_and_schemes = (known.public_key, known.schemes)
            return
        self.peer_certificates = _parse_certificates(ders)
        _verify_chain(verify_server_certificates, config.trust_store(), self.peer_certificates,
                      self.server_name, config.check_hostname, now)
        if cache is not None:
            public_key, schemes = self._peer_key_and_schemes = _leaf_key_and_schemes(self.peer_certificates[0])
            cache.put(ders, name, VerifiedChain(self.peer_certificates, public_key, schemes, now))

    def _handle_certificate_verify(self, message: bytes) -> None:
        self._check_certificate_verify(message, SERVER_CONTEXT)
        self._state = _State.CLIENT_WAIT_FINISHED

    def _handle_finished(self, message: bytes) -> None:
        self._verify_finished(self._server_handshake_secret, message)
        server_secret = self._derive_application_secrets()
        self._install_secret(Level.ONE_RTT, False, server_secret, "SERVER_TRAFFIC_SECRET_0")
        request = self._certificate_request
        if request is not None:
            self._send_certificate(
                Level.HANDSHAKE, request.request_context, request.signature_algorithms,
                CLIENT_CONTEXT,
            )
        verify_data = self._key_schedule.finished_verify_data(
            self._client_handshake_secret, self._transcript.digest()
        )
        self._send(Level.HANDSHAKE, push_finished(Finished(verify_data)))
        self._install_secret(
            Level.ONE_RTT, True, self._client_application_secret, "CLIENT_TRAFFIC_SECRET_0"
        )
        self._resumption_master_secret = self._key_schedule.derive_secret(
            b"res master", self._transcript.digest()
        )
        self.handshake_complete = True
        self._state = _State.CLIENT_CONNECTED

    def _handle_new_session_ticket(self, message: bytes) -> None:
        nst = pull_new_session_ticket(message)
        if nst.ticket_lifetime > MAX_TICKET_LIFETIME:
            raise _alert(_A.illegal_parameter, "ticket_lifetime exceeds 7 days")
        if nst.ticket_lifetime == 0:
            return
        ks = self._key_schedule
        now = self.config.clock()
        ticket = SessionTicket(
            ticket=nst.ticket,
            server_name=self.server_name,
            cipher_suite=self.cipher_suite,
            resumption_secret=ks.resumption_psk(self._resumption_master_secret, nst.ticket_nonce),
            age_add=nst.ticket_age_add,
            lifetime=nst.ticket_lifetime,
            not_valid_before=now,
            not_valid_after=now + nst.ticket_lifetime,
            max_early_data=nst.max_early_data_size or 0,
            alpn=self.alpn_protocol,
        )
        if self.config.session_ticket_store is not None:
            self.config.session_ticket_store.add(ticket)
        if self.on_session_ticket is not None:
            self.on_session_ticket(ticket)

    _handlers = {
        _State.CLIENT_START: {},
        _State.CLIENT_WAIT_SERVER_HELLO: {HandshakeType.server_hello: _handle_server_hello},
        _State.CLIENT_WAIT_ENCRYPTED_EXTENSIONS: {
            HandshakeType.encrypted_extensions: _handle_encrypted_extensions
        },
        _State.CLIENT_WAIT_CERTIFICATE_OR_REQUEST: {
            HandshakeType.certificate: _handle_certificate,
            HandshakeType.certificate_request: _handle_certificate_request,
        },
        _State.CLIENT_WAIT_CERTIFICATE: {HandshakeType.certificate: _handle_certificate},
        _State.CLIENT_WAIT_CERTIFICATE_VERIFY: {
            HandshakeType.certificate_verify: _handle_certificate_verify
        },
        _State.CLIENT_WAIT_FINISHED: {HandshakeType.finished: _handle_finished},
        _State.CLIENT_CONNECTED: {HandshakeType.new_session_ticket: _handle_new_session_ticket},
        _State.FAILED: {},
    }


# =============================================================================
# Server
# =============================================================================


class ServerHandshake(_Handshake):
    """The server side of a TLS 1.3 handshake over QUIC.

    Drivers: call :meth:`receive` for every chunk of CRYPTO data; after each
    call send :attr:`output` and install the secrets reported through
    ``on_secret``. After completion :meth:`send_session_ticket` may add more
    tickets.

    :param config: TLS settings (certificate chain, ALPN, tickets, 0-RTT).
    :param transport_parameters: our encoded QUIC transport parameters; may
        instead be assigned to the attribute before the first receive().
    :param remote_address: the client's address, passed to
        ``config.get_config_for_client``.
    """

    def __init__(
        self,
        config: TLSConfig,
        transport_parameters: bytes | None = None,
        remote_address: Any = None,
    ) -> None:
        super().__init__(config, is_client=False)
        self.transport_parameters = transport_parameters
        self.remote_address = remote_address
        #: engine data sealed into issued tickets (e.g. 0-RTT transport parameters)
        self.ticket_app_data: bytes = b""
        #: ``ticket_app_data`` of the ticket this connection resumed, if any
        self.resumed_app_data: bytes | None = None
        self._state = _State.SERVER_WAIT_CLIENT_HELLO
        self._retry_group: int | None = None
        self._retry_cookie: bytes | None = None
        self._client_requested_certificate = False
        self._ticket_nonce = 0
        self._psk_index: int | None = None

    # -- ClientHello ---------------------------------------------------------------

    def _handle_client_hello(self, message: bytes) -> None:
        hello = pull_client_hello(message)
        is_retry = self._state == _State.SERVER_WAIT_SECOND_CLIENT_HELLO
        self._check_client_hello(hello)
        if not is_retry:
            self._client_random = hello.random
            self._choose_config(hello)
        config = self.config
        self.server_name = hello.server_name
        if hello.quic_transport_parameters is None:
            raise _alert(_A.missing_extension, "client sent no quic_transport_parameters")
        self.peer_transport_parameters = hello.quic_transport_parameters

        suite = next((s for s in config.cipher_suites if s in hello.cipher_suites), None)
        if suite is None:
            raise _alert(_A.handshake_failure, "no cipher suite in common")
        self.alpn_protocol = self._choose_alpn(hello)

        if hello.supported_groups is None or hello.key_shares is None:
            raise _alert(_A.missing_extension, "ClientHello lacks supported_groups or key_share")
        shares = dict(hello.key_shares)
        group = next((g for g in config.groups if g in shares), None)

        if is_retry:
            if hello.cookie != self._retry_cookie:
                raise _alert(_A.illegal_parameter, "cookie does not match the HelloRetryRequest")
            if suite != self.cipher_suite:
                raise _alert(_A.illegal_parameter, "second ClientHello changed the cipher suite")
            if len(hello.key_shares) != 1 or hello.key_shares[0][0] != self._retry_group:
                raise _alert(_A.illegal_parameter, "second ClientHello lacks the requested key share")
            if hello.early_data:
                raise _alert(_A.illegal_parameter, "early_data after HelloRetryRequest")
            group = self._retry_group
        elif group is None:
            retry_group = next((g for g in config.groups if g in hello.supported_groups), None)
            if retry_group is None:
                raise _alert(_A.handshake_failure, "no key exchange group in common")
            self._send_hello_retry_request(hello, message, suite, retry_group)
            return

        self.cipher_suite = CipherSuite(suite)
        self.group = Group(group)
        transcript = self._transcript
        if transcript.hash_name is None:
            transcript.set_hash(CIPHER_SUITE_HASH[suite])
        self._key_schedule = KeySchedule(suite)
        ticket_state = None
        if hello.pre_shared_key:
            # The binders cover the ClientHello up to the binders list
            # (RFC 8446 §4.2.11.2): hash that prefix once, then the rest.
            transcript.update(message[: hello.binders_offset])
            ticket_state = self._accept_psk(hello)
            transcript.update(message[hello.binders_offset :])
        else:
            transcript.update(message)
        if ticket_state is None:
            self._key_schedule.extract(None)
        if ticket_state is not None and hello.early_data and self._accept_early_data(
            hello, ticket_state
        ):
            self.early_data_accepted = True
            secret = self._key_schedule.derive_secret(b"c e traffic", transcript.digest())
            self._install_secret(Level.ZERO_RTT, False, secret, "CLIENT_EARLY_TRAFFIC_SECRET")

        server_share, shared_secret = server_key_exchange(group, shares[group])
        server_hello = ServerHello(
            random=os.urandom(32),
            legacy_session_id_echo=hello.legacy_session_id,
            cipher_suite=suite,
            key_share=(group, server_share),
            selected_identity=0 if self.session_resumed else None,
        )
        self._send(Level.INITIAL, push_server_hello(server_hello))
        self._derive_handshake_secrets(shared_secret)

        if self.transport_parameters is None:
            raise _alert(_A.internal_error, "server transport parameters are not set")
        self._send(
            Level.HANDSHAKE,
            push_encrypted_extensions(
                EncryptedExtensions(
                    alpn_protocol=self.alpn_protocol,
                    early_data=self.early_data_accepted,
                    quic_transport_parameters=self.transport_parameters,
                )
            ),
        )
        if not self.session_resumed:
            self._send_server_certificate(hello)
        verify_data = self._key_schedule.finished_verify_data(
            self._server_handshake_secret, transcript.digest()
        )
        self._send(Level.HANDSHAKE, push_finished(Finished(verify_data)))
        server_secret = self._derive_application_secrets()
        self._install_secret(Level.ONE_RTT, True, server_secret, "SERVER_TRAFFIC_SECRET_0")
        self._state = (
            _State.SERVER_WAIT_CERTIFICATE
            if self._client_requested_certificate
            else _State.SERVER_WAIT_FINISHED
        )

    def _check_client_hello(self, hello: ClientHello) -> None:
        if hello.supported_versions is None or TLS_VERSION_1_3 not in hello.supported_versions:
            raise _alert(_A.protocol_version, "client does not offer TLS 1.3")
        if hello.legacy_session_id:
            # RFC 9001 §8.4: no middlebox compatibility mode in QUIC
            raise _alert(_A.illegal_parameter, "legacy_session_id must be empty in QUIC")
        if hello.legacy_compression_methods != b"\x00":
            raise _alert(_A.illegal_parameter, "legacy_compression_methods must be [null]")
        if hello.pre_shared_key is not None and hello.extension_types[-1] != ExtensionType.pre_shared_key:
            raise _alert(_A.illegal_parameter, "pre_shared_key is not the last extension")
        if hello.key_shares is not None:
            seen = set()
            for group, _ in hello.key_shares:
                if group in seen:
                    raise _alert(_A.illegal_parameter, "duplicate key_share group")
                if hello.supported_groups is not None and group not in hello.supported_groups:
                    raise _alert(_A.illegal_parameter, "key_share for a group not in supported_groups")
                seen.add(group)

    def _choose_config(self, hello: ClientHello) -> None:
        callback = self.config.get_config_for_client
        if callback is not None:
            chosen = callback(
                ClientHelloInfo(hello.server_name, hello.alpn_protocols, self.remote_address)
            )
            if chosen is not None:
                self.config = chosen

    def _choose_alpn(self, hello: ClientHello) -> str | None:
        ours = self.config.alpn_protocols
        if not ours:
            return None
        theirs = hello.alpn_protocols or []
        for protocol in ours:
            if protocol in theirs:
                return protocol
        raise _alert(
            _A.no_application_protocol,
            f"no ALPN protocol in common (client offered {theirs!r}, server accepts {ours!r})",
        )

    def _send_hello_retry_request(
        self, hello: ClientHello, message: bytes, suite: int, group: int
    ) -> None:
        self.cipher_suite = CipherSuite(suite)
        self._retry_group = group
        self._retry_cookie = os.urandom(16)
        retry = ServerHello(
            random=HELLO_RETRY_REQUEST_RANDOM,
            legacy_session_id_echo=hello.legacy_session_id,
            cipher_suite=suite,
            key_share=(group, b""),
            cookie=self._retry_cookie,
        )
        transcript = self._transcript
        transcript.set_hash(CIPHER_SUITE_HASH[suite])
        transcript.update(message)
        transcript.restart_for_retry()
        self._send(Level.INITIAL, push_server_hello(retry))
        self._state = _State.SERVER_WAIT_SECOND_CLIENT_HELLO

    def _accept_psk(self, hello: ClientHello) -> ServerTicketState | None:
        """Return the resumed ticket's state if its PSK is accepted.

        The transcript must hold exactly the ClientHello up to its binders.
        """
        if hello.psk_key_exchange_modes is None:
            raise _alert(_A.missing_extension, "pre_shared_key without psk_key_exchange_modes")
        if PSK_DHE_KE not in hello.psk_key_exchange_modes:
            return None
        config = self.config
        keyring = config.ticket_keyring()
        now = config.clock()
        hash_name = CIPHER_SUITE_HASH[self.cipher_suite]
        offered = hello.pre_shared_key
        for index, (identity, _age) in enumerate(offered.identities):
            plaintext = keyring.open(identity)
            if plaintext is None:
                continue
            try:
                state = ServerTicketState.from_bytes(plaintext)
            except ValueError:
                continue
            if CIPHER_SUITE_HASH.get(state.cipher_suite) != hash_name:
                continue
            if not state.issued_at <= now < state.issued_at + state.lifetime:
                continue
            if state.server_name != hello.server_name:
                continue
            ks = self._key_schedule
            ks.extract(state.resumption_secret)
            expected = ks.binder(False, self._transcript.digest())
            if not hmac.compare_digest(expected, offered.binders[index]):
                raise _alert(_A.decrypt_error, "PSK binder does not verify")
            self.session_resumed = True
            self.resumed_app_data = state.app_data
            self._psk_index = index
            return state
        return None

    def _accept_early_data(self, hello: ClientHello, state: ServerTicketState) -> bool:
        config = self.config
        if not (
            config.allow_early_data
            and self._psk_index == 0
            and state.max_early_data > 0
            and state.cipher_suite == self.cipher_suite
            and state.alpn == self.alpn_protocol
        ):
            return False
        now = config.clock()
        # RFC 8446 §8.3: the client's view of the ticket age must be fresh.
        client_age_ms = (hello.pre_shared_key.identities[0][1] - state.age_add) & 0xFFFFFFFF
        server_age_ms = (now - state.issued_at) * 1000
        if abs(server_age_ms - client_age_ms) > config.max_early_data_age_skew * 1000:
            return False
        # RFC 8446 §8.1: each ticket carries 0-RTT at most once.
        return config.anti_replay.check_and_record(
            state.ticket_id, state.issued_at + state.lifetime, now
        )

    def _send_server_certificate(self, hello: ClientHello) -> None:
        config = self.config
        if config.private_key is None:
            raise _alert(_A.handshake_failure, "server has no certificate")
        if hello.signature_algorithms is None:
            raise _alert(_A.missing_extension, "ClientHello lacks signature_algorithms")
        if config.effective_verify_mode(False) != ssl.CERT_NONE:
            self._client_requested_certificate = True
            self._send(
                Level.HANDSHAKE,
                push_certificate_request(
                    CertificateRequest(b"", list(config.signature_algorithms))
                ),
            )
        if not self._send_certificate(
            Level.HANDSHAKE, b"", hello.signature_algorithms, SERVER_CONTEXT
        ):
            raise _alert(_A.handshake_failure, "no signature scheme in common")

    # -- client authentication and Finished ---------------------------------------------

    def _handle_certificate(self, message: bytes) -> None:
        certificate = pull_certificate(message)
        if certificate.request_context:
            raise _alert(_A.illegal_parameter, "client Certificate context does not match")
        config = self.config
        if not certificate.certificates:
            if config.effective_verify_mode(False) == ssl.CERT_REQUIRED:
                raise _alert(_A.certificate_required, "client sent no certificate")
            self._transcript.update(message)
            self._state = _State.SERVER_WAIT_FINISHED
            return
        self.peer_certificates = _parse_certificates(certificate.certificates)
        _verify_chain(
            verify_client_certificates, config.trust_store(), self.peer_certificates, config.clock()
        )
        self._run_verify_callback(None)
        self._transcript.update(message)
        self._state = _State.SERVER_WAIT_CERTIFICATE_VERIFY

    def _handle_certificate_verify(self, message: bytes) -> None:
        self._check_certificate_verify(message, CLIENT_CONTEXT)
        self._state = _State.SERVER_WAIT_FINISHED

    def _handle_finished(self, message: bytes) -> None:
        self._verify_finished(self._client_handshake_secret, message)
        self._resumption_master_secret = self._key_schedule.derive_secret(
            b"res master", self._transcript.digest()
        )
        self._install_secret(
            Level.ONE_RTT, False, self._client_application_secret, "CLIENT_TRAFFIC_SECRET_0"
        )
        self.handshake_complete = True
        self._state = _State.SERVER_CONNECTED
        if self.config.session_tickets:
            self.send_session_ticket()

    def send_session_ticket(self) -> None:
        """Queue a NewSessionTicket in ``output[Level.ONE_RTT]``.

        Sent automatically once after completion when
        ``config.session_tickets`` is set; call again for more tickets.
        """
        if not self.handshake_complete:
            raise RuntimeError("session tickets can only be sent after the handshake")
        config = self.config
        nonce = self._ticket_nonce.to_bytes(8, "big")
        self._ticket_nonce += 1
        lifetime = min(int(config.ticket_lifetime), MAX_TICKET_LIFETIME)
        max_early_data = config.max_early_data if config.allow_early_data else 0
        state = ServerTicketState(
            cipher_suite=int(self.cipher_suite),
            resumption_secret=self._key_schedule.resumption_psk(
                self._resumption_master_secret, nonce
            ),
            issued_at=config.clock(),
            age_add=int.from_bytes(os.urandom(4), "big"),
            lifetime=lifetime,
            max_early_data=max_early_data,
            alpn=self.alpn_protocol,
            server_name=self.server_name,
            app_data=self.ticket_app_data,
        )
        ticket = config.ticket_keyring().seal(state.to_bytes())
        nst = NewSessionTicket(
            ticket_lifetime=lifetime,
            ticket_age_add=state.age_add,
            ticket_nonce=nonce,
            ticket=ticket,
            max_early_data_size=max_early_data if config.allow_early_data else None,
        )
        self.output[Level.ONE_RTT] += push_new_session_ticket(nst)

    _handlers = {
        _State.SERVER_WAIT_CLIENT_HELLO: {HandshakeType.client_hello: _handle_client_hello},
        _State.SERVER_WAIT_SECOND_CLIENT_HELLO: {HandshakeType.client_hello: _handle_client_hello},
        _State.SERVER_WAIT_CERTIFICATE: {HandshakeType.certificate: _handle_certificate},
        _State.SERVER_WAIT_CERTIFICATE_VERIFY: {
            HandshakeType.certificate_verify: _handle_certificate_verify
        },
        _State.SERVER_WAIT_FINISHED: {HandshakeType.finished: _handle_finished},
        _State.SERVER_CONNECTED: {},
        _State.FAILED: {},
    }
