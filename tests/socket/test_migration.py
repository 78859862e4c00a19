"""NAT rebinding (RFC 9000 §9.3): the client's port changes mid-connection and
the server follows it after validating the new path."""

import asyncio

import quicfast
from tests.helpers.engines import client_tls, server_tls
from tests.helpers.rebinder import Rebinder


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_nat_rebinding_mid_transfer():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())
        relay = Rebinder(transport.local_addr)
        payload = bytes(range(256)) * 16384       # 4 MiB
        conn = await quicfast.dial_addr(relay.addr, client_tls(), server_name="localhost")
        server_conn = await listener.accept()
        first_addr = server_conn.remote_addr
        stream = conn.open_stream()
        stream.write(payload[:1 << 20])
        await stream.drain()
        relay.rebind()
        stream.write(payload[1 << 20:])
        stream.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == payload
        peer.write(b"ok")
        peer.close()
        assert await stream.read_all() == b"ok"     # the server's reply reached the new address
        assert server_conn.remote_addr != first_addr
        assert server_conn.remote_addr[1] == relay.back.getsockname()[1]
        conn.close()
        relay.close()
        transport.close()

    run(main())


def test_active_client_migration_to_new_socket():
    async def main():
        server_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server_transport.listen(server_tls())
        first = await quicfast.Transport.bind("127.0.0.1", 0)
        second = await quicfast.Transport.bind("127.0.0.1", 0)
        conn = await first.dial(server_transport.local_addr, client_tls(), server_name="localhost")
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"before ")
        await asyncio.sleep(0.05)      # let NEW_CONNECTION_ID frames arrive
        conn.migrate(second)
        stream.write(b"after")
        stream.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"before after"
        peer.write(b"reply")
        peer.close()
        assert await stream.read_all() == b"reply"
        assert server_conn.remote_addr[1] == second.local_addr[1]
        conn.close()
        for t in (first, second, server_transport):
            t.close()

    run(main())
