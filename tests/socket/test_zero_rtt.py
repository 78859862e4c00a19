"""Session resumption and 0-RTT through the asyncio API (RFC 9001 §4.6)."""

import asyncio

import pytest

import quicfast
from tests.helpers.engines import client_tls, server_tls

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def _first_connection(transport, listener, tls):
    conn = await quicfast.dial_addr(transport.local_addr, tls, quicfast.Config(allow_0rtt=True), server_name="localhost")
    await listener.accept()
    for _ in range(200):          # the NewSessionTicket follows the handshake
        if tls.session_ticket_store._tickets:
            break
        await asyncio.sleep(0.01)
    assert tls.session_ticket_store._tickets, "no session ticket arrived"
    conn.close()
    await conn.wait_closed()


@pytest.mark.parametrize("early_listener", [True, False], ids=["listen_early", "listen"])
def test_zero_rtt_accepted(early_listener):
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listen = transport.listen_early if early_listener else transport.listen
        listener = listen(server_tls(), quicfast.Config(allow_0rtt=True))
        tls = client_tls()
        await _first_connection(transport, listener, tls)
        conn = await quicfast.dial_addr_early(transport.local_addr, tls, quicfast.Config(allow_0rtt=True),
                                              server_name="localhost")
        stream = conn.open_stream()
        stream.write(b"early bytes")
        stream.close()
        server_conn = await listener.accept()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"early bytes"
        await conn.handshake_complete()
        # An acknowledged 0-RTT packet must not confirm the client's handshake
        # before its Finished went out: the server completes too.
        await server_conn.handshake_complete()
        state = conn.connection_state()
        assert state.used_0rtt and state.tls["session_resumed"] and not conn.zero_rtt_rejected
        conn.close()
        transport.close()

    run(main())


def test_zero_rtt_rejected_data_still_arrives():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        accepting = transport.listen_early(server_tls(), quicfast.Config(allow_0rtt=True))
        tls = client_tls()
        await _first_connection(transport, accepting, tls)
        accepting.close()
        # Same server key material would be needed to resume; a listener that
        # does not allow 0-RTT must reject the early data, which is then resent.
        transport._listener = None
        listener = transport.listen_early(server_tls(), quicfast.Config(allow_0rtt=False))
        conn = await quicfast.dial_addr_early(transport.local_addr, tls, quicfast.Config(allow_0rtt=True),
                                              server_name="localhost")
        stream = conn.open_stream()
        stream.write(b"resent as 1-RTT")
        stream.close()
        server_conn = await listener.accept()
        peer = await server_conn.accept_stream()
        assert await peer.read_all() == b"resent as 1-RTT"
        await conn.handshake_complete()
        assert not conn.connection_state().used_0rtt
        assert conn.zero_rtt_rejected, "the client never offered 0-RTT"
        conn.close()
        transport.close()

    run(main())
