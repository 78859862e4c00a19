"""A connection that sent or received CONNECTION_CLOSE is over for the
application at once (quic-go's semantics), while its Transport keeps its
connection IDs and close datagram until the closing or draining period ends
(RFC 9000 §10.2). Loopback only; every test is bounded by asyncio.wait_for.

The records' expiry timers are cancelled where a test sends to them, so that
no test depends on how long the closing period lasts."""

import asyncio
import socket

import quicfast
from quicfast import errors
from tests.helpers.engines import client_tls, server_tls
from tests.helpers.waiting import eventually

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def connected_pair():
    server = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = server.listen(server_tls())
    client = await quicfast.Transport.bind("127.0.0.1", 0)
    conn = await client.dial(server.local_addr, client_tls())
    server_conn = await listener.accept()
    return server, client, conn, server_conn


def records(transport):
    return set(transport._closed_routes.values())


def freeze(transport):
    """Keep the transport's closed records past their closing period."""
    for record in records(transport):
        record.expiry.cancel()


def short_header_datagram(cid: bytes, size: int = 1200) -> bytes:
    return bytes([0x40]) + cid + b"\x00" * (size - 1 - len(cid))


def short_header_cid(record, transport) -> bytes:
    """One of the record's CIDs that short headers carry (a server's record
    also holds the client's 8-byte original DCID, routed for Initials)."""
    return next(cid for cid in record.cids if len(cid) == transport.connection_id_length)


class SendLog:
    """Stands in for a Transport's UdpSocketState and keeps what it sends."""

    def __init__(self, udp):
        self._udp, self.sent = udp, []

    def __getattr__(self, attr):
        return getattr(self._udp, attr)

    def send(self, data, addr, segment=0, ecn=0):
        self.sent.append(bytes(data))
        return self._udp.send(data, addr, segment, ecn)


def test_close_ends_the_connection_once_its_close_datagram_is_sent():
    async def main():
        server, client, conn, server_conn = await connected_pair()
        cids = set(conn._cids)
        conn.close_with_error(7, "done")
        client._flush_connection(conn)          # the flush at the end of this loop pass
        # Over for the application...
        assert isinstance(conn.close_error, errors.ApplicationError)
        assert conn.close_error.error_code == 7 and not conn.close_error.remote
        assert conn not in client._connections and not conn._cids
        # ...while the transport still routes its connection IDs, to the close datagram.
        (record,) = records(client)
        assert set(record.cids) == cids and set(client._closed_routes) == cids
        assert record.datagram and record.addr[:2] == server.local_addr[:2]
        assert isinstance(await conn.wait_closed(), errors.ApplicationError)
        # The peer drains: its connection is over as soon as the close arrives.
        cause = await server_conn.wait_closed()
        assert isinstance(cause, errors.ApplicationError) and cause.remote and cause.error_code == 7
        (drain,) = records(server)
        assert drain.datagram is None
        client.close()
        server.close()

    run(main())


def test_the_closing_record_answers_late_packets_with_its_close_datagram():
    async def main():
        server, client, conn, server_conn = await connected_pair()
        log = server._udp = SendLog(server._udp)
        server_conn.close_with_error(3, "bye")
        server._flush_connection(server_conn)
        freeze(server)
        (record,) = records(server)
        assert log.sent == [record.datagram]
        # Let the client's last packets (sent before it saw the close) reach the record.
        await conn.wait_closed()
        client.close()
        for _ in range(2):
            await asyncio.sleep(0)
        before, answered = record.received, record.sent
        # Up to the second power of two past what it has received: two answers.
        first = 1 << before.bit_length()
        count = 2 * first - before
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attacker.bind(("127.0.0.1", 0))
        try:
            for _ in range(count):
                attacker.sendto(short_header_datagram(short_header_cid(record, server)), server.local_addr)
            assert await eventually(lambda: record.received == before + count)
        finally:
            attacker.close()
        # The same datagram, to the connection's peer; neither a new connection
        # nor a stateless reset.
        assert record.sent == answered + 2
        assert log.sent == [record.datagram] * (1 + record.sent)
        assert not server._connections
        server.close()

    run(main())


def test_the_draining_record_sends_nothing():
    async def main():
        server, client, conn, server_conn = await connected_pair()
        server_conn.close()
        await conn.wait_closed()                # the client drains
        freeze(client)
        (record,) = records(client)
        assert record.datagram is None
        log = client._udp = SendLog(client._udp)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        try:
            for _ in range(4):
                sender.sendto(short_header_datagram(short_header_cid(record, client)), client.local_addr)
            assert await eventually(lambda: record.received == 4)
        finally:
            sender.close()
        assert record.sent == 0 and log.sent == []
        client.close()
        server.close()

    run(main())


def test_records_end_with_the_closing_period_and_with_transport_close():
    async def main():
        server, client, conn, server_conn = await connected_pair()
        conn.close()
        client._flush_connection(conn)
        assert records(client)
        assert await eventually(lambda: not client._closed_routes), "the closing period never ended"
        # Closing the transport drops the records at once.
        server2, client2, conn2, server_conn2 = await connected_pair()
        server_conn2.close()
        server2._flush_connection(server_conn2)
        (record,) = records(server2)
        server2.close()
        assert record.expiry.cancelled() and not server2._closed_routes
        for transport in (client, server, client2):
            transport.close()

    run(main())


def test_a_dial_addr_socket_closes_when_the_closing_period_ends():
    async def main():
        server = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server.listen(server_tls())
        conn = await quicfast.dial_addr(server.local_addr, client_tls())
        transport = conn._transport
        conn.close()
        transport._flush_connection(conn)
        assert conn.close_error is not None
        # The socket stays for the closing period, then closes by itself.
        assert not transport._closed and records(transport)
        assert await eventually(lambda: transport._closed), "the dial_addr socket was never closed"
        assert not transport._closed_routes
        listener.close()
        server.close()

    run(main())


def test_a_dial_addr_socket_is_closed_when_the_loop_shuts_down_within_the_period():
    transports = []

    async def main():
        server = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server.listen(server_tls())
        conn = await quicfast.dial_addr(server.local_addr, client_tls())
        transports.append(conn._transport)
        conn.close()
        await conn.wait_closed()
        listener.close()
        server.close()
        # Return at once: asyncio.run ends the loop within the closing period.

    run(main())
    (transport,) = transports
    assert transport._closed and transport._sock.fileno() == -1


def test_accept_stream_fails_as_soon_as_the_peer_closes():
    async def main():
        server, client, conn, server_conn = await connected_pair()
        waiting = asyncio.ensure_future(server_conn.accept_stream())
        await asyncio.sleep(0)
        conn.close_with_error(9, "gone")
        try:
            await waiting
        except errors.ApplicationError as exc:
            assert exc.error_code == 9 and exc.remote
        else:
            raise AssertionError("accept_stream returned after the peer closed")
        client.close()
        server.close()

    run(main())
