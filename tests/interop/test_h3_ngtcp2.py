"""HTTP/3 interop with the ngtcp2 examples (Debian ngtcp2-client and
ngtcp2-server 0.12.1: `gtlsclient`, `gtlsserver`; GnuTLS + nghttp3) over
loopback: quicfast.h3.Client against gtlsserver and gtlsclient against
quicfast.h3.Server. Small and 50 MiB files with SHA-256 checked, many
parallel requests; QUIC v1 only (ngtcp2 0.12 speaks only the draft of v2).
gtlsclient exits 0 even when it fails, so the downloaded files are checked."""

import asyncio
import hashlib
import os
import time

import pytest

from quicfast import h3
from tests.h3.peers import GTLSCLIENT, GTLSSERVER, free_udp_port, run_gtlsclient, start_gtlsserver
from tests.helpers.certs import pki_paths

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


@pytest.mark.skipif(GTLSSERVER is None, reason="ngtcp2's gtlsserver is not installed (apt-get install ngtcp2-server)")
def test_quicfast_client_against_ngtcp2_server(www):
    root, big_sha = www
    pki = pki_paths()

    async def main():
        port = free_udp_port()
        proc = start_gtlsserver(str(root), pki.cert_file, pki.key_file, port)
        try:
            await asyncio.sleep(0.2)
            assert proc.poll() is None, proc.stderr.read()
            async with h3.Client(ca_file=pki.ca_file) as client:
                base = f"https://localhost:{port}"
                r = await client.get(base + "/small.txt")
                assert r.status == 200 and await r.read() == b"small file\n"
                assert "ngtcp2" in r.headers.get("server", "")
                r = await client.get(base + "/big.bin")
                digest = hashlib.sha256()
                async for chunk in r:
                    digest.update(chunk)
                assert digest.hexdigest() == big_sha
                responses = await asyncio.gather(*(client.get(f"{base}/small.txt") for _ in range(200)))
                assert [await r.read() for r in responses] == [b"small file\n"] * 200
                r = await client.get(base + "/missing")
                assert r.status == 404
                await r.read()
                assert len(client._connections) == 1
        finally:
            proc.terminate()
            proc.wait(5)

    run(main())


@pytest.mark.skipif(GTLSCLIENT is None, reason="ngtcp2's gtlsclient is not installed (apt-get install ngtcp2-client)")
def test_ngtcp2_client_against_quicfast_server(www, tmp_path):
    root, big_sha = www
    pki = pki_paths()

    async def main():
        server = await h3.serve(h3.StaticFiles(str(root)), port=0, certfile=pki.cert_file, keyfile=pki.key_file)
        port = server.addr[1]
        try:
            out1 = tmp_path / "one"
            out1.mkdir()
            result = await asyncio.to_thread(
                run_gtlsclient, port, [f"https://localhost:{port}/big.bin", f"https://localhost:{port}/small.txt"],
                str(out1), 60, ("-q",))
            assert (out1 / "small.txt").read_bytes() == b"small file\n", result.stderr[-2000:]
            assert hashlib.sha256((out1 / "big.bin").read_bytes()).hexdigest() == big_sha
            # many parallel requests on one connection: 100 streams (gtlsclient's -n wraps the URI list)
            out2 = tmp_path / "many"
            out2.mkdir()
            start = time.monotonic()
            result = await asyncio.to_thread(
                run_gtlsclient, port, [f"https://localhost:{port}/small.txt"], str(out2), 60,
                ("-n", "100", "--max-streams-bidi", "100"))
            assert (out2 / "small.txt").read_bytes() == b"small file\n"
            text = result.stderr.decode(errors="replace") + result.stdout.decode(errors="replace")
            assert text.count("[:status: 200]") == 100, text[-2000:]
            assert text.count("closed with error code 256") == 100   # H3_NO_ERROR on every stream
            assert time.monotonic() - start < 60
        finally:
            await server.shutdown()

    run(main())
