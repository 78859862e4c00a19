"""ECN over loopback (RFC 9000 §13.4): packets are marked ECT(0), the peer
reports the counts in ACK_ECN frames and validation keeps ECN on; against a
peer that never reports counts (aioquic) marking stops."""

import asyncio

import pytest

import quicfast
from tests.helpers.engines import client_tls, server_tls


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ecn_validated_between_quicfast_endpoints(host):
    async def main():
        transport = await quicfast.Transport.bind(host, 0)
        listener = transport.listen(server_tls())
        conn = await quicfast.dial_addr((host, transport.local_addr[1]), client_tls())
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"e" * 2_000_000)
        stream.close()
        peer = await server_conn.accept_stream()
        assert len(await peer.read_all()) == 2_000_000
        peer.write(b"done")
        peer.close()
        await stream.read_all()
        assert conn._engine.ecn_enabled and server_conn._engine.ecn_enabled
        assert conn._engine.ecn_mark == 2
        conn.close()
        transport.close()

    run(main())


def test_ecn_turned_off_when_peer_reports_no_counts():
    aioquic = pytest.importorskip("aioquic", reason="aioquic (a test dependency) is not installed")
    from aioquic.asyncio import serve
    from aioquic.quic.configuration import QuicConfiguration
    from tests.helpers.certs import pki_paths
    from tests.helpers.engines import ALPN

    async def main():
        async def handle(reader, writer):
            writer.write(await reader.read())
            writer.write_eof()

        config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
        server = await serve("127.0.0.1", 0, configuration=config,
                             stream_handler=lambda r, w: asyncio.ensure_future(handle(r, w)))
        port = server._transport.get_extra_info("sockname")[1]
        conn = await quicfast.dial_addr(("127.0.0.1", port), client_tls())
        stream = conn.open_stream()
        stream.write(b"x" * 100_000)
        stream.close()
        assert len(await stream.read_all()) == 100_000
        assert not conn._engine.ecn_enabled and conn._engine.ecn_mark == 0
        conn.close()
        server.close()

    run(main())
