"""The asyncio API over loopback, quicfast on both ends. Every test is
bounded by asyncio.wait_for and uses 127.0.0.1 or ::1 only."""

import asyncio
import hashlib
import os

import pytest

import quicfast
from tests.helpers.engines import ALPN, client_tls, server_tls
from tests.helpers.waiting import eventually

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def _server(host="127.0.0.1", config=None):
    transport = await quicfast.Transport.bind(host, 0)
    return transport, transport.listen(server_tls(), config)


def test_echo_and_sha256_of_8_mib():
    async def main():
        transport, listener = await _server()
        payload = os.urandom(8 << 20)

        async def serve():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            digest = hashlib.sha256(await stream.read_all()).digest()
            stream.write(digest)
            stream.close()
            await stream.drain()
            await conn.wait_closed()

        server_task = asyncio.create_task(serve())
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        assert conn.connection_state().alpn_protocol == ALPN
        stream = conn.open_stream()
        for i in range(0, len(payload), 1 << 20):
            stream.write(payload[i:i + (1 << 20)])
            await stream.drain()
        stream.close()
        assert await stream.read_all() == hashlib.sha256(payload).digest()
        conn.close_with_error(7, "done")
        await conn.wait_closed()
        await server_task
        listener.close()
        transport.close()

    run(main())


def test_application_close_code_seen_by_server():
    async def main():
        transport, listener = await _server()
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()
        conn.close_with_error(0x42, "bye")
        error = await server_conn.wait_closed()
        assert isinstance(error, quicfast.ApplicationError)
        assert error.error_code == 0x42 and error.reason == "bye" and error.remote
        transport.close()

    run(main())


def test_many_streams_and_uni_streams():
    async def main():
        transport, listener = await _server()

        async def serve():
            conn = await listener.accept()

            async def echo(stream):
                stream.write(await stream.read_all())
                stream.close()

            async def uni_to_bidi():
                uni = await conn.accept_uni_stream()
                data = await uni.read_all()
                out = conn.open_uni_stream()
                out.write(data[::-1])
                out.close()

            asyncio.create_task(uni_to_bidi())
            tasks = []
            for _ in range(300):
                tasks.append(asyncio.create_task(echo(await conn.accept_stream())))
            await asyncio.gather(*tasks)

        server_task = asyncio.create_task(serve())
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())

        async def one(i):
            stream = await conn.open_stream_sync()
            stream.write(b"request %d" % i)
            stream.close()
            assert await stream.read_all() == b"request %d" % i

        # 300 streams against a limit of 100 concurrent: open_stream_sync waits for credit.
        await asyncio.gather(*(one(i) for i in range(300)))
        uni = conn.open_uni_stream()
        uni.write(b"abc")
        uni.close()
        reply = await conn.accept_uni_stream()
        assert await reply.read_all() == b"cba"
        await server_task
        conn.close()
        transport.close()

    run(main())


def test_read_of_zero_bytes_returns_at_once():
    """read(0) returns b"" without waiting for the peer, as asyncio's StreamReader does."""
    async def main():
        transport, listener = await _server()
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        stream = conn.open_stream()
        stream.write(b"ping")                   # the server never answers
        assert await asyncio.wait_for(stream.read(0), 2.0) == b""
        conn.close()
        listener.close()
        transport.close()

    run(main())


def test_finished_streams_are_forgotten_and_waiters_behave():
    """Streams whose reading and writing are both over are dropped by the
    connection on both sides (memory stays bounded on a long-lived connection);
    a cancelled accept_stream() loses no stream; a second concurrent read() is refused."""
    async def main():
        transport, listener = await _server(config=quicfast.Config(max_incoming_streams=10))
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()

        # A cancelled accept leaves nothing behind: the next accept gets the stream.
        waiting = asyncio.create_task(server_conn.accept_stream())
        await asyncio.sleep(0)
        waiting.cancel()
        first = conn.open_stream()
        first.write(b"first")
        first.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"first"

        # Only one task may wait in read() at a time (as asyncio.StreamReader).
        reader = asyncio.create_task(peer.read())
        await asyncio.sleep(0)
        assert peer.stream_id in server_conn._streams
        peer.write(b"done")
        peer.close()
        assert await reader == b""
        assert await first.read_all() == b"done"
        other = conn.open_stream()
        other.write(b"x")
        peer2 = await server_conn.accept_stream()
        pending = asyncio.create_task(peer2.read(100))
        await asyncio.sleep(0)
        assert await pending == b"x"
        slow = asyncio.create_task(peer2.read())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            await peer2.read()
        other.close()
        assert await slow == b""
        peer2.close()
        assert await other.read_all() == b""

        async def serve():
            async def answer(stream):
                request = await stream.readexactly(9)
                stream.write(request.upper())
                stream.close()

            tasks = [asyncio.create_task(answer(await server_conn.accept_stream())) for _ in range(200)]
            await asyncio.gather(*tasks)

        server_task = asyncio.create_task(serve())

        async def one(i):
            stream = await conn.open_stream_sync()
            stream.write(b"req %05d" % i)
            stream.close()
            assert await stream.read_all() == b"REQ %05d" % i

        await asyncio.gather(*(one(i) for i in range(200)))
        await server_task
        assert not conn._streams and not server_conn._streams
        conn.close()
        transport.close()

    run(main())


