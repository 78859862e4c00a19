"""quicfast.h3.frames: varints (RFC 9000 §16 / Appendix A.1 vectors), SETTINGS
(RFC 9114 §7.2.4) and the incremental FrameReader under arbitrary chunking."""

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from quicfast.errors import H3ErrorCode
from quicfast.h3.exceptions import FrameError, H3ConnectionError
from quicfast.h3.frames import (
    FrameReader, FrameTooLarge, FrameType, Setting, decode_settings, decode_single_varint, decode_varint,
    encode_frame, encode_settings, encode_varint, grease_value, is_grease,
)


@pytest.mark.parametrize("encoded,value", [
    ("c2197c5eff14e88c", 151288809941952652), ("9d7f3e7d", 494878333), ("7bbd", 15293), ("25", 37),
])
def test_varint_rfc9000_vectors(encoded, value):
    data = bytes.fromhex(encoded)
    assert decode_varint(data) == (value, len(data))
    assert encode_varint(value) == data


@given(st.integers(0, (1 << 62) - 1))
def test_varint_roundtrip(value):
    data = encode_varint(value)
    assert decode_varint(data) == (value, len(data))


def test_varint_too_large_and_truncated():
    with pytest.raises(ValueError):
        encode_varint(1 << 62)
    with pytest.raises(IndexError):
        decode_varint(b"\x40")


def test_grease_values_are_reserved():
    for _ in range(100):
        assert is_grease(grease_value())
    assert not is_grease(0x20) and is_grease(0x21) and is_grease(0x21 + 0x1F)


def test_settings_roundtrip_with_grease():
    settings = {Setting.QPACK_MAX_TABLE_CAPACITY: 4096, Setting.QPACK_BLOCKED_STREAMS: 16,
                Setting.MAX_FIELD_SECTION_SIZE: 65536, Setting.H3_DATAGRAM: 1}
    decoded = decode_settings(encode_settings(settings))
    assert {k: v for k, v in decoded.items() if not is_grease(k)} == settings
    assert any(is_grease(k) for k in decoded)


@pytest.mark.parametrize("payload,code", [
    (encode_varint(0x02) + encode_varint(1), H3ErrorCode.H3_SETTINGS_ERROR),   # HTTP/2 ENABLE_PUSH
    (encode_varint(0x01) * 2 + encode_varint(1) * 2, H3ErrorCode.H3_SETTINGS_ERROR),
    (encode_varint(0x01) + encode_varint(1) + encode_varint(0x01) + encode_varint(2), H3ErrorCode.H3_SETTINGS_ERROR),
    (encode_varint(Setting.H3_DATAGRAM) + encode_varint(2), H3ErrorCode.H3_SETTINGS_ERROR),
    (encode_varint(0x01) + b"\x40", H3ErrorCode.H3_FRAME_ERROR),
])
def test_settings_errors(payload, code):
    with pytest.raises(H3ConnectionError) as info:
        decode_settings(payload)
    assert info.value.error_code == code


def test_single_varint_payloads():
    assert decode_single_varint(encode_varint(400), "GOAWAY") == 400
    with pytest.raises(FrameError):
        decode_single_varint(encode_varint(4) + b"x", "GOAWAY")
    with pytest.raises(FrameError):
        decode_single_varint(b"", "GOAWAY")


class ChunkedStream:
    """A stand-in for ReceiveStream.read() that delivers `data` in given pieces."""

    def __init__(self, data: bytes, sizes):
        self.pieces = []
        pos = 0
        for size in sizes:
            if pos >= len(data):
                break
            self.pieces.append(data[pos:pos + size])
            pos += size
        if pos < len(data):
            self.pieces.append(data[pos:])

    async def read(self, n=-1):
        await asyncio.sleep(0)
        return self.pieces.pop(0) if self.pieces else b""


async def _parse_all(reader: FrameReader):
    frames = []
    while (frame := await reader.next_frame()) is not None:
        frame_type, length = frame
        if frame_type == FrameType.DATA:
            parts = []
            while chunk := await reader.read_chunk():
                parts.append(chunk)
            frames.append((frame_type, b"".join(parts)))
        elif frame_type == FrameType.HEADERS:
            frames.append((frame_type, await reader.read_payload(1 << 20)))
        else:
            await reader.skip_payload()
            frames.append((frame_type, None))
    return frames


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([FrameType.DATA, FrameType.HEADERS, 0x21, 0x1234567]),
                          st.binary(max_size=300)), max_size=8),
       st.lists(st.integers(1, 64), max_size=40))
def test_frame_reader_any_chunking(frames, sizes):
    data = b"".join(encode_frame(t, p) for t, p in frames)
    got = asyncio.run(_parse_all(FrameReader(ChunkedStream(data, sizes))))
    expected = [(t, p if t in (FrameType.DATA, FrameType.HEADERS) else None) for t, p in frames]
    assert got == expected


def test_frame_reader_truncated_frame_is_frame_error():
    async def main():
        reader = FrameReader(ChunkedStream(encode_frame(FrameType.DATA, b"abcdef")[:-2], [3]))
        await reader.next_frame()
        with pytest.raises(FrameError):
            while await reader.read_chunk():
                pass
    asyncio.run(main())


def test_frame_reader_bounds_buffered_payload():
    async def main():
        reader = FrameReader(ChunkedStream(encode_frame(FrameType.HEADERS, b"x" * 5000), [100]))
        await reader.next_frame()
        with pytest.raises(FrameTooLarge):
            await reader.read_payload(4096)
    asyncio.run(main())
