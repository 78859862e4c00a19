"""Fuzz target: transport parameter decoding (RFC 9000 §18).

Random and mutated input must either decode to `TransportParameters` that
re-encode and decode to the same value, or raise `TransportError` with
TRANSPORT_PARAMETER_ERROR; never any other exception, never a hang.
"""

from hypothesis import HealthCheck, given, settings, strategies as st

from quicfast.errors import TransportError, TransportErrorCode
from quicfast.proto.buffer import encode_varint
from quicfast.proto.transport_params import (
    PreferredAddress,
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN_IDS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
             0x10, 0x11, 0x20, 0x2AB2, 0xFF04DE1B]  # fmt: skip

varints = st.integers(min_value=0, max_value=(1 << 62) - 1)
cids = st.binary(max_size=20)


def check_decode(data: bytes, from_server: bool) -> None:
    try:
        params = decode_transport_parameters(data, from_server=from_server)
    except TransportError as err:
        assert err.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
        assert err.reason
        return
    assert isinstance(params, TransportParameters)
    # Whatever decodes is valid: it re-encodes and decodes to the same value.
    again = encode_transport_parameters(params, is_client=not from_server)
    assert decode_transport_parameters(again, from_server=from_server) == params


@st.composite
def valid_params(draw):
    preferred = draw(
        st.none()
        | st.builds(
            PreferredAddress,
            ipv4_address=st.none() | st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)),
            ipv6_address=st.none() | st.tuples(st.ip_addresses(v=6).map(str), st.integers(1, 65535)),
            connection_id=st.binary(min_size=1, max_size=20),
            stateless_reset_token=st.binary(min_size=16, max_size=16),
        )
    )
    max_ack_delay = draw(st.integers(0, (1 << 14) - 1))
    versions = st.integers(1, 0xFFFFFFFF)
    return TransportParameters(
        original_destination_connection_id=draw(st.none() | cids),
        max_idle_timeout=draw(varints),
        stateless_reset_token=draw(st.none() | st.binary(min_size=16, max_size=16)),
        max_udp_payload_size=draw(st.integers(1200, (1 << 62) - 1)),
        initial_max_data=draw(varints),
        initial_max_stream_data_bidi_local=draw(varints),
        initial_max_stream_data_bidi_remote=draw(varints),
        initial_max_stream_data_uni=draw(varints),
        initial_max_streams_bidi=draw(st.integers(0, 1 << 60)),
        initial_max_streams_uni=draw(st.integers(0, 1 << 60)),
        ack_delay_exponent=draw(st.integers(0, 20)),
        max_ack_delay=max_ack_delay,
        disable_active_migration=draw(st.booleans()),
        preferred_address=preferred,
        active_connection_id_limit=draw(st.integers(2, (1 << 62) - 1)),
        initial_source_connection_id=draw(st.none() | cids),
        retry_source_connection_id=draw(st.none() | cids),
        version_information=draw(
            st.none() | st.builds(VersionInformation, versions, st.lists(versions, max_size=5).map(tuple))
        ),
        max_datagram_frame_size=draw(st.none() | varints),
        grease_quic_bit=draw(st.booleans()),
        min_ack_delay=draw(st.none() | st.integers(0, min(max_ack_delay * 1000, (1 << 24) - 1))),
    )


@FUZZ
@given(valid_params())
def test_valid_parameters_round_trip(params):
    data = encode_transport_parameters(params, is_client=False, grease=True)
    assert decode_transport_parameters(data, from_server=True) == params


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes(data, from_server):
    check_decode(data, from_server)


@st.composite
def triples(draw):
    """Well-framed (id, length, value) sequences with ids and values near the interesting ones."""
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        pid = draw(st.sampled_from(KNOWN_IDS) | st.integers(0, 64) | varints)
        value = draw(
            st.binary(max_size=60)
            | varints.map(encode_varint)
            | st.sampled_from([b"", bytes(16), bytes(41), bytes(24) + b"\x08" + bytes(24)])
        )
        parts.append(encode_varint(pid) + encode_varint(len(value)) + value)
    return b"".join(parts)


@FUZZ
@given(triples(), st.booleans())
def test_well_framed_parameters(data, from_server):
    check_decode(data, from_server)


@FUZZ
@given(valid_params(), st.data())
def test_mutated_valid_encodings(params, data):
    raw = bytearray(encode_transport_parameters(params))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if op == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            i = data.draw(st.integers(0, len(raw)))
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            del raw[i : i + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del raw[data.draw(st.integers(0, len(raw))) :]
        elif op == "duplicate":
            raw += raw[: data.draw(st.integers(0, len(raw)))]
    check_decode(bytes(raw), data.draw(st.booleans()))


def test_huge_declared_length_fails_fast():
    data = encode_varint(0x04) + encode_varint((1 << 62) - 1) + b"\x01"
    try:
        decode_transport_parameters(data, from_server=True)
    except TransportError as err:
        assert err.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    else:
        raise AssertionError("decoded a parameter longer than its input")


def test_many_unknown_parameters():
    # 20,000 distinct unassigned ids (0x100000.., between grease_quic_bit and min_ack_delay).
    data = b"".join(encode_varint(0x100000 + i) + b"\x00" for i in range(20_000))
    assert decode_transport_parameters(data, from_server=False) == TransportParameters()
