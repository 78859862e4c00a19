"""A client Transport with connection_id_length=0 (RFC 9000 §5.1: zero-length
connection IDs, as quic-go allows for clients): the server addresses it with
an empty CID and the transport routes by its socket alone. Loopback only,
bounded by asyncio.wait_for."""

import asyncio
import hashlib
import os

import quicfast
from tests.helpers.engines import client_tls, server_tls

TIMEOUT = 30


def test_zero_length_cid_client_round_trip():
    async def main():
        server_transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = server_transport.listen(server_tls())
        payload = os.urandom(2 << 20)

        async def serve():
            conn = await listener.accept()
            stream = await conn.accept_stream()
            data = await stream.read_all()
            stream.write(hashlib.sha256(data).digest() + data[:1000])
            stream.close()
            await stream.drain()
            await conn.wait_closed()

        server_task = asyncio.create_task(serve())
        client_transport = await quicfast.Transport.bind("127.0.0.1", 0, connection_id_length=0)
        conn = await client_transport.dial(server_transport.local_addr, client_tls())
        assert conn._engine.host_connection_ids == [b""]
        stream = conn.open_stream()
        stream.write(payload)
        stream.close()
        reply = await stream.read_all()
        assert reply == hashlib.sha256(payload).digest() + payload[:1000]
        conn.close_with_error(0, "done")
        await conn.wait_closed()
        await server_task
        client_transport.close()
        listener.close()
        server_transport.close()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
