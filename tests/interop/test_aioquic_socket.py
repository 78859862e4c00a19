"""quicfast's asyncio API against aioquic's asyncio API over loopback sockets,
both directions, with SHA-256-checked transfers and a close code."""

import asyncio
import hashlib
import os

import pytest

import quicfast
from tests.helpers.certs import pki_paths
from tests.helpers.engines import ALPN, client_tls, server_tls

aioquic = pytest.importorskip("aioquic", reason="aioquic (a test dependency) is not installed")
from aioquic.asyncio import connect, serve  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.events import ConnectionTerminated  # noqa: E402

SIZE = 50 << 20   # the issue asks for 50 MiB both ways


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_quicfast_client_against_aioquic_server():
    """Upload 50 MiB; the aioquic server answers with its SHA-256."""
    async def main():
        async def handle(reader, writer):
            h = hashlib.sha256()
            while chunk := await reader.read(65536):
                h.update(chunk)
            writer.write(h.digest())
            writer.write_eof()

        config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
        server = await serve("127.0.0.1", 0, configuration=config,
                             stream_handler=lambda r, w: asyncio.ensure_future(handle(r, w)))
        port = server._transport.get_extra_info("sockname")[1]
        payload = os.urandom(SIZE)
        conn = await quicfast.dial_addr(("127.0.0.1", port), client_tls())
        stream = conn.open_stream()
        for i in range(0, SIZE, 1 << 20):
            stream.write(payload[i:i + (1 << 20)])
            await stream.drain()
        stream.close()
        assert await stream.read_all() == hashlib.sha256(payload).digest()
        conn.close()
        server.close()

    run(main())


def test_aioquic_client_against_quicfast_server():
    """Download 50 MiB from quicfast; then the client closes with code 0x33."""
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())
        payload = os.urandom(SIZE)

        async def serve_one():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            assert await stream.read_all() == b"GET"
            stream.write(payload)
            stream.close()
            await stream.drain()
            return await conn.wait_closed()

        server_task = asyncio.create_task(serve_one())
        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
        config.load_verify_locations(pki_paths().ca_file)
        async with connect("127.0.0.1", transport.local_addr[1], configuration=config) as client:
            reader, writer = await client.create_stream()
            writer.write(b"GET")
            writer.write_eof()
            received = await reader.read()
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
            client.close(error_code=0x33, reason_phrase="done")
        error = await server_task
        assert isinstance(error, quicfast.ApplicationError) and error.error_code == 0x33 and error.remote
        transport.close()

    run(main())


def test_twenty_aioquic_clients_on_one_transport():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())

        async def echo_server():
            async for conn in listener:
                async def handle(conn=conn):
                    stream = await conn.accept_stream()
                    stream.write(await stream.read_all())
                    stream.close()
                asyncio.create_task(handle())

        server_task = asyncio.create_task(echo_server())
        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
        config.load_verify_locations(pki_paths().ca_file)

        async def one(i):
            async with connect("127.0.0.1", transport.local_addr[1], configuration=config) as client:
                reader, writer = await client.create_stream()
                writer.write(b"hello %d" % i)
                writer.write_eof()
                assert await reader.read() == b"hello %d" % i

        await asyncio.gather(*(one(i) for i in range(20)))
        listener.close()
        await server_task
        transport.close()

    run(main())


def _aioquic_server_config(**kw):
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], **kw)
    config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
    return config


def _aioquic_client_config(**kw):
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost", **kw)
    config.load_verify_locations(pki_paths().ca_file)
    return config


async def _aioquic_echo_server(config):
    async def handle(reader, writer):
        writer.write(await reader.read())
        writer.write_eof()

    server = await serve("127.0.0.1", 0, configuration=config,
                         stream_handler=lambda r, w: asyncio.ensure_future(handle(r, w)))
    return server, server._transport.get_extra_info("sockname")[1]


