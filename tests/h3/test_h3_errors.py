"""HTTP/3 error handling on the quicfast server, driven by a raw quicfast QUIC
client that writes hand-made streams and frames: connection errors close with
the RFC 9114 §8 code, stream errors reset only the request, unknown stream
and frame types are ignored, and limits are enforced (bounded memory)."""

import asyncio

import pytest

import quicfast
from quicfast import h3
from quicfast.errors import H3ErrorCode
from quicfast.h3.frames import FrameType, StreamType, encode_frame, encode_settings, encode_varint
from tests.h3.conftest import run


async def ok_app(scope, receive, send):
    while (await receive())["more_body"]:
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _setup(pki, settings=None):
    server = await h3.serve(ok_app, port=0, certfile=pki.cert_file, keyfile=pki.key_file, settings=settings)
    tls = quicfast.TLSConfig()
    tls.load_verify_locations(cafile=pki.ca_file)
    tls.set_alpn_protocols(["h3"])
    quic = await quicfast.dial_addr(server.addr, tls, server_name="localhost")
    return server, quic


def _control(quic, *frames):
    stream = quic.open_uni_stream()
    stream.write(encode_varint(StreamType.CONTROL) + encode_frame(FrameType.SETTINGS, encode_settings({}))
                 + b"".join(frames))
    return stream


def _truncated_headers(quic):
    stream = quic.open_stream()
    stream.write(encode_varint(FrameType.HEADERS) + encode_varint(100) + b"\x00\x00")
    stream.close()


async def _expect_close(quic, code):
    error = await asyncio.wait_for(quic.wait_closed(), 10)
    assert isinstance(error, quicfast.ApplicationError), error
    assert error.error_code == code and error.remote, error


@pytest.mark.parametrize("name,code,action", [
    ("control stream without SETTINGS", H3ErrorCode.H3_MISSING_SETTINGS,
     lambda q: q.open_uni_stream().write(encode_varint(0) + encode_frame(FrameType.GOAWAY, encode_varint(0)))),
    ("second SETTINGS", H3ErrorCode.H3_FRAME_UNEXPECTED,
     lambda q: _control(q, encode_frame(FrameType.SETTINGS, b""))),
    ("DATA on the control stream", H3ErrorCode.H3_FRAME_UNEXPECTED,
     lambda q: _control(q, encode_frame(FrameType.DATA, b"x"))),
    ("HTTP/2 PING frame type", H3ErrorCode.H3_FRAME_UNEXPECTED,
     lambda q: _control(q, encode_frame(0x06, b"12345678"))),
    ("HTTP/2 setting", H3ErrorCode.H3_SETTINGS_ERROR,
     lambda q: q.open_uni_stream().write(encode_varint(0) + encode_frame(FrameType.SETTINGS, encode_varint(0x02) + encode_varint(0)))),
    ("two control streams", H3ErrorCode.H3_STREAM_CREATION_ERROR,
     lambda q: (_control(q), _control(q))),
    ("control stream closed", H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
     lambda q: _control(q).close()),
    ("push stream from a client", H3ErrorCode.H3_STREAM_CREATION_ERROR,
     lambda q: q.open_uni_stream().write(encode_varint(StreamType.PUSH) + encode_varint(0))),
    ("CANCEL_PUSH beyond MAX_PUSH_ID", H3ErrorCode.H3_ID_ERROR,
     lambda q: _control(q, encode_frame(FrameType.CANCEL_PUSH, encode_varint(3)))),
    ("MAX_PUSH_ID decreasing", H3ErrorCode.H3_ID_ERROR,
     lambda q: _control(q, encode_frame(FrameType.MAX_PUSH_ID, encode_varint(5)),
                        encode_frame(FrameType.MAX_PUSH_ID, encode_varint(2)))),
    ("truncated GOAWAY", H3ErrorCode.H3_FRAME_ERROR,
     lambda q: _control(q, encode_frame(FrameType.GOAWAY, b""))),
    ("oversized control frame", H3ErrorCode.H3_EXCESSIVE_LOAD,
     lambda q: _control(q, encode_varint(FrameType.GOAWAY) + encode_varint(1 << 30))),
    ("request stream ends inside HEADERS", H3ErrorCode.H3_FRAME_ERROR,     # found by the h3_frames fuzz target
     lambda q: _truncated_headers(q)),
    ("bad QPACK encoder stream", H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
     lambda q: q.open_uni_stream().write(encode_varint(StreamType.QPACK_ENCODER) + b"\x3f\xff\x7f")),
])
def test_connection_errors(pki, name, code, action):
    async def main():
        server, quic = await _setup(pki)
        action(quic)
        await _expect_close(quic, code)
        await server.shutdown()
    run(main(), 30)


