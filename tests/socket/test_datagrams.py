"""DATAGRAM frames (RFC 9221) through the asyncio API on loopback: a sender
that calls drain_datagrams() after each burst loses nothing to the send
queue, and one that floods without yielding sees exactly the overflow
counted. Bounded by asyncio.wait_for."""

import asyncio

import quicfast
from quicfast.connection import DATAGRAM_LOW_WATER
from tests.helpers.engines import client_tls, server_tls

TIMEOUT = 30
CONFIG = quicfast.Config(enable_datagrams=True)


async def _pair():
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(server_tls(), CONFIG)
    client = await quicfast.dial_addr(transport.local_addr, client_tls(), CONFIG)
    server = await listener.accept()
    return transport, listener, client, server


async def _receive_until(conn, count, quiet=0.5):
    """Datagrams until `count` or `quiet` seconds without one (no task per item)."""
    got = []
    try:
        while len(got) < count:
            async with asyncio.timeout(quiet):
                batch = await conn.receive_datagrams()
            assert batch            # at least one per call
            got += batch
    except TimeoutError:
        pass
    return got


def test_drain_datagrams_loses_nothing_to_the_send_queue():
    async def main():
        transport, listener, client, server = await _pair()
        count = 5000
        receiver = asyncio.create_task(_receive_until(client, count))
        for i in range(count):
            server.send_datagram(i.to_bytes(4, "big") + bytes(996))
            if i % 64 == 63:
                await server.drain_datagrams()
                assert server.datagrams_queued <= DATAGRAM_LOW_WATER
        await server.drain_datagrams()
        got = await receiver
        stats = server.stats()
        assert stats["datagrams_dropped"] == 0
        assert client.stats()["datagrams_dropped_on_receive"] == 0
        # Never retransmitted: each one arrived or was in a packet declared lost.
        assert len(got) >= count - stats["packets_lost"]
        assert len({int.from_bytes(d[:4], "big") for d in got}) == len(got)
        client.close_with_error(0)
        listener.close()
        transport.close()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_flood_without_yielding_overflows_by_the_counted_amount():
    async def main():
        transport, listener, client, server = await _pair()
        before = server.stats()["datagrams_dropped"]
        for i in range(2000):
            server.send_datagram(bytes(100))       # no await: nothing is sent meanwhile
        assert server.datagrams_queued == 256
        assert server.stats()["datagrams_dropped"] - before == 2000 - 256
        await server.drain_datagrams()
        client.close_with_error(0)
        listener.close()
        transport.close()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
