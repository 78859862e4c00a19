import dataclasses

import pytest

from quicfast.errors import TransportError, TransportErrorCode
from quicfast.proto.buffer import Buffer, encode_varint
from quicfast.proto.transport_params import (
    PreferredAddress,
    TransportParameters,
    VersionInformation,
    ZERO_RTT_REMEMBERED,
    check_0rtt_compatible,
    decode_transport_parameters,
    encode_transport_parameters,
    validate_connection_ids,
)

TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR
TOKEN = bytes(range(16))
PREFERRED = PreferredAddress(
    ipv4_address=("192.0.2.1", 4433),
    ipv6_address=("2001:db8::1", 4434),
    connection_id=b"\x01\x02\x03\x04\x05\x06\x07\x08",
    stateless_reset_token=b"\xaa" * 16,
)


def param(pid: int, value: bytes) -> bytes:
    return encode_varint(pid) + encode_varint(len(value)) + value


def int_param(pid: int, value: int) -> bytes:
    return param(pid, encode_varint(value))


def server_params(**changes) -> TransportParameters:
    """A server's parameters with every field set away from its default."""
    params = TransportParameters(
        original_destination_connection_id=b"\x83\x94\xc8\xf0\x3e\x51\x57\x08",
        max_idle_timeout=30_000,
        stateless_reset_token=TOKEN,
        max_udp_payload_size=1452,
        initial_max_data=1 << 20,
        initial_max_stream_data_bidi_local=1 << 18,
        initial_max_stream_data_bidi_remote=1 << 17,
        initial_max_stream_data_uni=1 << 16,
        initial_max_streams_bidi=100,
        initial_max_streams_uni=3,
        ack_delay_exponent=8,
        max_ack_delay=40,
        disable_active_migration=True,
        preferred_address=PREFERRED,
        active_connection_id_limit=8,
        initial_source_connection_id=b"\xf0\x67\xa5\x50\x2a\x42\x62\xb5",
        retry_source_connection_id=b"\x12\x34",
        version_information=VersionInformation(0x6B3343CF, (0x6B3343CF, 0x00000001, 0x1A2A3A4A)),
        max_datagram_frame_size=65535,
        grease_quic_bit=True,
        min_ack_delay=1000,
    )
    return dataclasses.replace(params, **changes)


def decode_error(data: bytes, from_server: bool = True) -> TransportError:
    with pytest.raises(TransportError) as info:
        decode_transport_parameters(data, from_server=from_server)
    assert info.value.remote is False
    return info.value


# ---------------------------------------------------------------- round trips


def test_defaults_are_the_rfc_defaults_and_encode_to_nothing():
    params = TransportParameters()
    assert params.max_udp_payload_size == 65527
    assert params.ack_delay_exponent == 3
    assert params.max_ack_delay == 25
    assert params.active_connection_id_limit == 2
    assert params.max_idle_timeout == 0 and params.initial_max_data == 0
    assert params.max_datagram_frame_size is None and params.min_ack_delay is None
    assert params.preferred_address is None and params.version_information is None
    assert encode_transport_parameters(params) == b""
    assert decode_transport_parameters(b"", from_server=True) == params


def test_round_trip_of_every_parameter():
    params = server_params()
    # Every field differs from its default, so every parameter is on the wire.
    for f in dataclasses.fields(TransportParameters):
        assert getattr(params, f.name) != f.default, f.name
    data = encode_transport_parameters(params, is_client=False)
    assert decode_transport_parameters(data, from_server=True) == params


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(TransportParameters)])
def test_round_trip_of_each_parameter_alone(field):
    value = getattr(server_params(), field)
    params = TransportParameters(**{field: value})
    data = encode_transport_parameters(params)
    assert data  # not omitted
    assert decode_transport_parameters(data, from_server=True) == params


def test_explicit_default_values_decode():
    data = int_param(0x03, 65527) + int_param(0x0A, 3) + int_param(0x0B, 25) + int_param(0x0E, 2)
    assert decode_transport_parameters(data, from_server=False) == TransportParameters()


def test_zero_length_connection_ids_and_zero_datagram_size_round_trip():
    params = TransportParameters(initial_source_connection_id=b"", max_datagram_frame_size=0)
    data = encode_transport_parameters(params)
    assert data == param(0x0F, b"") + int_param(0x20, 0)
    assert decode_transport_parameters(data, from_server=False) == params


