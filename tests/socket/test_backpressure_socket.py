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
