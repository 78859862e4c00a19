"""A hostile network replays a client's 0-RTT first flight to a quicfast server.

An on-path attacker (the impairment relay of tests/helpers/proxy.py, used
here only to record) captures a resuming client's first flight: its Initial
(ClientHello with a PSK and the early_data extension) and the 0-RTT packets
carrying early stream data. After the real connection delivered its data,
the attacker sends the same datagrams again to the server (listen_early,
allow_0rtt), from the address the server saw and from another one, while
the original connection is open and after it closed.

What must hold (RFC 8446 §8, RFC 9001 §4.6.1, RFC 9000 §21.2 on 0-RTT
replay): the early data reached the application exactly once. A replayed
flight while the original lives is routed to it and is a duplicate; after
it closed, the replayed ClientHello starts a new connection whose 0-RTT is
refused (the ticket is single use within its window, `AntiReplayCache`),
so no stream is ever opened on it, and it cannot finish the handshake
because the attacker has no keys: it times out by itself. The last test
replays an HTTP/3 GET sent in 0-RTT (RFC 9114 §3.3 leaves replay safety to
the server's TLS): the ASGI application runs it once.
"""

import asyncio
import socket

import pytest

import quicfast
from quicfast.config import Config
from tests.helpers.engines import client_tls, server_tls
from tests.helpers.proxy import TO_SERVER, Impairment, ImpairmentProxy, long_header_types
from tests.helpers.waiting import eventually

TIMEOUT = 60
EARLY = b"POST /transfer?amount=1000 early data that must not run twice"
SERVER_IDLE = 1.0      # the replayed connection never completes: let it time out soon


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


class RecordingServer:
    """A listen_early server whose application reads every stream of every connection."""

    def __init__(self, transport):
        self.tls = server_tls()
        self.listener = transport.listen_early(self.tls, Config(allow_0rtt=True, max_idle_timeout=SERVER_IDLE))
        self.connections = []
        self.delivered = []        # (connection index, bytes) per stream read to its end
        self._tasks = set()
        self._spawn(self._accept())

    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self):
        while True:
            conn = await self.listener.accept()
            self.connections.append(conn)
            self._spawn(self._read(len(self.connections) - 1, conn))

    async def _read(self, index, conn):
        try:
            while True:
                stream = await conn.accept_stream()
                self.delivered.append((index, await stream.read_all()))
        except quicfast.QuicError:
            pass

    def close(self):
        for task in list(self._tasks):
            task.cancel()


def first_flight(captured):
    """The client's first flight: the leading datagrams holding only Initial and 0-RTT packets."""
    flight = []
    for data in captured:
        types = set(long_header_types(data))
        if not types or not types <= {"initial", "0rtt"}:
            break
        flight.append(data)
    return flight


async def resumed_early_connection(transport, server):
    """A first connection for the ticket, then a 0-RTT one through a recording
    relay; returns (proxy, the 0-RTT connection, captured client datagrams)."""
    tls = client_tls()
    first = await quicfast.dial_addr(transport.local_addr, tls, Config(allow_0rtt=True), server_name="localhost")
    assert await eventually(lambda: tls.session_ticket_store._tickets), "no session ticket arrived"
    first.close()
    await first.wait_closed()

    captured = []
    proxy = await ImpairmentProxy(transport.local_addr, Impairment(drop=lambda d: captured.append(d) or False)).start()
    conn = await quicfast.dial_addr_early(proxy.addr, tls, Config(allow_0rtt=True), server_name="localhost")
    stream = conn.open_stream()
    stream.write(EARLY)
    stream.close()
    await conn.handshake_complete()
    assert conn.connection_state().used_0rtt, "the server did not accept the honest 0-RTT"
    assert await eventually(lambda: server.delivered), "the early data never reached the application"
    return proxy, conn, captured


async def replay(flight, source, target):
    """Send the recorded datagrams from `source` (a bound socket) and
    collect what the server answers there for a moment."""
    loop = asyncio.get_running_loop()
    source.setblocking(False)
    for data in flight:
        source.sendto(data, target)
    answers = []
    deadline = loop.time() + 1.0
    while loop.time() < deadline:
        try:
            answers.append(await asyncio.wait_for(loop.sock_recv(source, 65536), deadline - loop.time()))
        except asyncio.TimeoutError:
            break
    return answers


def udp_socket(addr=("127.0.0.1", 0)):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(addr)
    return sock


