"""Hypothesis fuzzing of the HTTP/3 frame layer through the `h3_frames`
target (fuzz/h3_frames.py): mutated seeds, and streams of well-formed frame
headers with arbitrary types, lengths and payloads on the control, QPACK,
push, unknown and request streams, from either side (RFC 9114 §6.2, §7).
Each input must end in an HTTP/3 error code or be accepted; a few known
inputs check that the harness sees the codes RFC 9114 §7 and §8 name."""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz.h3_frames import FakeQuic, encode_sections, h3_frames, run_input
from quicfast.errors import H3ErrorCode as E
from quicfast.h3.frames import FrameType, StreamType, encode_frame, encode_settings, encode_varint
from tests.fuzz.test_fuzz_corpus import corpus, mutated

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

frame_types = st.sampled_from([FrameType.DATA, FrameType.HEADERS, FrameType.CANCEL_PUSH, FrameType.SETTINGS,
                               FrameType.PUSH_PROMISE, FrameType.GOAWAY, FrameType.MAX_PUSH_ID,
                               0x02, 0x06, 0x08, 0x09, 0x21, 0x40]) | st.integers(0, (1 << 62) - 1)
payloads = st.binary(max_size=64) | st.builds(
    lambda d: encode_settings(d, grease=False),
    st.dictionaries(st.integers(0, 0x40), st.integers(0, (1 << 62) - 1), max_size=5))


@st.composite
def frame_stream(draw):
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        payload = draw(payloads)
        if draw(st.integers(0, 9)) == 0:     # a lying length
            out += encode_varint(draw(frame_types)) + encode_varint(draw(st.integers(0, 1 << 20))) + payload
        else:
            out += encode_frame(draw(frame_types), payload)
    if draw(st.booleans()):
        out = out[:draw(st.integers(0, len(out)))]
    return out


@st.composite
def h3_input(draw):
    stream_types = st.sampled_from([StreamType.CONTROL, StreamType.PUSH, StreamType.QPACK_ENCODER,
                                    StreamType.QPACK_DECODER, 0x21, 0x54])
    uni = [encode_varint(draw(stream_types)) + draw(frame_stream()) for _ in range(draw(st.integers(0, 3)))]
    return bytes([draw(st.integers(0, 31))]) + encode_sections(uni + [draw(frame_stream())])


@FUZZ
@given(mutated(corpus("h3_frames")))
def test_mutated_h3_seeds(data):
    h3_frames(data)


@FUZZ
@given(h3_input())
def test_generated_h3_streams(data):
    h3_frames(data)


def closed_with(data: bytes) -> list:
    """The codes the harness's connection was closed with for one input."""
    seen = []
    original = FakeQuic.close_with_error

    def record(self, code, reason=""):
        seen.append(code)
        original(self, code, reason)

    FakeQuic.close_with_error = record
    try:
        asyncio.run(run_input(data))
    finally:
        FakeQuic.close_with_error = original
    return seen


SETTINGS = encode_frame(FrameType.SETTINGS, b"")


@pytest.mark.parametrize("flags,parts,code", [
    (0, [encode_varint(StreamType.CONTROL) + encode_frame(FrameType.GOAWAY, b""), b""], E.H3_MISSING_SETTINGS),
    (0, [encode_varint(StreamType.CONTROL) + SETTINGS + SETTINGS, b""], E.H3_FRAME_UNEXPECTED),
    (0, [encode_varint(StreamType.CONTROL) + SETTINGS + encode_frame(FrameType.GOAWAY, b"\x40"), b""],
     E.H3_FRAME_ERROR),
    (1, [encode_varint(StreamType.CONTROL) + SETTINGS + encode_frame(FrameType.GOAWAY, encode_varint(1)), b""],
     E.H3_ID_ERROR),
    (0, [encode_varint(StreamType.CONTROL) + SETTINGS + encode_frame(0x06, b""), b""], E.H3_FRAME_UNEXPECTED),
    (0, [encode_varint(StreamType.CONTROL) + SETTINGS, encode_varint(StreamType.CONTROL) + SETTINGS, b""],
     E.H3_STREAM_CREATION_ERROR),
    (0, [encode_varint(StreamType.CONTROL) + SETTINGS, b""], E.H3_CLOSED_CRITICAL_STREAM),
    (0, [encode_frame(FrameType.DATA, b"x")], E.H3_FRAME_UNEXPECTED),
    (0, [encode_frame(FrameType.HEADERS, b"\xff\xff")], E.QPACK_DECOMPRESSION_FAILED),
    (0, [encode_varint(FrameType.HEADERS) + encode_varint(10)], E.H3_FRAME_ERROR),
], ids=["missing-settings", "second-settings", "truncated-goaway", "goaway-not-request-id", "h2-frame",
        "two-control-streams", "control-closed", "data-first", "bad-qpack", "cut-frame"])
def test_known_inputs_close_with_the_rfc_code(flags, parts, code):
    seen = closed_with(bytes([flags]) + encode_sections(parts))
    assert seen and seen[0] == code, [hex(c) for c in seen]


def test_unknown_stream_and_frame_types_are_ignored():
    parts = [encode_varint(0x21) + b"anything", encode_varint(StreamType.CONTROL) + SETTINGS
             + encode_frame(0x21, b"grease"), b""]
    assert closed_with(bytes([0]) + encode_sections(parts)) == [E.H3_CLOSED_CRITICAL_STREAM]   # only at its end
