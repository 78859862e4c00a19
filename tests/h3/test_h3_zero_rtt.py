"""HTTP/3 session resumption and 0-RTT between quicfast's own client and
server (RFC 9114 §3.3 on 0-RTT, RFC 9001 §4.6): GETs sent in 0-RTT and taken
by the server before its handshake completed; a POST never sent early (the
client only sends safe methods in 0-RTT); and 0-RTT refused by a server
that cannot read the ticket, where the HTTP/3 streams sent early are sent
again in 1-RTT and the requests still succeed."""

import asyncio

from quicfast import h3
from quicfast.tls import TLSConfig
from tests.h3.conftest import run
from tests.h3.peers import quicfast_0rtt_server, quicfast_get_twice, wait_for_ticket


def _www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "small.txt").write_bytes(b"small file\n")
    return root


def test_gets_in_0rtt_are_served_before_the_handshake_completes(tmp_path, pki):
    root = _www(tmp_path)

    async def main():
        async with quicfast_0rtt_server(str(root), pki) as (port, requests):
            base = f"https://localhost:{port}"
            (_, _, first, _), (status, body, second, rejected) = await quicfast_get_twice(
                base + "/small.txt", pki.ca_file)
            assert (status, body) == (200, b"small file\n")
            assert second.tls["session_resumed"] and second.used_0rtt and not rejected
            assert not first.tls["session_resumed"]
            # A fresh client: a full handshake for a ticket, then several GETs in 0-RTT at once.
            tls = TLSConfig()
            tls.load_verify_locations(cafile=pki.ca_file)
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                await client.get(base + "/small.txt")
                assert await wait_for_ticket(tls)
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                responses = await asyncio.gather(*(client.get(base + "/small.txt") for _ in range(5)))
                assert [(r.status, await r.read()) for r in responses] == [(200, b"small file\n")] * 5
                assert len(client._connections) == 1
        assert [r["handshake_complete"] for r in requests] == [True, False, True] + [False] * 5
        assert all(r["used_0rtt"] and r["resumed"] for r in requests[3:])

    run(main())


def test_post_is_not_sent_in_0rtt(tmp_path, pki):
    root = _www(tmp_path)

    async def main():
        async with quicfast_0rtt_server(str(root), pki) as (port, requests):
            tls = TLSConfig()
            tls.load_verify_locations(cafile=pki.ca_file)
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                await client.get(f"https://localhost:{port}/small.txt")
                assert await wait_for_ticket(tls)
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                r = await client.request("POST", f"https://localhost:{port}/small.txt", content=b"not idempotent")
                await r.read()
        assert [r["handshake_complete"] for r in requests] == [True, True]

    run(main())


def test_refused_0rtt_requests_are_sent_again(tmp_path, pki):
    root = _www(tmp_path)

    async def main():
        tls = TLSConfig()
        tls.load_verify_locations(cafile=pki.ca_file)
        async with quicfast_0rtt_server(str(root), pki) as (port, _):
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                await client.get(f"https://localhost:{port}/small.txt")
                assert await wait_for_ticket(tls)
        # Another server (other ticket keys): the ticket is useless, the early data refused.
        async with quicfast_0rtt_server(str(root), pki) as (port, requests):
            async with h3.Client(tls=tls, allow_0rtt=True) as client:
                responses = await asyncio.gather(*(client.get(f"https://localhost:{port}/small.txt")
                                                   for _ in range(3)))
                assert [(r.status, await r.read()) for r in responses] == [(200, b"small file\n")] * 3
                quic = next(iter(client._connections.values())).quic
                state = quic.connection_state()
                assert quic.zero_rtt_rejected and not state.used_0rtt and not state.tls["session_resumed"]
        assert [r["handshake_complete"] for r in requests] == [True] * 3

    run(main())