def _request_fields(path=b"/"):
    return [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", path)]


async def _h3_client(quic):
    conn = h3.H3Connection(quic, is_client=True)
    await conn.start()
    return conn


def test_data_before_headers_closes_connection(pki):
    async def main():
        server, quic = await _setup(pki)
        await _h3_client(quic)
        stream = quic.open_stream()
        stream.write(encode_frame(FrameType.DATA, b"early"))
        await _expect_close(quic, H3ErrorCode.H3_FRAME_UNEXPECTED)
        await server.shutdown()
    run(main(), 30)


@pytest.mark.parametrize("fields", [
    [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost")],               # no :path
    _request_fields() + [(b"Upper", b"x")],
    _request_fields() + [(b"connection", b"close")],
    [(b":method", b"GET"), (b"x", b"y"), (b":path", b"/"), (b":scheme", b"https"), (b":authority", b"h")],
])
def test_malformed_request_is_reset_and_connection_lives(pki, fields):
    async def main():
        server, quic = await _setup(pki)
        conn = await _h3_client(quic)
        req = await conn.open_request()
        req.send_headers(fields, end_stream=True)
        with pytest.raises(quicfast.StreamError) as info:
            await req.receive_headers()
        assert info.value.error_code == H3ErrorCode.H3_MESSAGE_ERROR
        req = await conn.open_request()   # the connection still serves
        req.send_headers(_request_fields(), end_stream=True)
        assert h3.messages.check_response(await req.receive_headers())[0] == 200
        assert await req.read_all() == b"ok"
        conn.close()
        await server.shutdown()
    run(main(), 30)


def test_oversized_header_section_is_refused(pki):
    async def main():
        server, quic = await _setup(pki, settings=h3.H3Settings(max_field_section_size=2000, enable_connect_protocol=True))
        conn = await _h3_client(quic)
        await conn.wait_settings()
        req = await conn.open_request()
        with pytest.raises(h3.H3StreamError):   # the peer's limit is enforced when sending too
            req.send_headers(_request_fields() + [(b"x-big", b"a" * 5000)], end_stream=True)
        conn._peer_max_field_section_size = 1 << 30   # now bypass our own check
        req.send_headers(_request_fields() + [(b"x-big", b"a" * 5000)], end_stream=True)
        with pytest.raises(quicfast.StreamError) as info:
            await req.receive_headers()
        assert info.value.error_code == H3ErrorCode.H3_EXCESSIVE_LOAD
        conn.close()
        await server.shutdown()
    run(main(), 30)


def test_unknown_stream_and_frame_types_are_ignored(pki):
    async def main():
        server, quic = await _setup(pki)
        conn = await _h3_client(quic)
        odd = quic.open_uni_stream()
        odd.write(encode_varint(0x21 + 0x1F * 7) + b"whatever")   # reserved stream type
        odd.close()
        req = await conn.open_request()
        # unknown and reserved frames around the message are skipped
        req.stream.write(encode_frame(0x21, b"grease"))
        req.send_headers(_request_fields())
        req.stream.write(encode_frame(0x1234, b"unknown"))
        req.send_data(b"body", end_stream=True)
        assert h3.messages.check_response(await req.receive_headers())[0] == 200
        assert await req.read_all() == b"ok"
        assert not conn.closed
        conn.close()
        await server.shutdown()
    run(main(), 30)


@pytest.mark.parametrize("length,chunks", [
    (b"5", [b"abc"]),               # shorter than announced
    (b"2", [b"abc"]),               # longer
    (b"3", [b"ab", b"cd"]),         # longer over two DATA frames
    (b"x1", [b"abc"]),              # not a number
    (b"3, 4", [b"abc"]),            # differing values
], ids=["short", "long", "long-later", "not-a-number", "differing"])
def test_body_not_matching_content_length_is_a_stream_error(pki, length, chunks):
    """RFC 9114 §4.1.2: DATA that does not add up to Content-Length makes the
    request malformed: the stream is reset with H3_MESSAGE_ERROR, the connection lives."""
    async def main():
        server, quic = await _setup(pki)
        conn = await _h3_client(quic)
        req = await conn.open_request()
        req.send_headers(_request_fields() + [(b"content-length", length)])
        for chunk in chunks:
            req.send_data(chunk)
        req.end()
        with pytest.raises(quicfast.StreamError) as info:
            await req.receive_headers()
            await req.read_all()
        assert info.value.error_code == H3ErrorCode.H3_MESSAGE_ERROR
        req = await conn.open_request()
        req.send_headers(_request_fields() + [(b"content-length", b"3, 3")])   # a list of equal values is fine
        req.send_data(b"abc", end_stream=True)
        assert h3.messages.check_response(await req.receive_headers())[0] == 200
        assert await req.read_all() == b"ok"
        conn.close()
        await server.shutdown()
    run(main(), 30)


def test_client_refuses_a_response_body_not_matching_content_length(pki, tmp_path):
    async def lying_app(scope, receive, send):
        length = b"10" if scope["path"] == "/lie" else b"3"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else b"abc"})

    async def main():
        server = await h3.serve(lying_app, port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        base = f"https://localhost:{server.addr[1]}"
        async with h3.Client(ca_file=pki.ca_file) as client:
            r = await client.get(base + "/lie")
            with pytest.raises(h3.H3StreamError) as info:
                await r.read()
            assert info.value.error_code == H3ErrorCode.H3_MESSAGE_ERROR
            r = await client.get(base + "/true")
            assert await r.read() == b"abc"
            r = await client.request("HEAD", base + "/true")   # HEAD: Content-Length without a body
            assert r.status == 200 and r.headers.get("content-length") == "3" and await r.read() == b""
        await server.shutdown()
    run(main(), 30)


def test_request_trailers_with_a_pseudo_header_are_a_stream_error(pki):
    """RFC 9114 §4.1.2: pseudo-header fields in a trailer section make the request malformed."""
    async def main():
        server, quic = await _setup(pki)
        conn = await _h3_client(quic)
        req = await conn.open_request()
        req.send_headers(_request_fields())
        req.send_data(b"body")
        req.send_trailers([(b":path", b"/other")])
        with pytest.raises(quicfast.StreamError) as info:
            await req.receive_headers()
        assert info.value.error_code == H3ErrorCode.H3_MESSAGE_ERROR
        assert not conn.closed
        conn.close()
        await server.shutdown()
    run(main(), 30)
