import pytest
from hypothesis import given, strategies as st

from quicfast.proto import packet
from tests.helpers.oracles import decode_packet_number


def test_rfc9000_a3_packet_number_decoding():
    assert packet.decode_pn(0x9B32, 2, 0xA82F30EA) == 0xA82F9B32


@pytest.mark.parametrize("pn,largest_acked,length", [
    (0xAC5C02, 0xABE8B3, 2),   # RFC 9000 A.2: 29,519 unacked -> 16 bits
    (0xACE8FE, 0xABE8B3, 3),   # RFC 9000 A.2: 65,099 unacked -> 18 bits -> 3 bytes
    (0, None, 1),
    (200, None, 2),
])
def test_rfc9000_a2_packet_number_length(pn, largest_acked, length):
    assert packet.encode_pn_length(pn, largest_acked) == length


@given(st.integers(0, (1 << 62) - 1), st.integers(1, 4), st.integers(0, (1 << 62) - 1))
def test_decode_matches_rfc_pseudocode(truncated_full, pn_len, largest):
    truncated = truncated_full & ((1 << (8 * pn_len)) - 1)
    assert packet.decode_pn(truncated, pn_len, largest) == decode_packet_number(truncated, 8 * pn_len, largest)


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 20))
def test_encode_then_decode_roundtrip(largest_acked, gap):
    pn = largest_acked + 1 + gap
    n = packet.encode_pn_length(pn, largest_acked)
    truncated = pn & ((1 << (8 * n)) - 1)
    # Receiver has seen at most up to pn - 1 (and at least largest_acked).
    assert packet.decode_pn(truncated, n, largest_acked) == pn


def test_parse_initial_header():
    # RFC 9001 A.2 client Initial header (unprotected form).
    hdr = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002")
    info = packet.pull_header(hdr + bytes(1200 - len(hdr)))
    assert info.is_long and info.version == 1 and info.packet_type == 0
    assert info.dcid == bytes.fromhex("8394c8f03e515708") and info.scid == b"" and info.token == b""
    assert info.pn_offset == 18 and info.packet_length == 18 + 0x49E


def test_parse_v2_types():
    # RFC 9369: Initial has type bits 0b01.
    hdr = bytes([0xD0]) + (0x6B3343CF).to_bytes(4, "big") + b"\x01a\x01b" + b"\x00" + b"\x05" + b"12345"
    info = packet.pull_header(hdr)
    assert info.packet_type == 0 and info.version == 0x6B3343CF


def test_short_header_uses_local_cid_length():
    info = packet.pull_header(b"\x40" + b"ABCDEFGH" + b"\x00" * 30, 8)
    assert not info.is_long and info.dcid == b"ABCDEFGH" and info.pn_offset == 9


@pytest.mark.parametrize("data", [
    b"", b"\xc3\x00\x00", bytes.fromhex("c30000000108"),          # truncated invariants
    bytes.fromhex("c3000000011511111111111111111111111111111111111111111100"),  # dcid > 20
    bytes.fromhex("c300000001000044"),                               # truncated token length/length
    bytes.fromhex("c30000000100000041"),                             # length past end
])
def test_malformed_headers_rejected(data):
    with pytest.raises(ValueError):
        packet.pull_header(data)


def test_version_negotiation_roundtrip():
    vn = packet.encode_version_negotiation(b"dcid", b"scid", [1, 0x6B3343CF])
    info = packet.pull_header(vn)
    assert info.packet_type == 5 and info.dcid == b"scid" and info.scid == b"dcid"
    versions = packet.parse_version_negotiation(vn)
    assert versions[:2] == [1, 0x6B3343CF] and versions[2] & 0x0F0F0F0F == 0x0A0A0A0A


@given(st.binary(max_size=64), st.integers(0, 20))
def test_parse_never_crashes(data, cid_len):
    try:
        info = packet.pull_header(data, cid_len)
    except ValueError:
        return
    assert info.packet_length <= len(data)
