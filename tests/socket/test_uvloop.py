"""The asyncio API works on uvloop too (issue 5): a bulk transfer with
backpressure, the streams API (open_stream_sync past the peer's limit,
accept_stream, read/readexactly/read_all, cancel_write reaching the reader)
and a clean close, over loopback, under uvloop's event loop."""

import asyncio
import hashlib
import os

import pytest

import quicfast
from tests.helpers.engines import client_tls, server_tls

uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (pip install uvloop; it is in the test extra)")

TIMEOUT = 30


def run_on_uvloop(coro_fn):
    async def checked():
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        return await asyncio.wait_for(coro_fn(), TIMEOUT)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(checked())


def test_bulk_transfer_with_backpressure_on_uvloop():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())
        payload = os.urandom(6 << 20)

        async def serve():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            digest = hashlib.sha256(await stream.read_all()).digest()
            stream.write(digest)
            stream.close()
            await conn.wait_closed()

        server_task = asyncio.create_task(serve())
        config = quicfast.Config(stream_send_high_water=512 * 1024)
        conn = await quicfast.dial_addr(transport.local_addr, client_tls(), config)
        stream = conn.open_stream()
        for i in range(0, len(payload), 1 << 20):
            stream.write(payload[i:i + (1 << 20)])
            await stream.drain()
            assert stream.send_buffered <= 512 * 1024
        stream.close()
        assert await stream.read_all() == hashlib.sha256(payload).digest()
        conn.close()
        assert isinstance(await conn.wait_closed(), quicfast.ApplicationError)
        await server_task
        listener.close()
        transport.close()

    run_on_uvloop(main)


def test_streams_api_on_uvloop():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls(), quicfast.Config(max_incoming_streams=8))
        count = 100

        async def serve():
            conn = await listener.accept()

            async def answer(stream):
                header = await stream.readexactly(4)
                body = await stream.read_all()
                stream.write(header + body[::-1])
                stream.close()

            tasks = [asyncio.create_task(answer(await conn.accept_stream())) for _ in range(count)]
            await asyncio.gather(*tasks)
            reset = await conn.accept_stream()
            with pytest.raises(quicfast.StreamError) as info:
                while await reset.read():
                    pass
            return info.value.error_code

        server_task = asyncio.create_task(serve())
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())

        async def one(i):
            stream = await conn.open_stream_sync()     # 100 streams against a limit of 8
            stream.write(b"%04d" % i)
            stream.write(b"body-%d" % i)
            stream.close()
            assert await stream.read_all() == b"%04d" % i + (b"body-%d" % i)[::-1]

        await asyncio.gather(*(one(i) for i in range(count)))
        stream = conn.open_stream()
        stream.write(b"partial")
        await stream.drain()
        stream.cancel_write(0x77)
        assert await server_task == 0x77
        conn.close()
        transport.close()

    run_on_uvloop(main)
