"""HTTP/3 interop with aioquic (PyPI) over loopback, both directions:
quicfast.h3.Client against aioquic's HTTP/3 server, and aioquic's HTTP/3
client against quicfast.h3.Server. Small and 50 MiB files with SHA-256
checked, many parallel requests, QUIC v1 and v2; session resumption and a
GET in 0-RTT both ways (RFC 9001 §4.6, RFC 9114 §3.3), also with
`quicfast get --session-file --0rtt`."""

import asyncio
import hashlib
import os

import pytest

from quicfast import h3
from quicfast.config import VERSION_1, VERSION_2, Config
from tests.h3.peers import (
    aioquic_0rtt_server, aioquic_h3_file_server, aioquic_h3_get, quicfast_0rtt_server, quicfast_cli,
    quicfast_get_twice,
)
from tests.helpers.certs import pki_paths

pytest.importorskip("aioquic", reason="aioquic (a test dependency) is not installed")

BIG = 50 << 20


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "small.txt").write_bytes(b"small file\n")
    big = os.urandom(BIG)
    (root / "big.bin").write_bytes(big)
    return root, hashlib.sha256(big).hexdigest()


@pytest.mark.parametrize("version", [VERSION_1, VERSION_2], ids=["v1", "v2"])
def test_quicfast_client_against_aioquic_server(www, version):
    root, big_sha = www
    pki = pki_paths()

    async def main():
        server, port = await aioquic_h3_file_server(str(root), pki.cert_file, pki.key_file)
        try:
            async with h3.Client(ca_file=pki.ca_file, config=Config(versions=(version,))) as client:
                base = f"https://localhost:{port}"
                r = await client.get(base + "/small.txt")
                assert r.status == 200 and await r.read() == b"small file\n"
                conn = next(iter(client._connections.values()))
                assert conn.quic.connection_state().version == version
                r = await client.get(base + "/big.bin")
                digest = hashlib.sha256()
                async for chunk in r:
                    digest.update(chunk)
                assert digest.hexdigest() == big_sha
                responses = await asyncio.gather(*(client.get(f"{base}/small.txt") for _ in range(100)))
                assert [await r.read() for r in responses] == [b"small file\n"] * 100
                assert len(client._connections) == 1
        finally:
            server.close()

    run(main())


@pytest.mark.parametrize("version", [VERSION_1, VERSION_2], ids=["v1", "v2"])
def test_aioquic_client_against_quicfast_server(www, version):
    root, big_sha = www
    pki = pki_paths()

    async def main():
        server = await h3.serve(h3.StaticFiles(str(root)), port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        try:
            port = server.addr[1]
            results = await aioquic_h3_get("127.0.0.1", port, ["/small.txt", "/big.bin"], pki.ca_file, version=version)
            (s1, _, b1), (s2, h2, b2) = results
            assert s1 == 200 and b1 == b"small file\n"
            assert s2 == 200 and h2[b"content-length"] == str(BIG).encode()
            assert hashlib.sha256(b2).hexdigest() == big_sha
            results = await aioquic_h3_get("127.0.0.1", port, ["/small.txt"] * 100 + ["/missing"], pki.ca_file,
                                           version=version)
            assert [(s, b) for s, _, b in results[:-1]] == [(200, b"small file\n")] * 100
            assert results[-1][0] == 404
        finally:
            await server.shutdown()

    run(main())


# -- resumption and 0-RTT (RFC 9001 §4.6, RFC 9114 §3.3) ---------------------------


def test_quicfast_client_resumes_with_0rtt_against_aioquic_server(www):
    root, _ = www

    async def main():
        async with aioquic_0rtt_server(str(root), pki_paths()) as (port, requests):
            (s1, b1, first, _), (s2, b2, second, rejected) = await quicfast_get_twice(
                f"https://localhost:{port}/small.txt", pki_paths().ca_file)
        assert (s1, b1) == (s2, b2) == (200, b"small file\n")
        assert not first.tls["session_resumed"] and not first.used_0rtt
        assert second.tls["session_resumed"] and second.used_0rtt and not rejected
        assert not requests[0]["resumed"] and requests[0]["handshake_complete"]
        # aioquic resumed, accepted the early data and read the GET before the handshake completed.
        assert requests[1] == {"path": "/small.txt", "resumed": True, "early_data_accepted": True,
                               "handshake_complete": False}

    run(main())


def test_aioquic_client_resumes_with_0rtt_against_quicfast_server(www):
    root, _ = www
    pki = pki_paths()

    async def main():
        async with quicfast_0rtt_server(str(root), pki) as (port, requests):
            session = {}
            [(status, _, body)] = await aioquic_h3_get("127.0.0.1", port, ["/small.txt"], pki.ca_file, session=session)
            assert (status, body) == (200, b"small file\n")
            assert session["ticket"] is not None and not session["resumed"]
            results = await aioquic_h3_get("127.0.0.1", port, ["/small.txt", "/missing"], pki.ca_file, session=session)
        assert [(s, b) for s, _, b in results] == [(200, b"small file\n"), (404, results[1][2])]
        assert session["resumed"] and session["early_data_accepted"]
        assert [r["resumed"] for r in requests] == [False, True, True]
        # Both requests of the second connection were taken in 0-RTT.
        assert [(r["used_0rtt"], r["handshake_complete"]) for r in requests[1:]] == [(True, False)] * 2

    run(main())


def test_cli_get_session_file_0rtt_against_aioquic_server(www, tmp_path):
    root, _ = www
    pki = pki_paths()

    async def main():
        session = str(tmp_path / "session.json")
        async with aioquic_0rtt_server(str(root), pki) as (port, requests):
            for _ in range(2):
                result = await asyncio.to_thread(quicfast_cli, "get", f"https://localhost:{port}/small.txt", "--ca",
                                                 pki.ca_file, "--session-file", session, "--0rtt", "-v")
                assert result.returncode == 0, result.stderr.decode()
                assert result.stdout == b"small file\n"
        assert b"0-RTT used: True, resumed: True" in result.stderr, result.stderr.decode()
        assert [r["handshake_complete"] for r in requests] == [True, False]

    run(main())
