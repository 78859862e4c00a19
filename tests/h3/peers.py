"""HTTP/3 peers nobody here wrote, for interop tests and benchmarks:
aioquic's HTTP/3 (a file server and a client, in-process) and the ngtcp2
examples (`gtlsserver`, `gtlsclient`, as subprocesses). Loopback only."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from typing import Optional

GTLSSERVER = shutil.which("gtlsserver") or ("/usr/sbin/gtlsserver" if os.path.exists("/usr/sbin/gtlsserver") else None)
GTLSCLIENT = shutil.which("gtlsclient") or ("/usr/bin/gtlsclient" if os.path.exists("/usr/bin/gtlsclient") else None)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- aioquic -------------------------------------------------------------------

async def aioquic_h3_file_server(directory: str, cert: str, key: str, host: str = "127.0.0.1", port: int = 0,
                                 versions=None):
    """Start aioquic's HTTP/3 server answering GET /<name> with the file's bytes.
    Returns (server, port); close with server.close()."""
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration

    class Protocol(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._http = H3Connection(self._quic)

        def quic_event_received(self, event):
            for h3_event in self._http.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    self._respond(h3_event)

        def _respond(self, event):
            headers = dict(event.headers)
            path = headers.get(b":path", b"/").decode().split("?")[0].lstrip("/")
            full = os.path.realpath(os.path.join(directory, path))
            if path and full.startswith(os.path.realpath(directory)) and os.path.isfile(full):
                with open(full, "rb") as f:
                    body = f.read()
                status = b"200"
            else:
                body, status = b"not found\n", b"404"
            self._http.send_headers(event.stream_id, [(b":status", status),
                                                      (b"content-length", str(len(body)).encode())])
            self._http.send_data(event.stream_id, body, end_stream=True)
            self.transmit()

    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    if versions:
        config.supported_versions = list(versions)
    config.load_cert_chain(cert, key)
    server = await serve(host, port, configuration=config, create_protocol=Protocol)
    return server, server._transport.get_extra_info("sockname")[1]


async def aioquic_h3_get(host: str, port: int, paths: list[str], ca_file: str, version: Optional[int] = None,
                         server_name: str = "localhost") -> list[tuple[int, dict, bytes]]:
    """Fetch `paths` concurrently over one connection with aioquic's HTTP/3 client."""
    from aioquic.asyncio import QuicConnectionProtocol, connect
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration

    class Protocol(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._http = H3Connection(self._quic)
            self._pending: dict[int, list] = {}

        def quic_event_received(self, event):
            for h3_event in self._http.handle_event(event):
                entry = self._pending.get(h3_event.stream_id)
                if entry is None:
                    continue
                if isinstance(h3_event, HeadersReceived):
                    if entry[1] is None:
                        entry[1] = dict(h3_event.headers)
                elif isinstance(h3_event, DataReceived):
                    entry[2].append(h3_event.data)
                if h3_event.stream_ended and not entry[0].done():
                    entry[0].set_result(None)

        async def get(self, path: str):
            stream_id = self._quic.get_next_available_stream_id()
            entry = [asyncio.get_running_loop().create_future(), None, []]
            self._pending[stream_id] = entry
            self._http.send_headers(stream_id, [(b":method", b"GET"), (b":scheme", b"https"),
                                                (b":authority", f"{server_name}:{port}".encode()),
                                                (b":path", path.encode())], end_stream=True)
            self.transmit()
            await entry[0]
            headers = entry[1] or {}
            return int(headers.get(b":status", b"0")), headers, b"".join(entry[2])

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=server_name)
    config.load_verify_locations(ca_file)
    if version is not None:
        config.original_version = version
        config.supported_versions = [version]
    async with connect(host, port, configuration=config, create_protocol=Protocol) as client:
        return await asyncio.gather(*(client.get(p) for p in paths))


# -- ngtcp2 examples -------------------------------------------------------------

def start_gtlsserver(directory: str, cert: str, key: str, port: int, extra=()) -> subprocess.Popen:
    """ngtcp2's HTTP/3 server on 127.0.0.1:`port` serving `directory`."""
    return subprocess.Popen([GTLSSERVER, "-q", "-d", directory, *extra, "127.0.0.1", str(port), key, cert],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_gtlsclient(port: int, uris: list[str], download_dir: str, timeout: float = 60, extra=()) -> subprocess.CompletedProcess:
    """ngtcp2's HTTP/3 client; it exits 0 even when it fails, so callers read its output."""
    return subprocess.run([GTLSCLIENT, "--exit-on-all-streams-close", "--download", download_dir,
                           "--no-quic-dump", "--no-http-dump", *extra, "127.0.0.1", str(port), *uris],
                          capture_output=True, timeout=timeout)