def test_stream_reset_reaches_reader():
    async def main():
        transport, listener = await _server()
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"partial")
        await asyncio.sleep(0.05)
        stream.cancel_write(0x99)
        peer = await server_conn.accept_stream()
        with pytest.raises(quicfast.StreamError) as info:
            while await peer.read():
                pass
        assert info.value.error_code == 0x99 and info.value.remote
        conn.close()
        transport.close()

    run(main())


def test_cancel_write_after_close():
    """quic-go's CancelWrite after Close: while data or the FIN is unacknowledged
    it resets the stream (the reader sees the code); once the peer has
    acknowledged everything it does nothing (and raises nothing)."""
    async def main():
        transport, listener = await _server()
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"x" * 100_000)
        stream.close()
        stream.cancel_write(0x55)       # in the same loop pass: nothing was sent yet
        with pytest.raises(quicfast.StreamError):
            stream.write(b"more")
        peer = await server_conn.accept_stream()
        with pytest.raises(quicfast.StreamError) as info:
            await peer.read_all()
        assert info.value.error_code == 0x55 and info.value.remote and info.value.kind == "reset"

        done = conn.open_stream()
        done.write(b"whole")
        done.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"whole"
        assert await eventually(lambda: conn.send_buffered == 0)     # all acknowledged
        done.cancel_write(0x66)         # nothing left to abandon
        with pytest.raises(quicfast.StreamError):
            done.write(b"more")
        conn.close()
        transport.close()

    run(main())


def test_open_stream_past_limit_raises():
    async def main():
        transport, listener = await _server(config=quicfast.Config(max_incoming_streams=2))
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        conn.open_stream()
        conn.open_stream()
        with pytest.raises(quicfast.StreamLimitReachedError):
            conn.open_stream()
        conn.close()
        transport.close()

    run(main())


def test_datagrams_both_ways():
    async def main():
        config = quicfast.Config(enable_datagrams=True)
        transport, listener = await _server(config=config)
        conn = await quicfast.dial_addr(transport.local_addr, client_tls(), config)
        server_conn = await listener.accept()
        assert conn.connection_state().supports_datagrams
        conn.send_datagram(b"ping")
        assert await server_conn.receive_datagram() == b"ping"
        server_conn.send_datagram(b"pong")
        assert await conn.receive_datagram() == b"pong"
        with pytest.raises(quicfast.DatagramTooLargeError):
            conn.send_datagram(b"x" * 5000)
        conn.close()
        transport.close()

    run(main())


def test_ipv6_loopback():
    async def main():
        transport, listener = await _server("::1")
        conn = await quicfast.dial_addr(("::1", transport.local_addr[1]), client_tls())
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"v6")
        stream.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"v6"
        conn.close()
        transport.close()

    run(main())


def test_listener_close_raises_server_closed():
    async def main():
        transport, listener = await _server()
        listener.close()
        with pytest.raises(quicfast.ServerClosedError):
            await listener.accept()
        transport.close()

    run(main())


def test_handshake_failure_surfaces_as_transport_error():
    async def main():
        transport, listener = await _server()
        tls = quicfast.TLSConfig()      # no trust anchor for the test CA
        tls.set_alpn_protocols([ALPN])
        with pytest.raises(quicfast.TransportError) as info:
            await quicfast.dial_addr(transport.local_addr, tls)
        assert 0x100 <= info.value.error_code <= 0x1FF   # CRYPTO_ERROR carrying a TLS alert
        transport.close()

    run(main())