def test_wire_format_of_integers_flags_and_ids():
    params = TransportParameters(max_idle_timeout=30_000, disable_active_migration=True, min_ack_delay=500)
    assert encode_transport_parameters(params) == (
        bytes.fromhex("01 04 80007530") + bytes.fromhex("0c 00") + bytes.fromhex("c0000000ff04de1b 02 41f4")
    )


def test_non_shortest_varint_values_are_accepted():
    # RFC 9000 §16: values need not use the shortest encoding.
    data = param(0x01, bytes.fromhex("c000000000007530"))
    assert decode_transport_parameters(data, from_server=False).max_idle_timeout == 30_000


def test_preferred_address_with_one_family():
    pa = dataclasses.replace(PREFERRED, ipv4_address=None)
    data = encode_transport_parameters(TransportParameters(preferred_address=pa))
    # 0x0d, length 4+2+16+2+1+8+16, all-zero IPv4 address and port.
    assert data[:2] == bytes((0x0D, 49)) and data[2:8] == bytes(6)
    assert decode_transport_parameters(data, from_server=True).preferred_address == pa


def test_version_information_with_no_available_versions():
    params = TransportParameters(version_information=VersionInformation(1))
    data = encode_transport_parameters(params)
    assert data == param(0x11, bytes.fromhex("00000001"))
    assert decode_transport_parameters(data, from_server=False) == params


@pytest.mark.parametrize(
    "pid",
    [
        27,  # reserved 31*0+27
        31 * 5 + 27,
        31 * 1000 + 27,
        (1 << 62) - 1 - ((1 << 62) - 1 - 27) % 31,  # the largest reserved id
        0x12,  # unassigned
        0x4143,
        0xFF03DE1A,  # an older ack-frequency draft's min_ack_delay id
    ],
)
def test_unknown_and_reserved_parameters_are_ignored(pid):
    data = int_param(0x04, 1000) + param(pid, b"\xff\x00garbage") + int_param(0x05, 10)
    assert decode_transport_parameters(data, from_server=False) == TransportParameters(
        initial_max_data=1000, initial_max_stream_data_bidi_local=10
    )


def test_grease_adds_one_reserved_parameter_that_decoders_ignore():
    params = TransportParameters(initial_max_data=10)
    plain = encode_transport_parameters(params)
    for _ in range(20):
        data = encode_transport_parameters(params, grease=True)
        assert data.startswith(plain) and len(data) > len(plain)
        buf = Buffer(data=data[len(plain) :])
        pid = buf.pull_uint_var()
        assert pid % 31 == 27
        buf.pull_bytes(buf.pull_uint_var())
        assert buf.eof()
        assert decode_transport_parameters(data, from_server=False) == params


# ---------------------------------------------------------------- per-connection fields on a kept encoding


def test_connections_sharing_a_configuration_encode_their_own_connection_ids():
    """The configuration part is encoded once; each encoding carries its own CIDs and token."""
    seen = set()
    for i in range(4):
        params = server_params(
            original_destination_connection_id=bytes([i]) * 8,
            initial_source_connection_id=bytes([i + 10]) * (i + 1),
            stateless_reset_token=bytes([i + 20]) * 16,
            retry_source_connection_id=None if i % 2 else bytes([i + 30]) * 4,
        )
        data = encode_transport_parameters(params, is_client=False)
        assert decode_transport_parameters(data, from_server=True) == params
        seen.add(data)
    assert len(seen) == 4


def test_kept_encoding_still_checks_connection_ids_and_role():
    params = server_params()
    encode_transport_parameters(params, is_client=False)  # the configuration part is now kept
    for changes in (
        {"initial_source_connection_id": bytes(21)},
        {"original_destination_connection_id": bytes(21)},
        {"retry_source_connection_id": bytes(21)},
        {"stateless_reset_token": bytes(15)},
    ):
        with pytest.raises(ValueError, match="invalid transport parameter"):
            encode_transport_parameters(dataclasses.replace(params, **changes), is_client=False)
    client = TransportParameters(initial_max_data=5, initial_source_connection_id=b"\x01")
    encode_transport_parameters(client, is_client=True)
    with pytest.raises(ValueError, match="server-only"):
        encode_transport_parameters(dataclasses.replace(client, stateless_reset_token=TOKEN), is_client=True)
    # The role is part of what is kept: the same values are refused for a client.
    with pytest.raises(ValueError, match="server-only"):
        encode_transport_parameters(params, is_client=True)


