"""HTTP/3 peers nobody here wrote, for interop tests and benchmarks:
aioquic's HTTP/3 (a file server and a client, in-process) and the ngtcp2
examples (`gtlsserver`, `gtlsclient`, as subprocesses). Loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from typing import Optional

GTLSSERVER = shutil.which("gtlsserver") or ("/usr/sbin/gtlsserver" if os.path.exists("/usr/sbin/gtlsserver") else None)
GTLSCLIENT = shutil.which("gtlsclient") or ("/usr/bin/gtlsclient" if os.path.exists("/usr/bin/gtlsclient") else None)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The environment for a `python -m quicfast` subprocess run from this checkout.
CLI_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), ROOT]))


def quicfast_cli(*args, timeout=30) -> subprocess.CompletedProcess:
    """Run the `quicfast` command (bounded by `timeout`)."""
    return subprocess.run([sys.executable, "-m", "quicfast", *args], capture_output=True, timeout=timeout, env=CLI_ENV)


async def wait_for_ticket(tls, seconds: float = 5.0) -> bool:
    """Wait (bounded) until a quicfast client `TLSConfig` holds a session ticket."""
    for _ in range(int(seconds / 0.01)):
        if len(tls.session_ticket_store):
            return True
        await asyncio.sleep(0.01)
    return bool(len(tls.session_ticket_store))


#: How long `held_back_replies` delays the server's datagrams (seconds).
REPLY_DELAY = 0.3


def held_back_replies(upstream):
    """A relay (tests/helpers/proxy.py) to `upstream` that delays every
    server-to-client datagram by REPLY_DELAY: a resuming client then cannot
    complete its handshake before its first requests went out, so they
    travel in 0-RTT even when client and server share one event loop.
    Use as ``async with held_back_replies(addr) as relay:`` and dial relay.addr."""
    from tests.helpers.proxy import Impairment, ImpairmentProxy
    return ImpairmentProxy(upstream, to_client=Impairment(delay=REPLY_DELAY))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- aioquic -------------------------------------------------------------------

async def aioquic_h3_file_server(directory: str, cert: str, key: str, host: str = "127.0.0.1", port: int = 0,
                                 versions=None, requests: Optional[list] = None):
    """Start aioquic's HTTP/3 server answering GET /<name> with the file's bytes.
    It issues session tickets and takes them back (resumption, 0-RTT). When
    `requests` is a list, each request appends a dict: path, and whether the
    session was resumed, early data accepted and the handshake complete when
    the request arrived (not yet: it came in 0-RTT).
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
            if requests is not None:
                tls = self._quic.tls
                requests.append({"path": "/" + path, "resumed": tls.session_resumed,
                                 "early_data_accepted": tls.early_data_accepted,
                                 "handshake_complete": self._quic._handshake_complete})
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
    tickets: dict = {}
    server = await serve(host, port, configuration=config, create_protocol=Protocol,
                         session_ticket_fetcher=tickets.pop,
                         session_ticket_handler=lambda ticket: tickets.__setitem__(ticket.ticket, ticket))
    return server, server._transport.get_extra_info("sockname")[1]


async def aioquic_h3_get(host: str, port: int, paths: list[str], ca_file: str, version: Optional[int] = None,
                         server_name: str = "localhost", session: Optional[dict] = None) -> list[tuple[int, dict, bytes]]:
    """Fetch `paths` concurrently over one connection with aioquic's HTTP/3 client.

    With `session` (a dict), the client resumes with ``session["ticket"]``
    when there is one and then sends the requests at once, in 0-RTT; it
    stores the newest ticket the server sent there and reports "resumed" and
    "early_data_accepted"."""
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
    if session is None:
        async with connect(host, port, configuration=config, create_protocol=Protocol) as client:
            return await asyncio.gather(*(client.get(p) for p in paths))
    config.session_ticket = session.get("ticket")
    ticket_arrived = asyncio.Event()

    def store(ticket):
        session["ticket"] = ticket
        ticket_arrived.set()

    async with connect(host, port, configuration=config, create_protocol=Protocol, session_ticket_handler=store,
                       wait_connected=config.session_ticket is None) as client:
        results = await asyncio.gather(*(client.get(p) for p in paths))
        await asyncio.wait_for(ticket_arrived.wait(), 10)
        session["resumed"] = client._quic.tls.session_resumed
        session["early_data_accepted"] = client._quic.tls.early_data_accepted
        return results


