import pytest
from hypothesis import given, strategies as st

from quicfast.proto.buffer import Buffer, BufferReadError, BufferWriteError, encode_varint, size_varint
from tests.helpers.oracles import varint_encode

# RFC 9000 Appendix A.1 examples.
RFC_VARINTS = [
    ("c2197c5eff14e88c", 151288809941952652),
    ("9d7f3e7d", 494878333),
    ("7bbd", 15293),
    ("25", 37),
]


@pytest.mark.parametrize("hexdata,value", RFC_VARINTS)
def test_rfc9000_a1_varint_vectors(hexdata, value):
    buf = Buffer(data=bytes.fromhex(hexdata))
    assert buf.pull_uint_var() == value
    assert buf.eof()
    assert encode_varint(value) == bytes.fromhex(hexdata)


def test_two_byte_encoding_of_37_decodes():
    # RFC 9000 A.1: "the two-byte sequence 0x4025 also decodes to 37".
    assert Buffer(data=b"\x40\x25").pull_uint_var() == 37


@given(st.integers(min_value=0, max_value=(1 << 62) - 1))
def test_varint_roundtrip_matches_oracle(value):
    encoded = encode_varint(value)
    assert encoded == varint_encode(value)
    assert size_varint(value) == len(encoded)
    buf = Buffer(capacity=8)
    buf.push_uint_var(value)
    assert buf.data == encoded
    assert Buffer(data=encoded).pull_uint_var() == value


def test_varint_too_large_rejected():
    with pytest.raises(BufferWriteError):
        encode_varint(1 << 62)
    with pytest.raises(BufferWriteError):
        Buffer(capacity=8).push_uint_var(1 << 62)


@pytest.mark.parametrize("hexdata", ["c2197c5eff14e8", "9d7f3e", "7b", ""])
def test_truncated_varint_raises(hexdata):
    buf = Buffer(data=bytes.fromhex(hexdata))
    with pytest.raises(BufferReadError):
        buf.pull_uint_var()
    assert buf.tell() == 0


def test_fixed_width_roundtrip():
    buf = Buffer(capacity=15)
    buf.push_uint8(0x01)
    buf.push_uint16(0x0203)
    buf.push_uint32(0x04050607)
    buf.push_uint64(0x08090A0B0C0D0E0F)
    assert buf.data == bytes(range(1, 16))
    with pytest.raises(BufferWriteError):
        buf.push_uint8(0)
    rd = Buffer(data=buf.data)
    assert (rd.pull_uint8(), rd.pull_uint16(), rd.pull_uint32(), rd.pull_uint64()) == (
        0x01, 0x0203, 0x04050607, 0x08090A0B0C0D0E0F)
    assert rd.eof()


@pytest.mark.parametrize("method,size", [("pull_uint8", 1), ("pull_uint16", 2), ("pull_uint32", 4), ("pull_uint64", 8)])
def test_fixed_width_read_past_end(method, size):
    buf = Buffer(data=b"\x00" * (size - 1))
    with pytest.raises(BufferReadError):
        getattr(buf, method)()


def test_bytes_and_seek():
    buf = Buffer(data=b"hello world")
    assert buf.pull_bytes(5) == b"hello"
    with pytest.raises(BufferReadError):
        buf.pull_bytes(7)
    with pytest.raises(BufferReadError):
        buf.pull_bytes(-1)
    buf.seek(6)
    assert buf.pull_bytes(5) == b"world"
    with pytest.raises(BufferReadError):
        buf.seek(12)
    assert buf.data_slice(0, 5) == b"hello"
    with pytest.raises(BufferReadError):
        buf.data_slice(3, 20)
    out = Buffer(capacity=4)
    with pytest.raises(BufferWriteError):
        out.push_bytes(b"12345")
    out.push_bytes(b"1234")
    assert out.data == b"1234"
