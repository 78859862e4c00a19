"""The `quicfast` command: `serve DIR` in a subprocess (self-signed
certificate generated and announced), `get URL` against it with --ca, -k,
-o, --version v2, a session file with 0-RTT; graceful stop on SIGTERM; the
progress bar's rendering. Every subprocess is bounded by a timeout."""

import io
import os
import re
import signal
import subprocess
import sys

import pytest

from quicfast.__main__ import Progress, build_parser
from tests.h3.peers import CLI_ENV as ENV, quicfast_cli as quicfast


@pytest.fixture()
def served(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_bytes(b"hello from quicfast serve\n")
    (www / "blob.bin").write_bytes(os.urandom(4 << 20))
    proc = subprocess.Popen([sys.executable, "-m", "quicfast", "serve", str(www), "--port", "0", "--0rtt"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    ca = re.search(r"--ca (\S+)", lines[0])
    port = re.search(r"https://127\.0\.0\.1:(\d+)/", lines[1])
    assert ca and port, lines
    try:
        yield www, int(port.group(1)), ca.group(1), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def test_get_from_serve(served, tmp_path):
    www, port, ca, _ = served
    result = quicfast("get", f"https://localhost:{port}/hello.txt", "--ca", ca)
    assert result.returncode == 0 and result.stdout == b"hello from quicfast serve\n", result.stderr
    out = tmp_path / "blob.bin"
    result = quicfast("get", f"https://127.0.0.1:{port}/blob.bin", "-k", "-o", str(out), "--version", "v2", "-v")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (www / "blob.bin").read_bytes()
    assert b"version 0x6b3343cf" in result.stderr
    result = quicfast("get", f"https://localhost:{port}/missing", "--ca", ca, "-i")
    assert result.returncode == 1 and b"HTTP/3 404" in result.stderr


def test_untrusted_certificate_fails_without_k(served):
    _, port, _, _ = served
    result = quicfast("get", f"https://localhost:{port}/hello.txt", "--timeout", "10")
    assert result.returncode == 2 and b"quicfast get:" in result.stderr


def test_session_file_gives_0rtt(served, tmp_path):
    _, port, ca, _ = served
    session = str(tmp_path / "session.json")
    first = quicfast("get", f"https://localhost:{port}/hello.txt", "--ca", ca, "--session-file", session, "--0rtt", "-v")
    assert first.returncode == 0 and b"0-RTT used: False" in first.stderr
    assert os.path.exists(session)
    second = quicfast("get", f"https://localhost:{port}/hello.txt", "--ca", ca, "--session-file", session, "--0rtt", "-v")
    assert second.returncode == 0 and second.stdout == b"hello from quicfast serve\n", second.stderr
    assert b"0-RTT used: True" in second.stderr and b"resumed: True" in second.stderr


def test_serve_stops_gracefully_on_sigterm(served):
    _, _, _, proc = served
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "shutting down (GOAWAY)" in out


def test_progress_bar_shows_throughput():
    stream = io.StringIO()
    progress = Progress(total=10 << 20, enabled=True, stream=stream, delay=0)
    for _ in range(10):
        progress._last = 0
        progress.update(1 << 20)
    progress.finish()
    text = stream.getvalue()
    assert "100.0%" in text and "10.0 MiB/10.0 MiB" in text and "/s" in text and text.endswith("\n")


def test_parser_knows_the_documented_options():
    args = build_parser().parse_args(["get", "https://h/x", "-o", "f", "-k", "--ca", "c", "--version", "v2",
                                      "--qlog-dir", "d", "--keylog", "k", "--0rtt", "--session-file", "s"])
    assert (args.output, args.insecure, args.ca, args.version, args.zero_rtt) == ("f", True, "c", "v2", True)
    args = build_parser().parse_args(["serve", "dir", "--host", "::1", "--port", "8443", "--cert", "c", "--key", "k"])
    assert (args.host, args.port, args.cert, args.key) == ("::1", 8443, "c", "k")