@pytest.mark.parametrize("version", [0x00000001, 0x6B3343CF], ids=["v1", "v2"])
def test_versions_quicfast_client_aioquic_server(version):
    async def main():
        server, port = await _aioquic_echo_server(_aioquic_server_config(supported_versions=[version]))
        conn = await quicfast.dial_addr(("127.0.0.1", port), client_tls(), quicfast.Config(versions=(version,)))
        assert conn.connection_state().version == version
        stream = conn.open_stream()
        stream.write(b"versioned")
        stream.close()
        assert await stream.read_all() == b"versioned"
        conn.close()
        server.close()

    run(main())


def test_v2_aioquic_client_quicfast_server():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())

        async def serve_one():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            stream.write(await stream.read_all())
            stream.close()
            return conn.connection_state().version

        task = asyncio.create_task(serve_one())
        config = _aioquic_client_config(supported_versions=[0x6B3343CF])
        async with connect("127.0.0.1", transport.local_addr[1], configuration=config) as client:
            reader, writer = await client.create_stream()
            writer.write(b"v2")
            writer.write_eof()
            assert await reader.read() == b"v2"
        assert await task == 0x6B3343CF
        transport.close()

    run(main())


def test_chacha20_only_both_directions():
    from aioquic.tls import CipherSuite as ACipherSuite

    async def main():
        # quicfast client offering only ChaCha20 -> aioquic server.
        server, port = await _aioquic_echo_server(
            _aioquic_server_config(cipher_suites=[ACipherSuite.CHACHA20_POLY1305_SHA256]))
        tls = client_tls()
        tls.cipher_suites = [quicfast.tls.CipherSuite.CHACHA20_POLY1305_SHA256]
        conn = await quicfast.dial_addr(("127.0.0.1", port), tls)
        assert conn.connection_state().tls["cipher_suite"] == quicfast.tls.CipherSuite.CHACHA20_POLY1305_SHA256
        stream = conn.open_stream()
        stream.write(b"chacha" * 10000)
        stream.close()
        assert await stream.read_all() == b"chacha" * 10000
        conn.close()
        server.close()
        # aioquic client offering only ChaCha20 -> quicfast server.
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())

        async def serve_one():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            stream.write(await stream.read_all())
            stream.close()

        task = asyncio.create_task(serve_one())
        config = _aioquic_client_config(cipher_suites=[ACipherSuite.CHACHA20_POLY1305_SHA256])
        async with connect("127.0.0.1", transport.local_addr[1], configuration=config) as client:
            reader, writer = await client.create_stream()
            writer.write(b"poly1305")
            writer.write_eof()
            assert await reader.read() == b"poly1305"
        await task
        transport.close()

    run(main())


def test_thousand_streams_on_one_connection_to_aioquic():
    async def main():
        server, port = await _aioquic_echo_server(_aioquic_server_config())
        conn = await quicfast.dial_addr(("127.0.0.1", port), client_tls())

        async def one(i):
            stream = await conn.open_stream_sync()
            stream.write(b"%d" % i)
            stream.close()
            assert await stream.read_all() == b"%d" % i

        await asyncio.gather(*(one(i) for i in range(1000)))
        conn.close()
        server.close()

    run(main())


def test_thousand_streams_from_aioquic_client():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())

        async def serve_one():
            conn = await listener.accept()

            async def echo(stream):
                stream.write(await stream.read_all())
                stream.close()

            for _ in range(1000):
                asyncio.create_task(echo(await conn.accept_stream()))

        task = asyncio.create_task(serve_one())
        async with connect("127.0.0.1", transport.local_addr[1], configuration=_aioquic_client_config()) as client:
            async def one(i):
                reader, writer = await client.create_stream()
                writer.write(b"%d" % i)
                writer.write_eof()
                assert await reader.read() == b"%d" % i

            # aioquic raises when it exceeds the peer's stream limit, so stay in batches of 100.
            for base in range(0, 1000, 100):
                await asyncio.gather(*(one(i) for i in range(base, base + 100)))
        await task
        transport.close()

    run(main())
