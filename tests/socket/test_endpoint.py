"""Endpoint behaviour over loopback: Retry, NEW_TOKEN reuse, Version
Negotiation, stateless reset."""

import asyncio
import socket

import pytest

import quicfast
from quicfast.proto.packet import parse_version_negotiation
from tests.helpers.engines import client_tls, server_tls

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def test_retry_then_echo():
    async def main():
        retried = []
        config = quicfast.Config(require_address_validation=lambda addr: retried.append(addr) or True)
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls(), config)
        conn = await quicfast.dial_addr(transport.local_addr, client_tls())
        server_conn = await listener.accept()
        assert retried, "the server did not ask for address validation"
        stream = conn.open_stream()
        stream.write(b"after retry")
        stream.close()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"after retry"
        conn.close()
        transport.close()

    run(main())


def test_new_token_skips_retry_on_next_connection():
    async def main():
        asked = []
        config = quicfast.Config(require_address_validation=lambda addr: asked.append(addr) or True)
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls(), config)
        store = quicfast.LRUTokenStore()
        client_config = quicfast.Config(token_store=store)
        client_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        conn = await client_transport.dial(transport.local_addr, client_tls(), client_config, server_name="localhost")
        await listener.accept()
        for _ in range(100):     # NEW_TOKEN follows the handshake
            if store._tokens:
                break
            await asyncio.sleep(0.01)
        assert store._tokens, "no NEW_TOKEN arrived"
        conn.close()
        asked.clear()
        conn2 = await client_transport.dial(transport.local_addr, client_tls(), client_config, server_name="localhost")
        await listener.accept()
        assert asked == [], "a valid NEW_TOKEN should have validated the address"
        conn2.close()
        client_transport.close()
        transport.close()

    run(main())


def test_version_negotiation_for_unknown_version():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        transport.listen(server_tls())
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        probe = bytes([0xC0]) + (0x1A2A3A4A).to_bytes(4, "big") + b"\x08" + b"D" * 8 + b"\x08" + b"S" * 8
        probe += bytes(1200 - len(probe))
        await loop.sock_sendto(sock, probe, transport.local_addr)
        reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), 5)
        versions = parse_version_negotiation(reply)
        assert 0x00000001 in versions and 0x6B3343CF in versions
        sock.close()
        transport.close()

    run(main())


def test_stateless_reset_ends_client_connection():
    async def main():
        key = b"k" * 32
        server_transport = await quicfast.Transport.bind("127.0.0.1", 0, stateless_reset_key=key)
        listener = server_transport.listen(server_tls())
        port = server_transport.local_addr[1]
        conn = await quicfast.dial_addr(server_transport.local_addr, client_tls())
        await listener.accept()
        # The server restarts and forgets the connection; the same key lets it
        # send a reset the client recognises.
        server_transport._routes.clear()
        server_transport._connections.clear()
        stream = conn.open_stream()
        stream.write(b"are you there?")
        error = await asyncio.wait_for(conn.wait_closed(), 10)
        assert isinstance(error, quicfast.StatelessResetError)
        server_transport.close()

    run(main())
