"""QUIC transport parameters: the typed record, its codec and its checks.

Implements RFC 9000 §18 (encoding, §18.2 definitions and value limits), §7.3
(authenticating connection IDs) and §7.4.1 (values remembered for 0-RTT), plus
the parameters defined by RFC 9368 §3 (version_information), RFC 9221 §3
(max_datagram_frame_size), RFC 9287 §3 (grease_quic_bit) and
draft-ietf-quic-ack-frequency (min_ack_delay).

Transport parameters are exchanged once per connection inside the TLS
handshake, so this module is plain Python.

Strategy: `decode_transport_parameters` walks the (id, length, value) triples
once. It rejects a truncated triple, a repeated id, a value whose length does
not fit its parameter's wire format, and a server-only parameter sent by a
client, and ignores ids it does not know (including the reserved
31 * N + 27 ones, RFC 9000 §18.1). It then checks the decoded record as a
whole (value ranges, cross-parameter rules) with the same function that
`encode_transport_parameters` uses on our own configuration (a quick test of
every rule first, rule by rule only when that test fails). Every problem in
a peer's parameters raises `quicfast.errors.TransportError` with
TRANSPORT_PARAMETER_ERROR and a reason naming the parameter; problems in our
own parameters raise `ValueError`.

The encoder keeps the encoding of the configuration-dependent parameters,
checked once per distinct set of values and role, and adds each connection's
connection IDs and reset token to it.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from operator import attrgetter

from ..errors import TransportError, TransportErrorCode
from .buffer import Buffer, BufferReadError, encode_varint

__all__ = [
    "PreferredAddress",
    "TransportParameters",
    "VersionInformation",
    "ZERO_RTT_REMEMBERED",
    "check_0rtt_compatible",
    "decode_transport_parameters",
    "encode_transport_parameters",
    "validate_connection_ids",
]

MAX_CID_LENGTH = 20  # RFC 9000 §17.2: connection IDs in QUIC v1 are at most 20 bytes
STATELESS_RESET_TOKEN_LENGTH = 16  # RFC 9000 §10.3
MIN_UDP_PAYLOAD_SIZE = 1200  # RFC 9000 §18.2 max_udp_payload_size
MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6
MAX_ACK_DELAY_EXPONENT = 20  # RFC 9000 §18.2 ack_delay_exponent
MAX_ACK_DELAY_LIMIT = 1 << 14  # RFC 9000 §18.2: max_ack_delay values of 2^14 or more are invalid
MIN_ACK_DELAY_LIMIT = 1 << 24  # draft-ietf-quic-ack-frequency: min_ack_delay values of 2^24 or more are invalid
MIN_ACTIVE_CONNECTION_ID_LIMIT = 2  # RFC 9000 §18.2 active_connection_id_limit


@dataclass(slots=True, frozen=True)
class PreferredAddress:
    """The server's preferred_address (RFC 9000 §18.2, §9.6).

    `ipv4_address` and `ipv6_address` are ``(host, port)`` or None when the
    server sent the all-zero address and port for that family.
    `connection_id` (1..20 bytes) and `stateless_reset_token` (16 bytes) are
    sequence number 1 of the server's connection IDs.
    """

    ipv4_address: tuple[str, int] | None
    ipv6_address: tuple[str, int] | None
    connection_id: bytes
    stateless_reset_token: bytes


@dataclass(slots=True, frozen=True)
class VersionInformation:
    """The version_information parameter (RFC 9368 §3).

    `chosen_version` is the version in use (never 0); `available_versions`
    are the versions the sender would use, in its order of preference.
    """

    chosen_version: int
    available_versions: tuple[int, ...] = ()


@dataclass(slots=True)
class TransportParameters:
    """One endpoint's transport parameters; absent parameters hold their default.

    Integer fields default to the RFC default; optional ones are None when
    absent. Times are milliseconds except `min_ack_delay` (microseconds).
    The server-only parameters are `original_destination_connection_id`,
    `stateless_reset_token`, `preferred_address` and
    `retry_source_connection_id`.
    """

    original_destination_connection_id: bytes | None = None  # 0x00, DCID of the client's first Initial
    max_idle_timeout: int = 0  # 0x01, ms; 0 disables the idle timeout
    stateless_reset_token: bytes | None = None  # 0x02, 16 bytes, for the handshake CID
    max_udp_payload_size: int = 65527  # 0x03, >= 1200
    initial_max_data: int = 0  # 0x04
    initial_max_stream_data_bidi_local: int = 0  # 0x05
    initial_max_stream_data_bidi_remote: int = 0  # 0x06
    initial_max_stream_data_uni: int = 0  # 0x07
    initial_max_streams_bidi: int = 0  # 0x08, <= 2^60
    initial_max_streams_uni: int = 0  # 0x09, <= 2^60
    ack_delay_exponent: int = 3  # 0x0a, <= 20
    max_ack_delay: int = 25  # 0x0b, ms, < 2^14
    disable_active_migration: bool = False  # 0x0c, zero-length when present
    preferred_address: PreferredAddress | None = None  # 0x0d
    active_connection_id_limit: int = 2  # 0x0e, >= 2
    initial_source_connection_id: bytes | None = None  # 0x0f, SCID of the sender's first Initial
    retry_source_connection_id: bytes | None = None  # 0x10, SCID of the server's Retry
    version_information: VersionInformation | None = None  # 0x11, RFC 9368
    max_datagram_frame_size: int | None = None  # 0x20, RFC 9221; None = DATAGRAM not supported
    grease_quic_bit: bool = False  # 0x2ab2, RFC 9287, zero-length when present
    min_ack_delay: int | None = None  # 0xff04de1b, µs, ack-frequency draft


# Wire formats of the known parameters.
_INT, _CID, _TOKEN, _FLAG, _PREFERRED, _VERSIONS = range(6)

# id -> (field name, wire format), in the order we encode them.
_PARAMETERS: dict[int, tuple[str, int]] = {
    0x00: ("original_destination_connection_id", _CID),
    0x01: ("max_idle_timeout", _INT),
    0x02: ("stateless_reset_token", _TOKEN),
    0x03: ("max_udp_payload_size", _INT),
    0x04: ("initial_max_data", _INT),
    0x05: ("initial_max_stream_data_bidi_local", _INT),
    0x06: ("initial_max_stream_data_bidi_remote", _INT),
    0x07: ("initial_max_stream_data_uni", _INT),
    0x08: ("initial_max_streams_bidi", _INT),
    0x09: ("initial_max_streams_uni", _INT),
    0x0A: ("ack_delay_exponent", _INT),
    0x0B: ("max_ack_delay", _INT),
    0x0C: ("disable_active_migration", _FLAG),
    0x0D: ("preferred_address", _PREFERRED),
    0x0E: ("active_connection_id_limit", _INT),
    0x0F: ("initial_source_connection_id", _CID),
    0x10: ("retry_source_connection_id", _CID),
    0x11: ("version_information", _VERSIONS),
    0x20: ("max_datagram_frame_size", _INT),
    0x2AB2: ("grease_quic_bit", _FLAG),
    0xFF04DE1B: ("min_ack_delay", _INT),
}
_PARAMETER_IDS = {name: pid for pid, (name, _) in _PARAMETERS.items()}

# RFC 9000 §18.2: only a server may send these.
_SERVER_ONLY = (
    "original_destination_connection_id",
    "stateless_reset_token",
    "preferred_address",
    "retry_source_connection_id",
)

#: id -> (field name, wire format, server-only), for the decoder
_DECODING = {pid: (name, kind, name in _SERVER_ONLY) for pid, (name, kind) in _PARAMETERS.items()}

_DEFAULTS = {f.name: f.default for f in fields(TransportParameters)}

# RFC 9000 §7.4.1 (and RFC 9221 §3 for max_datagram_frame_size): a server that
# accepts 0-RTT must not set these below the values the client remembered.
ZERO_RTT_REMEMBERED = (
    "active_connection_id_limit",
    "initial_max_data",
    "initial_max_stream_data_bidi_local",
    "initial_max_stream_data_bidi_remote",
    "initial_max_stream_data_uni",
    "initial_max_streams_bidi",
    "initial_max_streams_uni",
    "max_datagram_frame_size",
)

_MAX_VARINT = (1 << 62) - 1
_PREFERRED_ADDRESS_FIXED = 4 + 2 + 16 + 2 + 1 + STATELESS_RESET_TOKEN_LENGTH


def _label(name: str) -> str:
    return f"{name} (0x{_PARAMETER_IDS[name]:x})"


def _parameter_error(reason: str) -> TransportError:
    return TransportError(TransportErrorCode.TRANSPORT_PARAMETER_ERROR, None, reason, remote=False)


# ---------------------------------------------------------------- checks


def _problem(params: TransportParameters, from_server: bool | None) -> str | None:
    """The first rule `params` breaks, as a reason naming the parameter, or None.

    `from_server` None skips the server-only check. A quick test of every
    rule at once clears the common case; anything it cannot clear (including
    any preferred_address or version_information) goes through
    `_first_problem`, which names the first rule broken in parameter order.
    """
    p = params
    if from_server is False and (
        p.original_destination_connection_id is not None
        or p.stateless_reset_token is not None
        or p.preferred_address is not None
        or p.retry_source_connection_id is not None
    ):
        return _first_problem(params, from_server)
    ints = (
        p.max_idle_timeout, p.max_udp_payload_size, p.initial_max_data,
        p.initial_max_stream_data_bidi_local, p.initial_max_stream_data_bidi_remote,
        p.initial_max_stream_data_uni, p.initial_max_streams_bidi, p.initial_max_streams_uni,
        p.ack_delay_exponent, p.max_ack_delay, p.active_connection_id_limit,
    )  # every integer parameter that cannot be None
    odcid, iscid, rscid = (
        p.original_destination_connection_id, p.initial_source_connection_id, p.retry_source_connection_id
    )
    datagram, min_ack = p.max_datagram_frame_size, p.min_ack_delay
    if (
        min(ints) < 0
        or max(ints) > _MAX_VARINT
        or p.max_udp_payload_size < MIN_UDP_PAYLOAD_SIZE
        or p.initial_max_streams_bidi > MAX_STREAMS_LIMIT
        or p.initial_max_streams_uni > MAX_STREAMS_LIMIT
        or p.ack_delay_exponent > MAX_ACK_DELAY_EXPONENT
        or p.max_ack_delay >= MAX_ACK_DELAY_LIMIT
        or p.active_connection_id_limit < MIN_ACTIVE_CONNECTION_ID_LIMIT
        or (datagram is not None and not 0 <= datagram <= _MAX_VARINT)
        or (min_ack is not None and not 0 <= min_ack < MIN_ACK_DELAY_LIMIT)
        or (min_ack is not None and min_ack > p.max_ack_delay * 1000)
        or (odcid is not None and len(odcid) > MAX_CID_LENGTH)
        or (iscid is not None and len(iscid) > MAX_CID_LENGTH)
        or (rscid is not None and len(rscid) > MAX_CID_LENGTH)
        or (p.stateless_reset_token is not None and len(p.stateless_reset_token) != STATELESS_RESET_TOKEN_LENGTH)
        or p.preferred_address is not None
        or p.version_information is not None
    ):
        return _first_problem(params, from_server)
    return None


def _first_problem(params: TransportParameters, from_server: bool | None) -> str | None:
    """`_problem` rule by rule: the first rule broken, in parameter order, or None."""
    if from_server is False:
        for name in _SERVER_ONLY:
            if getattr(params, name) is not None:
                return f"{_label(name)}: server-only parameter sent by a client"
    for pid, (name, kind) in _PARAMETERS.items():
        value = getattr(params, name)
        if kind == _INT:
            if value is None:
                continue
            if not 0 <= value <= _MAX_VARINT:
                return f"{_label(name)}: {value} is not a varint"
        elif kind == _CID:
            if value is not None and len(value) > MAX_CID_LENGTH:
                return f"{_label(name)}: connection ID of {len(value)} bytes exceeds {MAX_CID_LENGTH}"
        elif kind == _TOKEN:
            if value is not None and len(value) != STATELESS_RESET_TOKEN_LENGTH:
                return f"{_label(name)}: token must be {STATELESS_RESET_TOKEN_LENGTH} bytes, not {len(value)}"
    p = params
    if p.max_udp_payload_size < MIN_UDP_PAYLOAD_SIZE:
        return f"{_label('max_udp_payload_size')}: {p.max_udp_payload_size} is below {MIN_UDP_PAYLOAD_SIZE}"
    for name in ("initial_max_streams_bidi", "initial_max_streams_uni"):
        if getattr(p, name) > MAX_STREAMS_LIMIT:
            return f"{_label(name)}: {getattr(p, name)} exceeds 2^60"
    if p.ack_delay_exponent > MAX_ACK_DELAY_EXPONENT:
        return f"{_label('ack_delay_exponent')}: {p.ack_delay_exponent} exceeds {MAX_ACK_DELAY_EXPONENT}"
    if p.max_ack_delay >= MAX_ACK_DELAY_LIMIT:
        return f"{_label('max_ack_delay')}: {p.max_ack_delay} ms is not below 2^14"
    if p.active_connection_id_limit < MIN_ACTIVE_CONNECTION_ID_LIMIT:
        limit = p.active_connection_id_limit
        return f"{_label('active_connection_id_limit')}: {limit} is below {MIN_ACTIVE_CONNECTION_ID_LIMIT}"
    if p.min_ack_delay is not None:
        if p.min_ack_delay >= MIN_ACK_DELAY_LIMIT:
            return f"{_label('min_ack_delay')}: {p.min_ack_delay} µs is not below 2^24"
        if p.min_ack_delay > p.max_ack_delay * 1000:
            return f"{_label('min_ack_delay')}: {p.min_ack_delay} µs exceeds max_ack_delay of {p.max_ack_delay} ms"
    pa = p.preferred_address
    if pa is not None:
        # RFC 9000 §18.2: a server must not put a zero-length CID here.
        if not 1 <= len(pa.connection_id) <= MAX_CID_LENGTH:
            length = len(pa.connection_id)
            return f"{_label('preferred_address')}: connection ID length {length} is not 1..{MAX_CID_LENGTH}"
        if len(pa.stateless_reset_token) != STATELESS_RESET_TOKEN_LENGTH:
            return f"{_label('preferred_address')}: stateless reset token must be {STATELESS_RESET_TOKEN_LENGTH} bytes"
    vi = p.version_information
    if vi is not None:
        # RFC 9368 §3: version 0 is never a valid chosen or available version.
        if vi.chosen_version == 0:
            return f"{_label('version_information')}: chosen version is 0"
        if any(v == 0 for v in vi.available_versions):
            return f"{_label('version_information')}: available version 0"
        if not all(0 <= v <= 0xFFFFFFFF for v in (vi.chosen_version, *vi.available_versions)):
            return f"{_label('version_information')}: version does not fit 32 bits"
    return None


# ---------------------------------------------------------------- encoding


def _encode_address(address: tuple[str, int] | None, version: int) -> bytes:
    size = 4 if version == 4 else 16
    if address is None:
        return bytes(size + 2)
    host, port = address
    ip = ipaddress.IPv4Address(host) if version == 4 else ipaddress.IPv6Address(host)
    return ip.packed + port.to_bytes(2, "big")


def _encode_value(kind: int, value) -> bytes:
    if kind == _INT:
        return encode_varint(value)
    if kind == _CID or kind == _TOKEN:
        return bytes(value)
    if kind == _FLAG:
        return b""
    if kind == _PREFERRED:
        return b"".join(
            (
                _encode_address(value.ipv4_address, 4),
                _encode_address(value.ipv6_address, 6),
                bytes((len(value.connection_id),)),
                value.connection_id,
                value.stateless_reset_token,
            )
        )
    # _VERSIONS
    return b"".join(v.to_bytes(4, "big") for v in (value.chosen_version, *value.available_versions))


#: The per-connection parameters (connection IDs and the reset token), in id
#: order, each followed by the run of other parameters that comes after it on
#: the wire; `_encode_static` encodes the runs once per configuration.
_CONNECTION_FIELDS = (
    "original_destination_connection_id",
    "stateless_reset_token",
    "initial_source_connection_id",
    "retry_source_connection_id",
)
_STATIC_FIELDS = tuple(name for name, _ in _PARAMETERS.values() if name not in _CONNECTION_FIELDS)
_static_values = attrgetter(*_STATIC_FIELDS)
#: (is_client, static field values) -> the encoded runs between the
#: connection fields: before 0x00, 0x00..0x02, 0x02..0x0f, 0x0f..0x10, after 0x10
_STATIC_CACHE: dict[tuple, tuple[bytes, ...]] = {}
_STATIC_CACHE_SIZE = 64


def _encode_parameter(pid: int, kind: int, value) -> bytes:
    encoded = _encode_value(kind, value)
    return encode_varint(pid) + encode_varint(len(encoded)) + encoded


def _encode_static(params: TransportParameters) -> tuple[bytes, ...]:
    runs: list[list[bytes]] = [[]]
    for pid, (name, kind) in _PARAMETERS.items():
        if name in _CONNECTION_FIELDS:
            runs.append([])
            continue
        value = getattr(params, name)
        if value is None or value is False or value == _DEFAULTS[name]:
            continue
        runs[-1].append(_encode_parameter(pid, kind, value))
    return tuple(b"".join(run) for run in runs)


def encode_transport_parameters(
    params: TransportParameters, *, is_client: bool | None = None, grease: bool = False
) -> bytes:
    """Encode `params` as the quic_transport_parameters extension body (RFC 9000 §18).

    Parameters equal to their default, None or False are omitted.

    The parameters other than the connection IDs and the reset token come
    from the configuration, so their encoding is kept (checked once) for
    each distinct set of values and role; a connection then only checks and
    encodes its connection IDs and token.

    :param is_client: when True, refuse server-only parameters; when False,
        allow them; when None, do not check the role.
    :param grease: append one parameter with a random reserved id
        (31 * N + 27) and random value, RFC 9000 §18.1.
    :raises ValueError: when `params` breaks a rule a peer would reject.
    """
    from_server = None if is_client is None else not is_client
    try:
        key = (is_client, _static_values(params))
        runs = _STATIC_CACHE.get(key)
    except TypeError:  # an unhashable value (e.g. a list of versions): no caching
        key, runs = None, None
    odcid, token, iscid, rscid = (
        params.original_destination_connection_id, params.stateless_reset_token,
        params.initial_source_connection_id, params.retry_source_connection_id,
    )
    if runs is None or (
        (is_client and (odcid is not None or token is not None or rscid is not None))
        or (odcid is not None and len(odcid) > MAX_CID_LENGTH)
        or (token is not None and len(token) != STATELESS_RESET_TOKEN_LENGTH)
        or (iscid is not None and len(iscid) > MAX_CID_LENGTH)
        or (rscid is not None and len(rscid) > MAX_CID_LENGTH)
    ):
        problem = _problem(params, from_server)
        if problem is not None:
            raise ValueError(f"invalid transport parameter {problem}")
        if runs is None:
            runs = _encode_static(params)
            if key is not None:
                if len(_STATIC_CACHE) >= _STATIC_CACHE_SIZE:
                    _STATIC_CACHE.clear()
                _STATIC_CACHE[key] = runs
    parts = [runs[0]]
    for pid, value, run in ((0x00, odcid, runs[1]), (0x02, token, runs[2]), (0x0F, iscid, runs[3]),
                            (0x10, rscid, runs[4])):
        if value is not None:
            parts += (encode_varint(pid), encode_varint(len(value)), bytes(value))
        parts.append(run)
    if grease:
        random = os.urandom(9)
        n = int.from_bytes(random[:8], "big") % (((1 << 62) - 1 - 27) // 31 + 1)
        value = os.urandom(random[8] % 17)
        parts += (encode_varint(31 * n + 27), encode_varint(len(value)), value)
    return b"".join(parts)


# ---------------------------------------------------------------- decoding


_VARINT_MASK = {1: 0x3F, 2: 0x3FFF, 4: 0x3FFF_FFFF, 8: 0x3FFF_FFFF_FFFF_FFFF}


def _decode_varint(value: bytes) -> int | None:
    """The varint that fills `value` exactly, or None."""
    if not value:
        return None
    size = 1 << (value[0] >> 6)
    if len(value) != size:
        return None
    return int.from_bytes(value, "big") & _VARINT_MASK[size]


def _decode_address(value: bytes, version: int) -> tuple[str, int] | None:
    if not any(value):
        return None  # RFC 9000 §18.2: all-zero address and port means "no address of this family"
    size = len(value) - 2
    ip = ipaddress.IPv4Address(value[:size]) if version == 4 else ipaddress.IPv6Address(value[:size])
    return (str(ip), int.from_bytes(value[size:], "big"))


def _decode_value(name: str, kind: int, value: bytes):
    """The typed value of parameter `name`; raises TransportError on a bad encoding."""
    if kind == _INT:
        number = _decode_varint(value)
        if number is None:
            raise _parameter_error(f"{_label(name)}: value is not exactly one varint")
        return number
    if kind == _CID or kind == _TOKEN:
        return value  # lengths are checked by _problem
    if kind == _FLAG:
        if value:
            raise _parameter_error(f"{_label(name)}: must be empty, got {len(value)} bytes")
        return True
    if kind == _PREFERRED:
        if len(value) < _PREFERRED_ADDRESS_FIXED:
            raise _parameter_error(f"{_label(name)}: {len(value)} bytes is too short")
        cid_length = value[24]
        if len(value) != _PREFERRED_ADDRESS_FIXED + cid_length:
            raise _parameter_error(
                f"{_label(name)}: length {len(value)} does not match connection ID length {cid_length}"
            )
        return PreferredAddress(
            ipv4_address=_decode_address(value[0:6], 4),
            ipv6_address=_decode_address(value[6:24], 6),
            connection_id=value[25 : 25 + cid_length],
            stateless_reset_token=value[25 + cid_length :],
        )
    # _VERSIONS
    if not value or len(value) % 4:
        raise _parameter_error(f"{_label(name)}: length {len(value)} is not a positive multiple of 4")
    versions = [int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4)]
    return VersionInformation(versions[0], tuple(versions[1:]))


def decode_transport_parameters(data: bytes, from_server: bool) -> TransportParameters:
    """Decode the peer's quic_transport_parameters extension body (RFC 9000 §18).

    Unknown and reserved parameter ids are ignored.

    :param from_server: True when the peer is the server (we are the client),
        which allows the server-only parameters.
    :raises quicfast.errors.TransportError: TRANSPORT_PARAMETER_ERROR for a
        truncated or malformed encoding, a repeated id, a value out of range,
        or a server-only parameter from a client. The reason names the
        parameter; `remote` is False.

    Call `validate_connection_ids` next, once the peer's first Initial is known.
    """
    buf = Buffer(data=data)
    total = len(data)
    pull_varint = buf.pull_uint_var
    unknown: set[int] = set()
    values: dict[str, object] = {}
    while not buf.eof():
        try:
            pid = pull_varint()
            length = pull_varint()
        except BufferReadError:
            raise _parameter_error(f"truncated parameter id or length at offset {buf.tell()}") from None
        if length > total - buf.tell():
            raise _parameter_error(
                f"parameter 0x{pid:x}: length {length} runs past the end ({total - buf.tell()} bytes left)"
            )
        value = buf.pull_bytes(length)
        known = _DECODING.get(pid)
        if known is None:
            # RFC 9000 §7.4.2: unknown parameters are ignored (but not repeated, §7.4).
            if pid in unknown:
                raise _parameter_error(f"parameter 0x{pid:x} appears more than once")
            unknown.add(pid)
            continue
        name, kind, server_only = known
        # RFC 9000 §7.4: an endpoint must not send a parameter more than once.
        if name in values:
            raise _parameter_error(f"parameter 0x{pid:x} appears more than once")
        if server_only and not from_server:
            raise _parameter_error(f"{_label(name)}: server-only parameter sent by a client")
        if kind == _INT and length and length == 1 << (value[0] >> 6):
            values[name] = int.from_bytes(value, "big") & _VARINT_MASK[length]  # exactly one varint
        else:
            values[name] = _decode_value(name, kind, value)
    params = TransportParameters(**values)
    problem = _problem(params, from_server)
    if problem is not None:
        raise _parameter_error(problem)
    return params


# ---------------------------------------------------------------- handshake checks


def validate_connection_ids(
    params: TransportParameters,
    from_server: bool,
    *,
    expected_initial_scid: bytes,
    expected_original_dcid: bytes | None = None,
    expected_retry_scid: bytes | None = None,
) -> None:
    """Authenticate the connection IDs of the handshake (RFC 9000 §7.3).

    :param params: the peer's decoded parameters.
    :param from_server: True when the peer is the server.
    :param expected_initial_scid: Source Connection ID of the peer's first
        Initial packet.
    :param expected_original_dcid: Destination Connection ID of the client's
        first Initial (required when `from_server`).
    :param expected_retry_scid: Source Connection ID of the Retry packet the
        client received, or None when there was no Retry.
    :raises quicfast.errors.TransportError: TRANSPORT_PARAMETER_ERROR when a
        required connection ID is missing, one does not match, or
        retry_source_connection_id is present without a Retry.
    """

    def check(name: str, expected: bytes) -> None:
        actual = getattr(params, name)
        if actual is None:
            raise _parameter_error(f"{_label(name)}: missing")
        if actual != expected:
            raise _parameter_error(
                f"{_label(name)}: {actual.hex() or 'empty'} does not match {expected.hex() or 'empty'}"
            )

    check("initial_source_connection_id", expected_initial_scid)
    if not from_server:
        return
    if expected_original_dcid is None:
        raise ValueError("expected_original_dcid is required to validate a server's parameters")
    check("original_destination_connection_id", expected_original_dcid)
    if expected_retry_scid is not None:
        check("retry_source_connection_id", expected_retry_scid)
    elif params.retry_source_connection_id is not None:
        raise _parameter_error(f"{_label('retry_source_connection_id')}: present but no Retry was received")


def check_0rtt_compatible(remembered: TransportParameters, new: TransportParameters) -> None:
    """Check that a server accepting 0-RTT kept the limits the client used (RFC 9000 §7.4.1).

    :param remembered: the server's parameters stored with the session ticket.
    :param new: the parameters the server sent while accepting 0-RTT.
    :raises quicfast.errors.TransportError: PROTOCOL_VIOLATION naming the
        first of `ZERO_RTT_REMEMBERED` that the server reduced. An absent
        max_datagram_frame_size counts as 0 (RFC 9221 §3).
    """
    for name in ZERO_RTT_REMEMBERED:
        old_value = getattr(remembered, name) or 0
        new_value = getattr(new, name) or 0
        if new_value < old_value:
            raise TransportError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                None,
                f"{_label(name)}: server reduced {old_value} to {new_value} while accepting 0-RTT",
                remote=False,
            )