def test_unhashable_values_are_encoded_without_keeping_them():
    params = TransportParameters(version_information=VersionInformation(1, [1, 2]))  # a list, not a tuple
    data = encode_transport_parameters(params)
    assert decode_transport_parameters(data, from_server=False).version_information == VersionInformation(1, (1, 2))


# ---------------------------------------------------------------- malformed encodings


@pytest.mark.parametrize(
    "data",
    [
        b"\x40",  # truncated id
        b"\x01",  # id without length
        b"\x01\x80\x00",  # truncated length
        b"\x01\x02\x05",  # value shorter than its length
        b"\x04\x05\x01\x02",
        int_param(0x04, 1) + b"\x05",  # trailing partial parameter
    ],
)
def test_truncated_encodings(data):
    err = decode_error(data)
    assert err.error_code == TPE
    assert err.frame_type is None


@pytest.mark.parametrize(
    "data,name",
    [
        (param(0x01, b""), "max_idle_timeout"),  # empty integer
        (param(0x01, b"\x05\x00"), "max_idle_timeout"),  # trailing byte after the varint
        (param(0x04, b"\x40"), "initial_max_data"),  # varint longer than the value
        (param(0x0C, b"\x00"), "disable_active_migration"),
        (param(0x2AB2, b"\x01"), "grease_quic_bit"),
        (param(0x0D, bytes(40)), "preferred_address"),  # shorter than the fixed part
        (param(0x0D, bytes(24) + b"\x04" + b"abc" + bytes(16)), "preferred_address"),  # cid length mismatch
        (param(0x0D, bytes(24) + b"\x15" + bytes(21) + bytes(16)), "preferred_address"),  # cid of 21 bytes
        (param(0x11, b""), "version_information"),
        (param(0x11, b"\x00\x00\x00\x01\x00"), "version_information"),  # not a multiple of 4
        (param(0x02, bytes(15)), "stateless_reset_token"),
        (param(0x02, bytes(17)), "stateless_reset_token"),
        (param(0x00, bytes(21)), "original_destination_connection_id"),
        (param(0x0F, bytes(21)), "initial_source_connection_id"),
        (param(0x10, bytes(21)), "retry_source_connection_id"),
    ],
)
def test_wrong_length_values(data, name):
    err = decode_error(data)
    assert err.error_code == TPE
    assert name in err.reason


@pytest.mark.parametrize("pid", [0x01, 0x0C, 0x0F, 0x27, 27])
def test_duplicate_parameters(pid):
    value = b"" if pid == 0x0C else b"\x01"
    err = decode_error(param(pid, value) + int_param(0x04, 1) + param(pid, value))
    assert err.error_code == TPE
    assert "more than once" in err.reason


# ---------------------------------------------------------------- value ranges


@pytest.mark.parametrize(
    "pid,value,name",
    [
        (0x03, 1199, "max_udp_payload_size"),
        (0x03, 0, "max_udp_payload_size"),
        (0x08, (1 << 60) + 1, "initial_max_streams_bidi"),
        (0x09, (1 << 60) + 1, "initial_max_streams_uni"),
        (0x0A, 21, "ack_delay_exponent"),
        (0x0B, 1 << 14, "max_ack_delay"),
        (0x0E, 0, "active_connection_id_limit"),
        (0x0E, 1, "active_connection_id_limit"),
        (0xFF04DE1B, 25_001, "min_ack_delay"),  # above the default max_ack_delay of 25 ms
        (0xFF04DE1B, 1 << 24, "min_ack_delay"),
    ],
)
def test_values_out_of_range(pid, value, name):
    err = decode_error(int_param(pid, value))
    assert err.error_code == TPE
    assert name in err.reason


@pytest.mark.parametrize(
    "pid,value",
    [
        (0x03, 1200),
        (0x03, 65528),  # larger than a UDP payload is allowed, it is just not a limit
        (0x08, 1 << 60),
        (0x09, 1 << 60),
        (0x0A, 20),
        (0x0B, (1 << 14) - 1),
        (0x0E, 2),
        (0xFF04DE1B, 25_000),
        (0xFF04DE1B, 0),
    ],
)
def test_values_at_the_limits(pid, value):
    decode_transport_parameters(int_param(pid, value), from_server=False)


def test_min_ack_delay_is_compared_with_the_sent_max_ack_delay():
    ok = int_param(0x0B, 100) + int_param(0xFF04DE1B, 100_000)
    assert decode_transport_parameters(ok, from_server=False).min_ack_delay == 100_000
    err = decode_error(int_param(0x0B, 1) + int_param(0xFF04DE1B, 1001))
    assert "min_ack_delay" in err.reason and "max_ack_delay" in err.reason


