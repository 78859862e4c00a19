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

SIZE = 8 << 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_quicfast_client_against_aioquic_server():
    """Upload 8 MiB; the aioquic server answers with its SHA-256."""
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
    """Download 8 MiB from quicfast; then the client closes with code 0x33."""
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
