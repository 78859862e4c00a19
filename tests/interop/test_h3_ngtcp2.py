"""HTTP/3 interop with the ngtcp2 examples (Debian ngtcp2-client and
ngtcp2-server 0.12.1: `gtlsclient`, `gtlsserver`; GnuTLS + nghttp3) over
loopback: quicfast.h3.Client against gtlsserver and gtlsclient against
quicfast.h3.Server. Small and 50 MiB files with SHA-256 checked, many
parallel requests; QUIC v1 only (ngtcp2 0.12 speaks only the draft of v2).
Resumption with a GET in 0-RTT both ways (RFC 9001 §4.6, RFC 9114 §3.3):
gtlsclient's --session-file/--tp-file against the quicfast server, and
quicfast's client against gtlsserver, whose frame log shows the GET in 0-RTT.
gtlsclient exits 0 even when it fails, so the downloaded files are checked."""

import asyncio
import hashlib
import os
import time

import pytest

from quicfast import h3
from tests.h3.peers import (
    GTLSCLIENT, GTLSSERVER, NGTCP2_0RTT_REQUEST, free_udp_port, held_back_replies, quicfast_0rtt_server,
    quicfast_get_twice, run_gtlsclient, start_gtlsserver,
)
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


# -- resumption and 0-RTT (RFC 9001 §4.6, RFC 9114 §3.3) ------------------------------


@pytest.mark.skipif(GTLSCLIENT is None, reason="ngtcp2's gtlsclient is not installed (apt-get install ngtcp2-client)")
def test_ngtcp2_client_resumes_with_0rtt_against_quicfast_server(www, tmp_path):
    root, _ = www
    session = ["--session-file", str(tmp_path / "session.pem"), "--tp-file", str(tmp_path / "tp.txt")]

    async def main():
        texts = []
        async with quicfast_0rtt_server(str(root), pki_paths()) as (port, requests):
            for name in ("first", "second"):
                out = tmp_path / name
                out.mkdir()
                result = await asyncio.to_thread(run_gtlsclient, port, [f"https://localhost:{port}/small.txt"],
                                                 str(out), 60, session, True)
                texts.append(result.stderr + result.stdout)
                assert (out / "small.txt").read_bytes() == b"small file\n", texts[-1][-2000:]
        assert (tmp_path / "session.pem").stat().st_size and (tmp_path / "tp.txt").stat().st_size
        assert not NGTCP2_0RTT_REQUEST.search(texts[0])
        assert NGTCP2_0RTT_REQUEST.search(texts[1]), "gtlsclient did not send its GET in 0-RTT"
        assert b"Early data was rejected" not in texts[1]
        first, second = requests
        assert not first["resumed"] and not first["used_0rtt"]
        assert second["resumed"] and second["used_0rtt"] and not second["handshake_complete"]

    run(main())


@pytest.mark.skipif(GTLSSERVER is None, reason="ngtcp2's gtlsserver is not installed (apt-get install ngtcp2-server)")
def test_quicfast_client_resumes_with_0rtt_against_ngtcp2_server(www, tmp_path):
    root, _ = www
    pki = pki_paths()

    async def main():
        port = free_udp_port()
        log_path = tmp_path / "gtlsserver.log"
        with open(log_path, "wb") as log:
            proc = start_gtlsserver(str(root), pki.cert_file, pki.key_file, port, log=log)
        relay = await held_back_replies(("127.0.0.1", port)).start()
        try:
            await asyncio.sleep(0.2)
            assert proc.poll() is None, log_path.read_text()
            (s1, b1, first, _), (s2, b2, second, rejected) = await quicfast_get_twice(
                f"https://localhost:{relay.addr[1]}/small.txt", pki.ca_file)
        finally:
            relay.close()
            proc.terminate()
            proc.wait(5)
        assert (s1, b1) == (s2, b2) == (200, b"small file\n")
        assert not first.tls["session_resumed"] and not first.used_0rtt
        assert second.tls["session_resumed"] and second.used_0rtt and not rejected
        # gtlsserver's own log: the GET (stream 0, FIN) came in a 0-RTT packet.
        assert NGTCP2_0RTT_REQUEST.search(log_path.read_bytes()), "gtlsserver saw no 0-RTT request"

    run(main())
