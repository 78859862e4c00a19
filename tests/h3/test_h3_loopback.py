"""quicfast.h3 client against quicfast.h3 server over loopback: static files,
concurrency and reuse, streamed bodies and trailers both ways, httpx,
graceful shutdown with GOAWAY, HTTP Datagrams and extended CONNECT.
Every test is bounded by asyncio.wait_for."""

import asyncio
import hashlib
import os

import pytest

import quicfast
from quicfast import h3
from quicfast.errors import H3ErrorCode
from tests.h3.conftest import run


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "small.txt").write_bytes(b"hello h3\n")
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "sub").mkdir()
    (root / "sub" / "a.json").write_bytes(b"{}")
    return root


async def _static_server(www, pki, **kw):
    return await h3.serve(h3.StaticFiles(str(www)), host="127.0.0.1", port=0,
                          certfile=pki.cert_file, keyfile=pki.key_file, **kw)


def test_static_files(www, pki):
    async def main():
        server = await _static_server(www, pki)
        base = f"https://localhost:{server.addr[1]}"
        async with h3.Client(ca_file=pki.ca_file) as client:
            r = await client.get(base + "/small.txt")
            assert r.status == 200 and await r.read() == b"hello h3\n"
            assert r.headers.get("content-type").startswith("text/plain")
            assert r.headers.get("content-length") == "9" and r.http_version == "HTTP/3"
            r = await client.get(base + "/big.bin")
            assert hashlib.sha256(await r.read()).digest() == hashlib.sha256((www / "big.bin").read_bytes()).digest()
            r = await client.request("HEAD", base + "/big.bin")
            assert r.status == 200 and r.headers.get("content-length") == str(3 << 20) and await r.read() == b""
            r = await client.get(base + "/nope")
            assert r.status == 404
            await r.read()
            r = await client.get(base + "/../../etc/passwd")
            assert r.status == 404
            await r.read()
            r = await client.get(base + "/sub/")
            assert r.status == 200 and b"a.json" in await r.read()
            r = await client.request("POST", base + "/small.txt", content=b"x")
            assert r.status == 405 and r.headers.get("allow") == "GET, HEAD"
            await r.read()
        await server.shutdown()
    run(main())


def test_many_concurrent_requests_share_one_connection(www, pki):
    async def main():
        server = await _static_server(www, pki)
        base = f"https://localhost:{server.addr[1]}"
        async with h3.Client(ca_file=pki.ca_file) as client:
            async def one(i):
                r = await client.get(f"{base}/small.txt?i={i}")
                return r.status, await r.read()
            results = await asyncio.gather(*(one(i) for i in range(300)))   # 3x the stream limit
            assert set(results) == {(200, b"hello h3\n")}
            assert len(client._connections) == 1
            conn = next(iter(client._connections.values()))
            assert conn.peer_settings is not None
        await server.shutdown()
    run(main())


async def echo_app(scope, receive, send):
    """Streams the request body back, with the request's trailers echoed as response trailers."""
    assert scope["type"] == "http" and scope["http_version"] == "3"
    headers = dict(scope["headers"])
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"x-method", scope["method"].encode()), (b"x-path", scope["raw_path"]),
                            (b"x-query", scope["query_string"]), (b"x-host", headers.get(b"host", b""))]})
    digest = hashlib.sha256()
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        digest.update(message["body"])
        if message["body"]:
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message["more_body"]:
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": "http.response.trailers", "headers": [(b"x-sha256", digest.hexdigest().encode())]})