# -- ngtcp2 examples -------------------------------------------------------------

def start_gtlsserver(directory: str, cert: str, key: str, port: int, extra=(), log=None) -> subprocess.Popen:
    """ngtcp2's HTTP/3 server on 127.0.0.1:`port` serving `directory`; quiet,
    unless `log` (an open file) is given to receive its frame-by-frame log."""
    quiet = ["-q"] if log is None else []
    return subprocess.Popen([GTLSSERVER, *quiet, "-d", directory, *extra, "127.0.0.1", str(port), key, cert],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if log is None else log)


def run_gtlsclient(port: int, uris: list[str], download_dir: str, timeout: float = 60, extra=(),
                   quic_dump: bool = False) -> subprocess.CompletedProcess:
    """ngtcp2's HTTP/3 client; it exits 0 even when it fails, so callers read
    its output (with `quic_dump`, every frame it sends and receives)."""
    dump = [] if quic_dump else ["--no-quic-dump"]
    return subprocess.run([GTLSCLIENT, "--exit-on-all-streams-close", "--download", download_dir,
                           *dump, "--no-http-dump", *extra, "127.0.0.1", str(port), *uris],
                          capture_output=True, timeout=timeout)


#: In ngtcp2's frame log: the request (stream 0, with FIN) in a 0-RTT packet.
NGTCP2_0RTT_REQUEST = re.compile(rb"frm (?:tx|rx) \d+ 0RTT STREAM\(0x0b\) id=0x0 fin=1")


# -- quicfast's own server, observed ------------------------------------------------

def record_requests(server) -> list:
    """Observe a quicfast `h3.Server` (before or after start): each request
    it dispatches appends a dict: stream_id, and whether its connection was
    resumed, had 0-RTT accepted and had completed its handshake when the
    request was taken (not yet: the request came in 0-RTT)."""
    log: list = []
    dispatch = server._handle_request

    async def handle(h3conn, req):
        quic = h3conn.quic
        state = quic.connection_state()
        log.append({"stream_id": req.stream_id, "resumed": state.tls["session_resumed"],
                    "used_0rtt": state.used_0rtt, "handshake_complete": quic._handshake_done.done()})
        await dispatch(h3conn, req)

    server._handle_request = handle
    return log


# -- resumption and 0-RTT setups shared by the interop tests ---------------------------

@contextlib.asynccontextmanager
async def quicfast_0rtt_server(directory: str, pki):
    """A quicfast `h3.Server` (StaticFiles, allow_0rtt) behind `held_back_replies`;
    yields (the relay's port, the `record_requests` log)."""
    from quicfast import h3
    from quicfast.config import Config
    server = h3.Server(h3.StaticFiles(directory), port=0, certfile=pki.cert_file, keyfile=pki.key_file,
                       config=Config(allow_0rtt=True))
    requests = record_requests(server)
    await server.start()
    relay = await held_back_replies(server.addr).start()
    try:
        yield relay.addr[1], requests
    finally:
        relay.close()
        await server.shutdown()


@contextlib.asynccontextmanager
async def aioquic_0rtt_server(directory: str, pki):
    """aioquic's HTTP/3 file server behind `held_back_replies`; yields (the
    relay's port, its request log, see `aioquic_h3_file_server`)."""
    requests: list = []
    server, port = await aioquic_h3_file_server(directory, pki.cert_file, pki.key_file, requests=requests)
    relay = await held_back_replies(("127.0.0.1", port)).start()
    try:
        yield relay.addr[1], requests
    finally:
        relay.close()
        server.close()


async def quicfast_get_twice(url: str, ca_file: str) -> list:
    """GET `url` on two successive quicfast `h3.Client`s sharing one TLSConfig
    (allow_0rtt: the second resumes with the first's ticket and sends in
    0-RTT). Returns per connection (status, body, connection_state(), zero_rtt_rejected)."""
    from quicfast import h3
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_verify_locations(cafile=ca_file)
    out = []
    for _ in range(2):
        async with h3.Client(tls=tls, allow_0rtt=True) as client:
            r = await client.get(url)
            body = await r.read()
            quic = next(iter(client._connections.values())).quic
            out.append((r.status, body, quic.connection_state(), quic.zero_rtt_rejected))
            assert await wait_for_ticket(tls), "the server sent no session ticket"
    return out