def test_preferred_address_with_zero_length_connection_id():
    pa = dataclasses.replace(PREFERRED, connection_id=b"")
    raw = bytes(24) + b"\x00" + bytes(16)
    err = decode_error(param(0x0D, raw))
    assert err.error_code == TPE and "preferred_address" in err.reason
    with pytest.raises(ValueError, match="preferred_address"):
        encode_transport_parameters(TransportParameters(preferred_address=pa))


@pytest.mark.parametrize(
    "value",
    [
        bytes.fromhex("00000000"),  # chosen version 0
        bytes.fromhex("00000000 00000001"),
        bytes.fromhex("00000001 00000000"),  # available version 0
    ],
)
def test_version_information_with_version_zero(value):
    err = decode_error(param(0x11, value))
    assert err.error_code == TPE and "version_information" in err.reason


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "pid,value,name",
    [
        (0x00, b"\x01\x02\x03\x04\x05\x06\x07\x08", "original_destination_connection_id"),
        (0x02, TOKEN, "stateless_reset_token"),
        (0x0D, encode_transport_parameters(TransportParameters(preferred_address=PREFERRED))[2:], "preferred_address"),
        (0x10, b"\x01\x02", "retry_source_connection_id"),
    ],
)
def test_server_only_parameters_from_a_client(pid, value, name):
    data = param(pid, value)
    decode_transport_parameters(data, from_server=True)  # fine from a server
    err = decode_error(data, from_server=False)
    assert err.error_code == TPE
    assert name in err.reason and "server-only" in err.reason
    with pytest.raises(ValueError, match="server-only"):
        encode_transport_parameters(decode_transport_parameters(data, from_server=True), is_client=True)


def test_encode_refuses_invalid_values():
    for changes in (
        {"max_udp_payload_size": 1000},
        {"ack_delay_exponent": 21},
        {"max_ack_delay": 1 << 14},
        {"active_connection_id_limit": 1},
        {"initial_max_data": 1 << 62},
        {"initial_max_streams_bidi": (1 << 60) + 1},
        {"min_ack_delay": 40_001},
        {"stateless_reset_token": b"short"},
        {"initial_source_connection_id": bytes(21)},
        {"version_information": VersionInformation(0)},
    ):
        with pytest.raises(ValueError, match="invalid transport parameter"):
            encode_transport_parameters(server_params(**changes))


# ---------------------------------------------------------------- RFC 9000 §7.3

ODCID = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08"
SERVER_SCID = b"\xf0\x67\xa5\x50\x2a\x42\x62\xb5"
CLIENT_SCID = b"\xc1\x01"
RETRY_SCID = b"\x12\x34"


def test_connection_ids_of_a_server_without_retry():
    params = server_params(retry_source_connection_id=None)
    validate_connection_ids(params, True, expected_initial_scid=SERVER_SCID, expected_original_dcid=ODCID)


def test_connection_ids_of_a_server_after_retry():
    params = server_params(retry_source_connection_id=RETRY_SCID)
    validate_connection_ids(
        params, True, expected_initial_scid=SERVER_SCID, expected_original_dcid=ODCID, expected_retry_scid=RETRY_SCID
    )


def test_connection_ids_of_a_client():
    params = TransportParameters(initial_source_connection_id=CLIENT_SCID)
    validate_connection_ids(params, False, expected_initial_scid=CLIENT_SCID)
    validate_connection_ids(TransportParameters(initial_source_connection_id=b""), False, expected_initial_scid=b"")