def test_streaming_upload_echo_and_trailers(pki):
    async def main():
        server = await h3.serve(echo_app, port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        payload = os.urandom(2 << 20)

        async def body():
            for i in range(0, len(payload), 100_000):
                yield payload[i:i + 100_000]
                await asyncio.sleep(0)

        async with h3.Client(ca_file=pki.ca_file) as client:
            r = await client.request("PUT", f"https://localhost:{server.addr[1]}/up?x=1", content=body(),
                                     headers={"X-Test": "1"})
            assert r.status == 200 and r.headers.get("x-method") == "PUT"
            assert r.headers.get("x-path") == "/up" and r.headers.get("x-query") == "x=1"
            assert r.headers.get("x-host") == f"localhost:{server.addr[1]}"
            echoed = b""
            async for chunk in r:
                echoed += chunk
            assert echoed == payload
            assert r.trailers.get("x-sha256") == hashlib.sha256(payload).hexdigest()
        await server.shutdown()
    run(main())


def test_app_error_gives_500_and_connection_survives(pki):
    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    async def main():
        server = await h3.serve(app, port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        base = f"https://localhost:{server.addr[1]}"
        async with h3.Client(ca_file=pki.ca_file) as client:
            r = await client.get(base + "/boom")
            assert r.status == 500
            await r.read()
            r = await client.get(base + "/ok")
            assert r.status == 204 and await r.read() == b""
        await server.shutdown()
    run(main())


def test_httpx_transport(www, pki):
    httpx = pytest.importorskip("httpx", reason="httpx is not installed")

    async def main():
        server = await _static_server(www, pki)
        async with httpx.AsyncClient(transport=h3.HTTPXTransport(ca_file=pki.ca_file)) as client:
            r = await client.get(f"https://localhost:{server.addr[1]}/small.txt")
            assert r.status_code == 200 and r.content == b"hello h3\n"
            assert r.http_version == "HTTP/3"
            r = await client.get(f"https://localhost:{server.addr[1]}/big.bin")
            assert r.content == (www / "big.bin").read_bytes()
        await server.shutdown()
    run(main())


def test_graceful_shutdown_with_goaway(pki):
    release = asyncio.Event

    async def main():
        gate = release()
        started = release()

        async def app(scope, receive, send):
            started.set()
            await gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"finished"})

        server = await h3.serve(app, port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        url = f"https://localhost:{server.addr[1]}/slow"
        async with h3.Client(ca_file=pki.ca_file) as client:
            slow = asyncio.create_task(client.get(url))
            await started.wait()
            conn = next(iter(client._connections.values()))
            shutdown = asyncio.create_task(server.shutdown(grace=10))
            assert await asyncio.wait_for(conn.wait_goaway(), 5) == slow_id(conn)
            gate.set()
            r = await slow
            assert r.status == 200 and await r.read() == b"finished"   # in flight: completed
            await shutdown
            error = await asyncio.wait_for(conn.wait_closed(), 5)
            assert isinstance(error, quicfast.ApplicationError) and error.error_code == H3ErrorCode.H3_NO_ERROR
            with pytest.raises((quicfast.QuicError, OSError)):
                await client.get(url)   # a new connection finds nobody listening
    run(main(), timeout=60)


def slow_id(conn):
    return 4   # the first request was stream 0: GOAWAY names the next one


def test_h3_datagrams_and_extended_connect(pki):
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        tls = quicfast.TLSConfig()
        tls.load_cert_chain(pki.cert_file, pki.key_file)
        tls.set_alpn_protocols(["h3"])
        listener = transport.listen(tls, quicfast.Config(enable_datagrams=True))
        settings = h3.H3Settings(h3_datagram=True, enable_connect_protocol=True)

        async def serve():
            quic = await listener.accept()
            conn = h3.H3Connection(quic, is_client=False, settings=settings)
            await conn.start()
            req = await conn.accept_request()
            request = h3.messages.check_request(await req.receive_headers(), connect_protocol_enabled=True)
            assert request.method == b"CONNECT" and request.protocol == b"webtransport"
            req.send_headers([(b":status", b"200")])
            data = await req.receive_datagram()
            req.send_datagram(data[::-1])
            await quic.wait_closed()

        server_task = asyncio.create_task(serve())
        client_tls = quicfast.TLSConfig()
        client_tls.load_verify_locations(cafile=pki.ca_file)
        client_tls.set_alpn_protocols(["h3"])
        quic = await quicfast.dial_addr(transport.local_addr, client_tls, quicfast.Config(enable_datagrams=True),
                                        server_name="localhost")
        conn = h3.H3Connection(quic, is_client=True, settings=h3.H3Settings(h3_datagram=True))
        await conn.start()
        peer = await conn.wait_settings()
        assert peer[h3.frames.Setting.ENABLE_CONNECT_PROTOCOL] == 1 and conn.datagrams_enabled
        req = await conn.open_request()
        req.send_headers([(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
                          (b":authority", b"localhost"), (b":path", b"/wt")])
        status, _ = h3.messages.check_response(await req.receive_headers())
        assert status == 200
        for _ in range(50):   # datagrams are unreliable: resend until one comes back
            req.send_datagram(b"ping")
            try:
                assert await asyncio.wait_for(req.receive_datagram(), 0.2) == b"gnip"
                break
            except asyncio.TimeoutError:
                continue
        else:
            pytest.fail("no HTTP Datagram came back")
        conn.close()
        await server_task
        transport.close()
    run(main())
