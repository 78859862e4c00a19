"""A full socket send buffer loses nothing: what the kernel does not take is
kept and sent when the socket becomes writable again, and the engine is not
asked for more packets meanwhile."""

import asyncio
import hashlib
import os

import quicfast
from tests.helpers.engines import client_tls, server_tls


class StingySocket:
    """Wraps a transport's UdpSocketState: every third send takes only part of
    the datagrams (as a full kernel buffer does), every fifth takes none."""

    def __init__(self, inner):
        self._inner = inner
        self.calls = self.partial = self.refused = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def send(self, data, addr, segment_size=0, ecn=0):
        self.calls += 1
        if self.calls % 5 == 0:
            self.refused += 1
            raise BlockingIOError()
        if self.calls % 3 == 0 and segment_size and len(data) > 2 * segment_size:
            self.partial += 1
            keep = (len(data) // segment_size // 2) * segment_size
            return self._inner.send(memoryview(data)[:keep], addr, segment_size, ecn)
        return self._inner.send(data, addr, segment_size, ecn)


def test_partial_and_refused_sends_lose_nothing():
    async def main():
        server_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server_transport.listen(server_tls())
        client_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        stingy = StingySocket(client_transport._udp)
        client_transport._udp = stingy
        conn = await client_transport.dial(server_transport.local_addr, client_tls(), server_name="localhost")
        server_conn = await listener.accept()
        payload = os.urandom(4 << 20)
        stream = conn.open_stream()
        stream.write(payload)
        stream.close()
        peer = await server_conn.accept_stream()
        assert hashlib.sha256(await peer.read_all()).digest() == hashlib.sha256(payload).digest()
        assert stingy.partial > 0 and stingy.refused > 0
        assert conn.stats()["packets_lost"] == 0, "held datagrams must be sent, not lost"
        conn.close()
        client_transport.close()
        server_transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_connection_high_water_bounds_many_writers():
    """Many streams writing at once: what the connection holds unacknowledged
    never exceeds Config.connection_send_high_water plus the one write each
    writer made before drain(), though every stream's own mark is far higher."""
    writers, chunk, chunks = 16, 64 * 1024, 24
    high_water = 256 * 1024
    config = quicfast.Config(connection_send_high_water=high_water, stream_send_high_water=64 << 20)

    async def main():
        server_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server_transport.listen(server_tls())

        async def serve():
            server_conn = await listener.accept()

            async def digest(stream):
                stream.write(hashlib.sha256(await stream.read_all()).digest())
                stream.close()

            tasks = []
            for _ in range(writers):   # read each stream as soon as it arrives
                tasks.append(asyncio.create_task(digest(await server_conn.accept_stream())))
            await asyncio.gather(*tasks)

        server_task = asyncio.create_task(serve())
        conn = await quicfast.dial_addr(server_transport.local_addr, client_tls(), config)
        peak = 0
        waits = 0

        async def writer(index):
            nonlocal peak, waits
            stream = conn.open_stream()
            payload = os.urandom(chunk * chunks)
            for i in range(chunks):
                stream.write(payload[i * chunk:(i + 1) * chunk])
                peak = max(peak, conn.send_buffered)
                if conn.send_buffered > high_water:
                    waits += 1
                await stream.drain()
                assert conn.send_buffered <= high_water + writers * chunk
            stream.close()
            assert await stream.read_all() == hashlib.sha256(payload).digest()

        await asyncio.gather(*(writer(i) for i in range(writers)))
        await server_task
        # All 16 first writes land before any flush: the mark was crossed and drain() waited.
        assert waits > 0
        assert high_water < peak <= high_water + writers * chunk
        assert conn.send_buffered == 0
        conn.close()
        server_transport.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_connection_high_water_validated():
    import pytest
    with pytest.raises(ValueError):
        quicfast.Config(connection_send_high_water=-1)