def test_closed_connections_are_freed_without_the_garbage_collector():
    """A finished connection (engine, TLS state, keys, buffers) is freed by
    reference counting: no reference cycle is left for the cyclic collector."""
    import gc

    async def main():
        transport, listener = await _server()
        accepted = []

        async def accept():
            while True:
                accepted.append(await listener.accept())

        acceptor = asyncio.create_task(accept())
        for _ in range(5):
            conn = await quicfast.dial_addr(transport.local_addr, client_tls())
            stream = conn.open_stream()
            stream.cancel_write(5)
            for _ in range(2):      # a stream's error, raised again, must not either
                with pytest.raises(quicfast.StreamError):
                    stream.write(b"x")
            del stream
            conn.close()
            await conn.wait_closed()
            while not accepted:
                await asyncio.sleep(0.001)
            server_conn = accepted.pop()
            await server_conn.wait_closed()
            # The close cause raised from later calls must not tie a traceback to the connection.
            for call in (server_conn.accept_stream, conn.accept_uni_stream):
                with pytest.raises(quicfast.ConnectionClosedError):
                    await call()
            with pytest.raises(quicfast.ConnectionClosedError):
                conn.open_stream()
        del conn, server_conn
        acceptor.cancel()
        transport.close()
        await asyncio.sleep(0)

    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        run(main())
        gc.collect()
        # (The server's Transport and Listener refer to each other: one pair per server, not per connection.)
        per_connection = ("quicfast.connection", "quicfast.stream", "quicfast.proto.connection",
                          "quicfast.tls.context")
        left = [type(o).__qualname__ for o in gc.garbage if type(o).__module__ in per_connection]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_export_keying_material_agrees_on_both_ends():
    async def main():
        transport, listener = await _server()
        client = await quicfast.dial_addr(transport.local_addr, client_tls())
        server = await listener.accept()
        await server.handshake_complete()
        a = client.export_keying_material(b"EXPORTER-quicfast-test", b"ctx", 48)
        b = server.export_keying_material(b"EXPORTER-quicfast-test", b"ctx", 48)
        assert a == b and len(a) == 48
        assert client.export_keying_material(b"EXPORTER-quicfast-test", b"other", 48) != a
        client.close_with_error(0)
        listener.close()
        transport.close()

    run(main())


def test_open_stream_sync_opens_past_the_limit_up_to_the_limit_again():
    """With the server allowing 4 streams, open_stream_sync hands out 8 at
    once (4 of them wait for MAX_STREAMS before their frames go out) and
    the 9th waits; every request is answered in the end and the server
    never sees more streams than it allowed (it would close the connection
    with STREAM_LIMIT_ERROR)."""
    async def main():
        transport, listener = await _server(config=quicfast.Config(max_incoming_streams=4))
        go = asyncio.Event()   # the server answers nothing (so grants no credit) before this

        async def serve():
            conn = await listener.accept()

            async def echo(stream):
                await go.wait()
                stream.write(await stream.read_all())
                stream.close()

            tasks = [asyncio.create_task(echo(await conn.accept_stream())) for _ in range(9)]
            await asyncio.gather(*tasks)
            return conn

        server_task = asyncio.create_task(serve())
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        streams = []
        for i in range(8):
            stream = await conn.open_stream_sync()
            stream.write(b"request %d" % i)
            stream.close()
            streams.append(stream)
        assert not conn.can_open_stream()
        ninth = asyncio.create_task(conn.open_stream_sync())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not ninth.done()      # 4 open + 4 waiting: the bound
        go.set()
        for i, stream in enumerate(streams):
            assert await stream.read_all() == b"request %d" % i
        stream = await ninth
        stream.write(b"last")
        stream.close()
        assert await stream.read_all() == b"last"
        server_conn = await server_task
        assert server_conn.close_error is None
        conn.close()
        transport.close()

    run(main())


def test_accept_stream_lets_the_loop_run_after_a_burst():
    """ACCEPT_BURST streams are handed out back to back; then accept_stream
    yields to the event loop once, so handlers spawned for them can start."""
    from quicfast.stream import ACCEPT_BURST
    from tests.helpers.waiting import eventually

    async def main():
        transport, listener = await _server()
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()
        for _ in range(2 * ACCEPT_BURST):
            stream = conn.open_stream()
            stream.write(b"x")
            stream.close()
        assert await eventually(lambda: len(server_conn._host.incoming_bidi) == 2 * ACCEPT_BURST)
        loop_ran = []
        asyncio.get_running_loop().call_soon(loop_ran.append, True)
        seen = []
        for _ in range(2 * ACCEPT_BURST):
            await server_conn.accept_stream()
            seen.append(len(loop_ran))
        assert seen == [0] * ACCEPT_BURST + [1] * ACCEPT_BURST
        conn.close()
        await conn.wait_closed()
        transport.close()

    run(main())
