"""When Transport sends: handshake flights leave as soon as the datagrams for
their connection are read, without waiting for the rest of the receive batch,
and the datagrams of one flight are still answered together. Loopback only;
every test is bounded by asyncio.wait_for."""

import asyncio

import quicfast
from quicfast.stream import FLUSH_AFTER_FINISHED_STREAMS
from tests.helpers.engines import client_tls, server_tls

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


class SocketSpy:
    """Stands in for a Transport's UdpSocketState and logs what it is asked to do."""

    def __init__(self, udp, log, name):
        self._udp, self._log, self._name = udp, log, name

    def __getattr__(self, attr):
        return getattr(self._udp, attr)

    def send(self, data, addr, segment=0, ecn=0):
        self._log.append((self._name, "send", addr[1]))
        return self._udp.send(data, addr, segment, ecn)


def _spy_on(transport, log, name):
    transport._udp = SocketSpy(transport._udp, log, name)
    route = transport._route

    def logged_route(data, addr, now):
        log.append((name, "route", addr[1]))
        return route(data, addr, now)

    transport._route = logged_route


async def _close(conn, *closables):
    conn.close()
    await conn.wait_closed()
    for closable in closables:
        closable.close()


def test_a_servers_flight_leaves_before_the_next_connections_datagrams_are_read():
    async def main():
        log = []
        server = await quicfast.Transport.bind("127.0.0.1", 0)
        _spy_on(server, log, "server")
        listener = server.listen(server_tls())
        clients = [await quicfast.Transport.bind("127.0.0.1", 0) for _ in range(2)]
        # Both dials flush in the same loop pass, so the server reads both
        # ClientHellos in one batch.
        conns = await asyncio.gather(*(c.dial(server.local_addr, client_tls()) for c in clients))
        ports = [c.local_addr[1] for c in clients]
        server_log = [(what, port) for _, what, port in log]
        first, second = sorted(ports, key=lambda p: server_log.index(("route", p)))
        second_answered = server_log.index(("send", second))
        second_hello_read = max(i for i, entry in enumerate(server_log[:second_answered])
                                if entry == ("route", second))
        # Without the early flush: both ClientHellos read, then both flights sent.
        assert server_log.index(("send", first)) < second_hello_read, server_log
        for conn, client in zip(conns, clients):
            await _close(conn, client)
        listener.close()
        server.close()

    run(main())


def test_the_client_answers_the_servers_whole_flight_in_one_datagram_batch():
    async def main():
        log = []
        server = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server.listen(server_tls())
        client = await quicfast.Transport.bind("127.0.0.1", 0)
        _spy_on(client, log, "client")
        conn = await client.dial(server.local_addr, client_tls())
        sends = [entry for entry in log if entry[1] == "send"]
        reads = [entry for entry in log if entry[1] == "route"]
        # The ClientHello, then one answer (Initial ACK + Finished, coalesced) to
        # the server's flight of several datagrams; an answer per datagram read
        # would make three.
        assert len(reads) >= 2, log
        assert len(sends) == 2, log
        await _close(conn, client, listener, server)

    run(main())


def test_finishing_many_streams_in_one_pass_sends_before_the_pass_ends():
    async def main():
        server = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server.listen(server_tls())

        async def echo_all():
            conn = await listener.accept()
            while True:
                stream = await conn.accept_stream()
                stream.write(await stream.read_all())
                stream.close()

        echo = asyncio.create_task(echo_all())
        client = await quicfast.Transport.bind("127.0.0.1", 0)
        conn = await client.dial(server.local_addr, client_tls())
        log = []
        _spy_on(client, log, "client")
        streams = []
        for i in range(3 * FLUSH_AFTER_FINISHED_STREAMS):
            stream = conn.open_stream()
            stream.write(b"request %d" % i)
            stream.close()
            streams.append(stream)
        # Still inside one loop pass: only the early flushes can have sent.
        sent_in_pass = sum(1 for entry in log if entry[1] == "send")
        assert sent_in_pass >= 1, log
        for i, stream in enumerate(streams):
            assert await stream.read_all() == b"request %d" % i
        echo.cancel()
        await _close(conn, client, listener, server)

    run(main())