@pytest.mark.parametrize(
    "params,from_server,kwargs,name",
    [
        # missing initial_source_connection_id, either side
        (TransportParameters(), False, {}, "initial_source_connection_id"),
        (server_params(initial_source_connection_id=None, retry_source_connection_id=None), True, {}, "initial_source_connection_id"),
        # mismatching initial_source_connection_id
        (TransportParameters(initial_source_connection_id=b"\x01"), False, {}, "initial_source_connection_id"),
        (server_params(initial_source_connection_id=b"", retry_source_connection_id=None), True, {}, "initial_source_connection_id"),
        # server: missing / mismatching original_destination_connection_id
        (server_params(original_destination_connection_id=None, retry_source_connection_id=None), True, {}, "original_destination_connection_id"),
        (server_params(original_destination_connection_id=b"\x00" * 8, retry_source_connection_id=None), True, {}, "original_destination_connection_id"),
        # server: retry_source_connection_id without a Retry
        (server_params(retry_source_connection_id=RETRY_SCID), True, {}, "retry_source_connection_id"),
        # server: Retry happened but retry_source_connection_id is missing / different
        (server_params(retry_source_connection_id=None), True, {"expected_retry_scid": RETRY_SCID}, "retry_source_connection_id"),
        (server_params(retry_source_connection_id=b"\x99"), True, {"expected_retry_scid": RETRY_SCID}, "retry_source_connection_id"),
    ],
)
def test_connection_id_authentication_failures(params, from_server, kwargs, name):
    expected_scid = SERVER_SCID if from_server else CLIENT_SCID
    with pytest.raises(TransportError) as info:
        validate_connection_ids(
            params,
            from_server,
            expected_initial_scid=expected_scid,
            expected_original_dcid=ODCID if from_server else None,
            **kwargs,
        )
    assert info.value.error_code == TPE
    assert name in info.value.reason


def test_validating_a_server_needs_the_original_dcid():
    with pytest.raises(ValueError):
        validate_connection_ids(server_params(retry_source_connection_id=None), True, expected_initial_scid=SERVER_SCID)


# ---------------------------------------------------------------- RFC 9000 §7.4.1


def test_0rtt_same_or_larger_limits_are_compatible():
    remembered = server_params()
    check_0rtt_compatible(remembered, server_params())
    larger = {name: getattr(remembered, name) + 1 for name in ZERO_RTT_REMEMBERED}
    check_0rtt_compatible(remembered, server_params(**larger))
    # Parameters outside the remembered set may change freely.
    check_0rtt_compatible(remembered, server_params(max_idle_timeout=1, max_ack_delay=100, min_ack_delay=None))
    # A datagram limit that was never sent cannot be reduced.
    check_0rtt_compatible(server_params(max_datagram_frame_size=None), server_params(max_datagram_frame_size=None))


@pytest.mark.parametrize("name", ZERO_RTT_REMEMBERED)
def test_0rtt_reduced_limit_is_a_protocol_violation(name):
    remembered = server_params()
    with pytest.raises(TransportError) as info:
        check_0rtt_compatible(remembered, server_params(**{name: getattr(remembered, name) - 1}))
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    assert name in info.value.reason


def test_0rtt_dropping_datagram_support_is_a_protocol_violation():
    with pytest.raises(TransportError) as info:
        check_0rtt_compatible(server_params(), server_params(max_datagram_frame_size=None))
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    assert "max_datagram_frame_size" in info.value.reason


def test_zero_rtt_remembered_set_is_rfc_9000_7_4_1_plus_datagrams():
    assert set(ZERO_RTT_REMEMBERED) == {
        "active_connection_id_limit",
        "initial_max_data",
        "initial_max_stream_data_bidi_local",
        "initial_max_stream_data_bidi_remote",
        "initial_max_stream_data_uni",
        "initial_max_streams_bidi",
        "initial_max_streams_uni",
        "max_datagram_frame_size",
    }


# ---------------------------------------------------------------- interop


def test_interop_with_aioquic_codec():
    """Both directions against aioquic's independent codec (a peer nobody here wrote)."""
    aioquic_packet = pytest.importorskip("aioquic.quic.packet", reason="aioquic (test extra) not installed")
    from aioquic.buffer import Buffer as AioBuffer

    ours = server_params(grease_quic_bit=False, min_ack_delay=None)
    # Encoded by us, decoded by aioquic.
    buf = AioBuffer(data=encode_transport_parameters(ours))
    theirs = aioquic_packet.pull_quic_transport_parameters(buf)
    for name in ZERO_RTT_REMEMBERED + ("max_idle_timeout", "max_ack_delay", "ack_delay_exponent"):
        assert getattr(theirs, name) == getattr(ours, name), name
    assert theirs.initial_source_connection_id == ours.initial_source_connection_id
    assert theirs.stateless_reset_token == TOKEN
    assert theirs.preferred_address.connection_id == PREFERRED.connection_id
    assert theirs.version_information.chosen_version == 0x6B3343CF
    # Encoded by aioquic, decoded by us.
    out = AioBuffer(capacity=1024)
    aioquic_packet.push_quic_transport_parameters(out, theirs)
    assert decode_transport_parameters(out.data, from_server=True) == ours
