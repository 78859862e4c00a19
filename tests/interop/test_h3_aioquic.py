"""HTTP/3 interop with aioquic (PyPI) over loopback, both directions:
quicfast.h3.Client against aioquic's HTTP/3 server, and aioquic's HTTP/3
client against quicfast.h3.Server. Small and 50 MiB files with SHA-256
checked, many parallel requests, QUIC v1 and v2."""

import asyncio
import hashlib
import os

import pytest

from quicfast import h3
from quicfast.config import VERSION_1, VERSION_2, Config
from tests.h3.peers import aioquic_h3_file_server, aioquic_h3_get
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
