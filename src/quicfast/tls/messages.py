"""TLS 1.3 handshake message codec: ``pull_<msg>`` parses, ``push_<msg>`` serializes.

Implements RFC 8446 §4 (handshake message formats: ClientHello, ServerHello
and HelloRetryRequest, EncryptedExtensions, CertificateRequest, Certificate,
CertificateVerify, Finished, NewSessionTicket), RFC 8446 §4.2 (extensions),
RFC 6066 §3 (server_name), RFC 7301 §3.1 (ALPN) and RFC 9001 §8.2
(quic_transport_parameters).

Strategy: a message body is parsed with a :class:`Reader` that walks an
immutable ``bytes`` object with an integer cursor; every read is bounds
checked and any shortfall, trailing byte or malformed vector raises
``AlertError(decode_error)``. Extensions are parsed into typed attributes of
the message object; unknown extensions are skipped, a repeated extension
raises ``illegal_parameter``. Whether an extension is *allowed* in a given
message is a protocol decision left to ``context.py``, so each parsed message
also records ``extension_types`` in wire order.

Serializers return ``bytes`` of the complete handshake message (4-byte
header included) so that the exact octets go both on the wire and into the
transcript hash without being re-serialized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from struct import unpack as _struct_unpack

from .alerts import AlertDescription, AlertError

__all__ = [
    "HandshakeType",
    "ExtensionType",
    "Reader",
    "ClientHello",
    "ServerHello",
    "EncryptedExtensions",
    "CertificateRequest",
    "Certificate",
    "CertificateVerify",
    "Finished",
    "NewSessionTicket",
    "OfferedPsks",
    "HELLO_RETRY_REQUEST_RANDOM",
    "TLS_VERSION_1_2",
    "TLS_VERSION_1_3",
    "MAX_HANDSHAKE_MESSAGE_SIZE",
]

TLS_VERSION_1_2 = 0x0303
TLS_VERSION_1_3 = 0x0304

#: A handshake message body larger than this is refused (defence against
#: memory exhaustion; real messages are a few KiB).
MAX_HANDSHAKE_MESSAGE_SIZE = 65536

#: ServerHello.random value that marks a HelloRetryRequest (RFC 8446 §4.1.3).
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

#: psk_key_exchange_modes value for PSK with (EC)DHE (RFC 8446 §4.2.9).
PSK_DHE_KE = 1


class HandshakeType(IntEnum):
    """HandshakeType values (RFC 8446 §4)."""

    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    certificate_request = 13
    certificate_verify = 15
    finished = 20
    key_update = 24
    message_hash = 254


class ExtensionType(IntEnum):
    """ExtensionType values used by TLS 1.3 over QUIC (RFC 8446 §4.2)."""

    server_name = 0
    supported_groups = 10
    signature_algorithms = 13
    application_layer_protocol_negotiation = 16
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    signature_algorithms_cert = 50
    key_share = 51
    quic_transport_parameters = 0x39


_DECODE_ERROR = AlertDescription.decode_error


def _decode_error(what: str) -> AlertError:
    return AlertError(_DECODE_ERROR, what)


class Reader:
    """A bounds-checked cursor over ``data[pos:end]``.

    Every method raises ``AlertError(decode_error)`` instead of reading past
    ``end``.
    """

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def eof(self) -> bool:
        """True when every byte has been consumed."""
        return self.pos >= self.end

    def expect_end(self, what: str) -> None:
        """Raise decode_error if bytes remain (trailing garbage in ``what``)."""
        if self.pos != self.end:
            raise _decode_error(f"trailing bytes in {what}")

    def uint8(self) -> int:
        """Read one byte."""
        pos = self.pos
        if pos >= self.end:
            raise _decode_error("truncated message")
        self.pos = pos + 1
        return self.data[pos]

    def uint16(self) -> int:
        """Read a big-endian 16-bit integer."""
        pos = self.pos
        if pos + 2 > self.end:
            raise _decode_error("truncated message")
        self.pos = pos + 2
        data = self.data
        return (data[pos] << 8) | data[pos + 1]

    def uint24(self) -> int:
        """Read a big-endian 24-bit integer."""
        return int.from_bytes(self.bytes(3), "big")

    def uint32(self) -> int:
        """Read a big-endian 32-bit integer."""
        return int.from_bytes(self.bytes(4), "big")

    def bytes(self, length: int) -> bytes:
        """Read exactly ``length`` bytes."""
        pos = self.pos
        stop = pos + length
        if stop > self.end:
            raise _decode_error("truncated message")
        self.pos = stop
        return self.data[pos:stop]

    def _span(self, length_size: int, minimum: int) -> tuple[int, int]:
        """Consume a ``length_size``-byte length and that many bytes; their span.

        Inlined reads (no uint8/uint16 calls): vectors are most of the
        fields of a handshake message.
        """
        data = self.data
        pos = self.pos
        start = pos + length_size
        if start > self.end:
            raise _decode_error("truncated message")
        if length_size == 1:
            length = data[pos]
        elif length_size == 2:
            length = (data[pos] << 8) | data[pos + 1]
        else:
            length = int.from_bytes(data[pos:start], "big")
        if length < minimum:
            raise _decode_error("vector too short")
        stop = start + length
        if stop > self.end:
            raise _decode_error("truncated vector")
        self.pos = stop
        return start, stop

    def vector(self, length_size: int, minimum: int = 0) -> bytes:
        """Read ``opaque x<minimum..2^(8*length_size)-1>``."""
        start, stop = self._span(length_size, minimum)
        return self.data[start:stop]

    def sub(self, length_size: int, minimum: int = 0) -> "Reader":
        """Return a Reader limited to the next length-prefixed vector."""
        start, stop = self._span(length_size, minimum)
        return Reader(self.data, start, stop)

    def uint16_list(self, length_size: int = 2, minimum: int = 2) -> list[int]:
        """Read a vector of uint16 values."""
        raw = self.vector(length_size, minimum)
        count, odd = divmod(len(raw), 2)
        if odd:
            raise _decode_error("odd-length uint16 vector")
        return list(_struct_unpack(f">{count}H", raw))


# --- serialization helpers -------------------------------------------------


def vec1(data: bytes) -> bytes:
    """``opaque<0..255>``."""
    return bytes((len(data),)) + data


def vec2(data: bytes) -> bytes:
    """``opaque<0..2^16-1>``."""
    return len(data).to_bytes(2, "big") + data


def vec3(data: bytes) -> bytes:
    """``opaque<0..2^24-1>``."""
    return len(data).to_bytes(3, "big") + data


def uint16_vector(values: list[int], length_size: int = 2) -> bytes:
    """A vector of uint16 values."""
    body = b"".join(v.to_bytes(2, "big") for v in values)
    return len(body).to_bytes(length_size, "big") + body


def handshake_message(msg_type: int, body: bytes) -> bytes:
    """Prefix ``body`` with the 4-byte handshake header (RFC 8446 §4)."""
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


def extension(ext_type: int, data: bytes) -> bytes:
    """One Extension structure (RFC 8446 §4.2)."""
    return ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


# Plain-int copies of the extension codes the parsers branch on: each
# ``ExtensionType.x`` in an elif chain is an attribute lookup on the enum
# class (about 0.15 us), a dozen per extension in a ClientHello.
_SERVER_NAME = int(ExtensionType.server_name)
_SUPPORTED_GROUPS = int(ExtensionType.supported_groups)
_SIGNATURE_ALGORITHMS = int(ExtensionType.signature_algorithms)
_ALPN = int(ExtensionType.application_layer_protocol_negotiation)
_PRE_SHARED_KEY = int(ExtensionType.pre_shared_key)
_EARLY_DATA = int(ExtensionType.early_data)
_SUPPORTED_VERSIONS = int(ExtensionType.supported_versions)
_COOKIE = int(ExtensionType.cookie)
_PSK_KEY_EXCHANGE_MODES = int(ExtensionType.psk_key_exchange_modes)
_SIGNATURE_ALGORITHMS_CERT = int(ExtensionType.signature_algorithms_cert)
_KEY_SHARE = int(ExtensionType.key_share)
_QUIC_TRANSPORT_PARAMETERS = int(ExtensionType.quic_transport_parameters)


def _iter_extensions(reader: Reader) -> list[tuple[int, Reader]]:
    """``(type, Reader)`` for each extension of the next block, in wire order.

    Rejects a truncated block (decode_error) and a repeated extension
    (illegal_parameter). One tight loop over the bytes, not a Reader call
    per field.
    """
    block = reader.sub(2)
    data = block.data
    pos = block.pos
    end = block.end
    seen: set[int] = set()
    extensions = []
    while pos < end:
        if pos + 4 > end:
            raise _decode_error("truncated message")
        ext_type = (data[pos] << 8) | data[pos + 1]
        start = pos + 4
        pos = start + ((data[pos + 2] << 8) | data[pos + 3])
        if pos > end:
            raise _decode_error("truncated vector")
        if ext_type in seen:
            raise AlertError(
                AlertDescription.illegal_parameter, f"duplicate extension {ext_type}"
            )
        seen.add(ext_type)
        extensions.append((ext_type, Reader(data, start, pos)))
    return extensions


def _trailing(ext_type: int) -> AlertError:
    return _decode_error(f"trailing bytes in extension {ext_type}")


def _pull_alpn_list(ext: Reader) -> list[str]:
    names = ext.sub(2, 2)
    protocols = []
    while not names.eof():
        protocols.append(names.vector(1, 1).decode("latin-1"))
    ext.expect_end("ALPN extension")
    return protocols


def _push_alpn_list(protocols: "list[str] | tuple[str, ...]") -> bytes:
    return vec2(b"".join(vec1(p.encode("latin-1")) for p in protocols))


def _pull_server_name(ext: Reader) -> str | None:
    names = ext.sub(2, 1)
    host = None
    while not names.eof():
        name_type = names.uint8()
        name = names.vector(2, 1)
        if name_type == 0 and host is None:
            try:
                host = name.decode("ascii")
            except UnicodeDecodeError:
                raise _decode_error("server_name is not ASCII") from None
    ext.expect_end("server_name extension")
    return host


def _pull_key_share_entry(reader: Reader) -> tuple[int, bytes]:
    group = reader.uint16()
    return group, reader.vector(2, 1)


# --- ClientHello -------------------------------------------------------------


@dataclass
class OfferedPsks:
    """The pre_shared_key extension of a ClientHello (RFC 8446 §4.2.11).

    ``identities`` holds ``(ticket, obfuscated_ticket_age)`` pairs.
    """

    identities: list[tuple[bytes, int]]
    binders: list[bytes]


@dataclass
class ClientHello:
    """ClientHello (RFC 8446 §4.1.2) with its parsed extensions."""

    random: bytes = b""
    legacy_session_id: bytes = b""
    cipher_suites: list[int] = field(default_factory=list)
    legacy_compression_methods: bytes = b"\x00"
    server_name: str | None = None
    supported_versions: list[int] | None = None
    supported_groups: list[int] | None = None
    key_shares: list[tuple[int, bytes]] | None = None
    signature_algorithms: list[int] | None = None
    signature_algorithms_cert: list[int] | None = None
    alpn_protocols: list[str] | None = None
    psk_key_exchange_modes: list[int] | None = None
    pre_shared_key: OfferedPsks | None = None
    early_data: bool = False
    cookie: bytes | None = None
    quic_transport_parameters: bytes | None = None
    #: extension types in wire order (including unknown ones)
    extension_types: list[int] = field(default_factory=list)
    #: length of the message prefix covered by the PSK binders
    #: (RFC 8446 §4.2.11.2), 0 if no pre_shared_key
    binders_offset: int = 0


def pull_client_hello(message: bytes) -> ClientHello:
    """Parse a complete ClientHello message, 4-byte header included."""
    reader = Reader(message, 4)
    hello = ClientHello()
    if reader.uint16() != TLS_VERSION_1_2:
        raise AlertError(AlertDescription.protocol_version, "legacy_version is not TLS 1.2")
    hello.random = reader.bytes(32)
    hello.legacy_session_id = reader.vector(1)
    if len(hello.legacy_session_id) > 32:
        raise _decode_error("legacy_session_id too long")
    hello.cipher_suites = reader.uint16_list(2, 2)
    hello.legacy_compression_methods = reader.vector(1, 1)
    if reader.eof():
        raise AlertError(AlertDescription.missing_extension, "ClientHello has no extensions")
    types = hello.extension_types
    for ext_type, ext in _iter_extensions(reader):
        types.append(ext_type)
        if ext_type == _SUPPORTED_VERSIONS:
            hello.supported_versions = ext.uint16_list(1, 2)
        elif ext_type == _KEY_SHARE:
            shares = ext.sub(2)
            entries = []
            while not shares.eof():
                entries.append(_pull_key_share_entry(shares))
            hello.key_shares = entries
        elif ext_type == _SUPPORTED_GROUPS:
            hello.supported_groups = ext.uint16_list(2, 2)
        elif ext_type == _SIGNATURE_ALGORITHMS:
            hello.signature_algorithms = ext.uint16_list(2, 2)
        elif ext_type == _SIGNATURE_ALGORITHMS_CERT:
            hello.signature_algorithms_cert = ext.uint16_list(2, 2)
        elif ext_type == _SERVER_NAME:
            hello.server_name = _pull_server_name(ext)
        elif ext_type == _ALPN:
            hello.alpn_protocols = _pull_alpn_list(ext)
        elif ext_type == _QUIC_TRANSPORT_PARAMETERS:
            hello.quic_transport_parameters = ext.bytes(ext.end - ext.pos)
        elif ext_type == _PSK_KEY_EXCHANGE_MODES:
            hello.psk_key_exchange_modes = list(ext.vector(1, 1))
        elif ext_type == _EARLY_DATA:
            hello.early_data = True
        elif ext_type == _COOKIE:
            hello.cookie = ext.vector(2, 1)
        elif ext_type == _PRE_SHARED_KEY:
            identities_reader = ext.sub(2, 7)
            identities = []
            while not identities_reader.eof():
                identity = identities_reader.vector(2, 1)
                identities.append((identity, identities_reader.uint32()))
            hello.binders_offset = ext.pos
            binders_reader = ext.sub(2, 33)
            binders = []
            while not binders_reader.eof():
                binders.append(binders_reader.vector(1, 32))
            if len(binders) != len(identities):
                raise AlertError(
                    AlertDescription.illegal_parameter,
                    "pre_shared_key binder count differs from identity count",
                )
            hello.pre_shared_key = OfferedPsks(identities, binders)
        else:
            continue  # unknown extension: ignored (RFC 8446 §4.2)
        if ext.pos != ext.end:
            raise _trailing(ext_type)
    reader.expect_end("ClientHello")
    return hello


def _as_tuple(values: list | None) -> tuple | None:
    return None if values is None else tuple(values)


@lru_cache(maxsize=256)
def _static_client_extensions(
    server_name: str | None,
    versions: tuple[int, ...] | None,
    groups: tuple[int, ...] | None,
    signature_algorithms: tuple[int, ...] | None,
    signature_algorithms_cert: tuple[int, ...] | None,
    alpn: tuple[str, ...] | None,
    psk_modes: tuple[int, ...] | None,
) -> bytes:
    """The ClientHello extensions that depend on configuration only.

    One client config produces the same bytes for every connection, so
    they are built once (server_name, supported_versions, supported_groups,
    signature_algorithms(_cert), ALPN, psk_key_exchange_modes, in that order).
    """
    exts = []
    if server_name is not None:
        name = server_name.encode("ascii")
        exts.append(extension(ExtensionType.server_name, vec2(b"\x00" + vec2(name))))
    if versions is not None:
        exts.append(extension(ExtensionType.supported_versions, uint16_vector(list(versions), 1)))
    for ext_type, values in (
        (ExtensionType.supported_groups, groups),
        (ExtensionType.signature_algorithms, signature_algorithms),
        (ExtensionType.signature_algorithms_cert, signature_algorithms_cert),
    ):
        if values is not None:
            exts.append(extension(ext_type, uint16_vector(list(values))))
    if alpn is not None:
        exts.append(
            extension(ExtensionType.application_layer_protocol_negotiation, _push_alpn_list(alpn))
        )
    if psk_modes is not None:
        exts.append(extension(ExtensionType.psk_key_exchange_modes, vec1(bytes(psk_modes))))
    return b"".join(exts)


def push_client_hello(hello: ClientHello) -> bytes:
    """Serialize a ClientHello; pre_shared_key, if any, goes last.

    Binders are written as given; a caller computing binders serializes with
    placeholders of the right length first, hashes the prefix
    ``message[:len(message) - binders_length(...)]`` and serializes again.
    """
    exts = [
        _static_client_extensions(
            hello.server_name,
            _as_tuple(hello.supported_versions),
            _as_tuple(hello.supported_groups),
            _as_tuple(hello.signature_algorithms),
            _as_tuple(hello.signature_algorithms_cert),
            _as_tuple(hello.alpn_protocols),
            _as_tuple(hello.psk_key_exchange_modes),
        )
    ]
    if hello.key_shares is not None:
        shares = b"".join(g.to_bytes(2, "big") + vec2(k) for g, k in hello.key_shares)
        exts.append(extension(ExtensionType.key_share, vec2(shares)))
    if hello.quic_transport_parameters is not None:
        exts.append(
            extension(ExtensionType.quic_transport_parameters, hello.quic_transport_parameters)
        )
    if hello.cookie is not None:
        exts.append(extension(ExtensionType.cookie, vec2(hello.cookie)))
    if hello.early_data:
        exts.append(extension(ExtensionType.early_data, b""))
    if hello.pre_shared_key is not None:
        psk = hello.pre_shared_key
        identities = b"".join(vec2(i) + a.to_bytes(4, "big") for i, a in psk.identities)
        binders = b"".join(vec1(b) for b in psk.binders)
        exts.append(extension(ExtensionType.pre_shared_key, vec2(identities) + vec2(binders)))
    body = b"".join(
        (
            TLS_VERSION_1_2.to_bytes(2, "big"),
            hello.random,
            vec1(hello.legacy_session_id),
            uint16_vector(hello.cipher_suites),
            vec1(hello.legacy_compression_methods),
            vec2(b"".join(exts)),
        )
    )
    return handshake_message(HandshakeType.client_hello, body)


def binders_length(binders: list[bytes]) -> int:
    """Size of the serialized binders list at the end of a ClientHello."""
    return 2 + sum(1 + len(b) for b in binders)


# --- ServerHello / HelloRetryRequest -----------------------------------------


@dataclass
class ServerHello:
    """ServerHello or HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4).

    For a HelloRetryRequest, ``key_share`` carries only the selected group
    (``(group, b"")``).
    """

    random: bytes = b""
    legacy_session_id_echo: bytes = b""
    cipher_suite: int = 0
    legacy_compression_method: int = 0
    supported_version: int | None = None
    key_share: tuple[int, bytes] | None = None
    selected_identity: int | None = None
    cookie: bytes | None = None
    extension_types: list[int] = field(default_factory=list)

    @property
    def is_hello_retry_request(self) -> bool:
        """True if this is a HelloRetryRequest."""
        return self.random == HELLO_RETRY_REQUEST_RANDOM


def pull_server_hello(message: bytes) -> ServerHello:
    """Parse a complete ServerHello/HelloRetryRequest, header included."""
    reader = Reader(message, 4)
    hello = ServerHello()
    if reader.uint16() != TLS_VERSION_1_2:
        raise AlertError(AlertDescription.protocol_version, "legacy_version is not TLS 1.2")
    hello.random = reader.bytes(32)
    is_retry = hello.random == HELLO_RETRY_REQUEST_RANDOM
    hello.legacy_session_id_echo = reader.vector(1)
    if len(hello.legacy_session_id_echo) > 32:
        raise _decode_error("legacy_session_id too long")
    hello.cipher_suite = reader.uint16()
    hello.legacy_compression_method = reader.uint8()
    for ext_type, ext in _iter_extensions(reader):
        hello.extension_types.append(ext_type)
        if ext_type == _SUPPORTED_VERSIONS:
            hello.supported_version = ext.uint16()
        elif ext_type == _KEY_SHARE:
            if is_retry:
                hello.key_share = (ext.uint16(), b"")
            else:
                hello.key_share = _pull_key_share_entry(ext)
        elif ext_type == _PRE_SHARED_KEY:
            hello.selected_identity = ext.uint16()
        elif ext_type == _COOKIE:
            hello.cookie = ext.vector(2, 1)
        else:
            continue
        if ext.pos != ext.end:
            raise _trailing(ext_type)
    reader.expect_end("ServerHello")
    return hello


def push_server_hello(hello: ServerHello) -> bytes:
    """Serialize a ServerHello or HelloRetryRequest."""
    exts = [extension(ExtensionType.supported_versions, TLS_VERSION_1_3.to_bytes(2, "big"))]
    if hello.key_share is not None:
        group, key = hello.key_share
        if hello.random == HELLO_RETRY_REQUEST_RANDOM:
            exts.append(extension(ExtensionType.key_share, group.to_bytes(2, "big")))
        else:
            exts.append(extension(ExtensionType.key_share, group.to_bytes(2, "big") + vec2(key)))
    if hello.selected_identity is not None:
        exts.append(
            extension(ExtensionType.pre_shared_key, hello.selected_identity.to_bytes(2, "big"))
        )
    if hello.cookie is not None:
        exts.append(extension(ExtensionType.cookie, vec2(hello.cookie)))
    body = b"".join(
        (
            TLS_VERSION_1_2.to_bytes(2, "big"),
            hello.random,
            vec1(hello.legacy_session_id_echo),
            hello.cipher_suite.to_bytes(2, "big"),
            bytes((hello.legacy_compression_method,)),
            vec2(b"".join(exts)),
        )
    )
    return handshake_message(HandshakeType.server_hello, body)


# --- EncryptedExtensions ------------------------------------------------------


@dataclass
class EncryptedExtensions:
    """EncryptedExtensions (RFC 8446 §4.3.1)."""

    alpn_protocol: str | None = None
    early_data: bool = False
    quic_transport_parameters: bytes | None = None
    server_name_acknowledged: bool = False
    extension_types: list[int] = field(default_factory=list)


def pull_encrypted_extensions(message: bytes) -> EncryptedExtensions:
    """Parse a complete EncryptedExtensions message."""
    reader = Reader(message, 4)
    ee = EncryptedExtensions()
    for ext_type, ext in _iter_extensions(reader):
        ee.extension_types.append(ext_type)
        if ext_type == _ALPN:
            protocols = _pull_alpn_list(ext)
            if len(protocols) != 1:
                raise _decode_error("server ALPN must name exactly one protocol")
            ee.alpn_protocol = protocols[0]
        elif ext_type == _EARLY_DATA:
            ee.early_data = True
        elif ext_type == _QUIC_TRANSPORT_PARAMETERS:
            ee.quic_transport_parameters = ext.bytes(ext.end - ext.pos)
        elif ext_type == _SERVER_NAME:
            ee.server_name_acknowledged = True
        else:
            continue
        if ext.pos != ext.end:
            raise _trailing(ext_type)
    reader.expect_end("EncryptedExtensions")
    return ee


def push_encrypted_extensions(ee: EncryptedExtensions) -> bytes:
    """Serialize EncryptedExtensions."""
    exts = []
    if ee.server_name_acknowledged:
        exts.append(extension(ExtensionType.server_name, b""))
    if ee.alpn_protocol is not None:
        exts.append(
            extension(
                ExtensionType.application_layer_protocol_negotiation,
                _push_alpn_list([ee.alpn_protocol]),
            )
        )
    if ee.early_data:
        exts.append(extension(ExtensionType.early_data, b""))
    if ee.quic_transport_parameters is not None:
        exts.append(
            extension(ExtensionType.quic_transport_parameters, ee.quic_transport_parameters)
        )
    return handshake_message(HandshakeType.encrypted_extensions, vec2(b"".join(exts)))


# --- CertificateRequest ---------------------------------------------------------


@dataclass
class CertificateRequest:
    """CertificateRequest (RFC 8446 §4.3.2)."""

    request_context: bytes = b""
    signature_algorithms: list[int] | None = None
    signature_algorithms_cert: list[int] | None = None
    extension_types: list[int] = field(default_factory=list)


def pull_certificate_request(message: bytes) -> CertificateRequest:
    """Parse a complete CertificateRequest message."""
    reader = Reader(message, 4)
    request = CertificateRequest(request_context=reader.vector(1))
    for ext_type, ext in _iter_extensions(reader):
        request.extension_types.append(ext_type)
        if ext_type == _SIGNATURE_ALGORITHMS:
            request.signature_algorithms = ext.uint16_list(2, 2)
        elif ext_type == _SIGNATURE_ALGORITHMS_CERT:
            request.signature_algorithms_cert = ext.uint16_list(2, 2)
        else:
            continue
        if ext.pos != ext.end:
            raise _trailing(ext_type)
    reader.expect_end("CertificateRequest")
    if request.signature_algorithms is None:
        raise AlertError(
            AlertDescription.missing_extension, "CertificateRequest lacks signature_algorithms"
        )
    return request


def push_certificate_request(request: CertificateRequest) -> bytes:
    """Serialize a CertificateRequest."""
    exts = [
        extension(
            ExtensionType.signature_algorithms, uint16_vector(request.signature_algorithms or [])
        )
    ]
    if request.signature_algorithms_cert is not None:
        exts.append(
            extension(
                ExtensionType.signature_algorithms_cert,
                uint16_vector(request.signature_algorithms_cert),
            )
        )
    body = vec1(request.request_context) + vec2(b"".join(exts))
    return handshake_message(HandshakeType.certificate_request, body)


# --- Certificate ------------------------------------------------------------------


@dataclass
class Certificate:
    """Certificate (RFC 8446 §4.4.2): DER certificates, leaf first."""

    request_context: bytes = b""
    certificates: list[bytes] = field(default_factory=list)


def pull_certificate(message: bytes) -> Certificate:
    """Parse a complete Certificate message (per-entry extensions are skipped)."""
    reader = Reader(message, 4)
    certificate = Certificate(request_context=reader.vector(1))
    entries = reader.sub(3)
    while not entries.eof():
        certificate.certificates.append(entries.vector(3, 1))
        entries.vector(2)  # CertificateEntry extensions: none understood
    reader.expect_end("Certificate")
    return certificate


def push_certificate(certificate: Certificate) -> bytes:
    """Serialize a Certificate message."""
    entries = b"".join(vec3(der) + b"\x00\x00" for der in certificate.certificates)
    body = vec1(certificate.request_context) + vec3(entries)
    return handshake_message(HandshakeType.certificate, body)


# --- CertificateVerify / Finished -------------------------------------------------


@dataclass
class CertificateVerify:
    """CertificateVerify (RFC 8446 §4.4.3)."""

    algorithm: int
    signature: bytes


def pull_certificate_verify(message: bytes) -> CertificateVerify:
    """Parse a complete CertificateVerify message."""
    reader = Reader(message, 4)
    verify = CertificateVerify(reader.uint16(), reader.vector(2, 1))
    reader.expect_end("CertificateVerify")
    return verify


def push_certificate_verify(verify: CertificateVerify) -> bytes:
    """Serialize a CertificateVerify message."""
    body = verify.algorithm.to_bytes(2, "big") + vec2(verify.signature)
    return handshake_message(HandshakeType.certificate_verify, body)


@dataclass
class Finished:
    """Finished (RFC 8446 §4.4.4)."""

    verify_data: bytes


def pull_finished(message: bytes) -> Finished:
    """Parse a complete Finished message."""
    return Finished(message[4:])


def push_finished(finished: Finished) -> bytes:
    """Serialize a Finished message."""
    return handshake_message(HandshakeType.finished, finished.verify_data)


# --- NewSessionTicket ---------------------------------------------------------------


@dataclass
class NewSessionTicket:
    """NewSessionTicket (RFC 8446 §4.6.1)."""

    ticket_lifetime: int = 0
    ticket_age_add: int = 0
    ticket_nonce: bytes = b""
    ticket: bytes = b""
    max_early_data_size: int | None = None


def pull_new_session_ticket(message: bytes) -> NewSessionTicket:
    """Parse a complete NewSessionTicket message."""
    reader = Reader(message, 4)
    nst = NewSessionTicket(
        ticket_lifetime=reader.uint32(),
        ticket_age_add=reader.uint32(),
        ticket_nonce=reader.vector(1),
        ticket=reader.vector(2, 1),
    )
    for ext_type, ext in _iter_extensions(reader):
        if ext_type == _EARLY_DATA:
            nst.max_early_data_size = ext.uint32()
            ext.expect_end("early_data extension")
    reader.expect_end("NewSessionTicket")
    return nst


def push_new_session_ticket(nst: NewSessionTicket) -> bytes:
    """Serialize a NewSessionTicket message."""
    exts = b""
    if nst.max_early_data_size is not None:
        exts = extension(ExtensionType.early_data, nst.max_early_data_size.to_bytes(4, "big"))
    body = b"".join(
        (
            nst.ticket_lifetime.to_bytes(4, "big"),
            nst.ticket_age_add.to_bytes(4, "big"),
            vec1(nst.ticket_nonce),
            vec2(nst.ticket),
            vec2(exts),
        )
    )
    return handshake_message(HandshakeType.new_session_ticket, body)