@pytest.mark.parametrize("when", ["after_close", "while_open"])
@pytest.mark.parametrize("source", ["same_address", "other_address"])
def test_replayed_zero_rtt_flight_is_not_delivered_twice(when, source):
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        server = RecordingServer(transport)
        proxy = None
        try:
            proxy, conn, captured = await resumed_early_connection(transport, server)
            flight = first_flight(captured)
            assert any("0rtt" in long_header_types(d) for d in flight), "no 0-RTT packet in the first flight"
            assert any("initial" in long_header_types(d) for d in flight)
            assert server.delivered == [(1, EARLY)]
            victim = server.connections[1]
            seen_as = proxy.upstream_addrs()[0]          # the client's address as the server saw it
            assert victim.remote_addr[:2] == tuple(seen_as)

            if when == "after_close":
                conn.close()
                await conn.wait_closed()
                await asyncio.wait_for(victim.wait_closed(), 10)
                # Replayed once the server has forgotten the connection: until its
                # draining period ends, its connection IDs still route to nothing.
                assert await eventually(lambda: not transport._closed_routes), "the draining period never ended"
            proxy.close()                                # frees the address the server saw
            sock = udp_socket(seen_as if source == "same_address" else ("127.0.0.1", 0))
            try:
                answers = await replay(flight, sock, transport.local_addr)
            finally:
                sock.close()

            if when == "after_close":
                # The replayed ClientHello was taken for a new connection, and answered...
                assert await eventually(lambda: len(server.connections) == 3), "the replay started no connection"
                assert answers, "the server did not answer the replayed Initial"
                replayed = server.connections[2]
                # ...but its 0-RTT was refused and it never completes: it ends by itself.
                await asyncio.wait_for(replayed.wait_closed(), 10 * SERVER_IDLE + 5)
                assert server.delivered == [(1, EARLY)], "replayed early data reached the application"
                assert not replayed.connection_state().used_0rtt
                assert not replayed._handshake_done.done() or replayed._handshake_done.exception() is not None
                assert len(server.tls.anti_replay) >= 1
            else:
                # Routed by its connection ID to the live connection: duplicates, dropped.
                await asyncio.sleep(0.5)
                # (The honest client's path went away with the relay: no more is checked of it.)
                assert len(server.connections) == 2
                conn.close()
            assert server.delivered == [(1, EARLY)], server.delivered
        finally:
            if proxy is not None:
                proxy.close()
            server.close()
            transport.close()

    run(main())


def test_replayed_http3_0rtt_request_runs_once():
    """The same attack one layer up: a GET sent in 0-RTT by quicfast's HTTP/3
    client to `h3.Server` (allow_0rtt), replayed after its connection
    closed, reaches the ASGI application once."""
    from quicfast import h3
    from quicfast.tls import TLSConfig
    from tests.helpers.certs import pki_paths

    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def main():
        pki = pki_paths()
        server = h3.Server(app, port=0, certfile=pki.cert_file, keyfile=pki.key_file,
                           config=Config(allow_0rtt=True, max_idle_timeout=SERVER_IDLE))
        await server.start()
        captured = []
        proxy = await ImpairmentProxy(server.addr, Impairment(drop=lambda d: captured.append(d) or False)).start()
        tls = TLSConfig()
        tls.load_verify_locations(cafile=pki.ca_file)
        base = f"https://localhost:{proxy.addr[1]}"
        try:
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                assert (await client.get(base + "/hello")).status == 200
                assert await eventually(lambda: len(tls.session_ticket_store)), "no session ticket arrived"
            captured.clear()
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                r = await client.get(base + "/transfer")
                assert r.status == 200 and await r.read() == b"done"
                assert next(iter(client._connections.values())).quic.connection_state().used_0rtt
            flight = first_flight(captured)
            assert any("0rtt" in long_header_types(d) for d in flight)
            assert await eventually(lambda: not server._connections), "the honest connections did not close"
            assert await eventually(lambda: not server._transport._closed_routes), "the draining period never ended"
            sock = udp_socket()
            try:
                answers = await replay(flight, sock, server.addr)
            finally:
                sock.close()
            assert answers, "the server did not answer the replayed Initial"
            await asyncio.sleep(SERVER_IDLE)        # bounded: let a wrongly accepted replay run
            assert await eventually(lambda: not server._connections, 10 * SERVER_IDLE + 5)
            assert calls == ["/hello", "/transfer"], calls
        finally:
            proxy.close()
            await server.shutdown()

    run(main())
