"""End-to-end loopback benchmark: quicfast vs aioquic, qh3 and aiopquic, side by side.

Every measurement runs a fresh server process and a fresh client process on
127.0.0.1 (spawned with ``subprocess``, each bounded by a timeout and killed if
it overstays).  Workloads, all through each library's own asyncio API:

* ``download``  one bidirectional stream: the client sends a 9-byte request,
  the server answers with N bytes and FIN.
* ``upload``    one bidirectional stream: the client sends the request and N
  bytes and FIN, the server counts them and answers with the 8-byte count.
* ``handshakes`` K connections, ``--hs-inflight`` (50) at a time; each is a new
  connection from a new UDP socket, a full handshake (no resumption), then closed
  with the library's own idiom (``async with connect()`` / ``close()`` +
  ``wait_closed()``).
* ``streams``   one connection, S request/response streams, ``--st-inflight``
  (100) at a time: 64-byte request + FIN, 256-byte response + FIN.

Wire format of a request: 1 byte op (D/U/R) + 8-byte big-endian size, then
(upload) the payload or (R) padding up to 64 bytes.

CPU is ``time.process_time()`` (all threads of the process): the client from
just before connecting until its last byte/connection, the server from when it
is ready until the parent stops it just after the client finished.  Each
(peer, workload) pair is run ``--repeat`` times (default 5), interleaved round
robin, and the median is reported.

aiopquic needs Python >= 3.12: its side runs with ``--py312`` (default
/tmp/bench312/bin/python, a venv with ``aiopquic==0.6.1``).

Usage::

    PYTHONPATH=src:. python benchmarks/e2e/bench_e2e.py [--only quicfast,qh3] \
        [--workloads download,upload,handshakes,streams] [--repeat 5] \
        [--json-out results.json] [--md-out results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

ALPN = "quicfast-test"
CHUNK = 1 << 20
PAYLOAD = b"\x00" * CHUNK
REQ_SIZE = 64            # request/response workload: request bytes (header + padding)
RESP_SIZE = 256          # request/response workload: response bytes
HDR = 9
MARK = "@@BENCH "        # children's result lines start with this (libraries may print too)

IMPLS = ("quicfast", "aioquic", "qh3", "aiopquic")
WORKLOADS = ("download", "upload", "handshakes", "streams")
# Per-peer defaults: bytes for bulk (aioquic is slow: smaller, results are per MB anyway),
# connections for handshakes, streams for request/response.
DEFAULT_BULK_MIB = {"quicfast": 256, "aioquic": 32, "qh3": 256, "aiopquic": 256}
DEFAULT_HANDSHAKES = {"quicfast": 1000, "aioquic": 400, "qh3": 1000, "aiopquic": 1000}
DEFAULT_STREAMS = 10_000
CLIENT_TIMEOUT = 150.0
SERVER_GRACE = 10.0


def _emit(obj) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _header(op: bytes, n: int) -> bytes:
    return op + n.to_bytes(8, "big")


# =============================================================================
# server side
# =============================================================================

async def _wait_stdin_eof() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def serve_stream(readexactly, read, write, drain, close) -> None:
    """The server's side of one stream, for stream-object APIs (quicfast, aioquic, qh3)."""
    hdr = await readexactly(HDR)
    op, n = hdr[:1], int.from_bytes(hdr[1:], "big")
    if op == b"D":
        sent = 0
        while sent < n:
            k = min(CHUNK, n - sent)
            write(PAYLOAD if k == CHUNK else PAYLOAD[:k])
            await drain()
            sent += k
        close()
    elif op == b"U":
        got = 0
        while chunk := await read(CHUNK):
            got += len(chunk)
        write(got.to_bytes(8, "big"))
        close()
    elif op == b"R":
        while await read(CHUNK):
            pass
        write(PAYLOAD[:n])
        close()


def _quicfast_server_tls(pki):
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_cert_chain(pki["cert"], pki["key"])
    tls.set_alpn_protocols([ALPN])
    # Like for like: the aioquic/qh3 clients here offer no psk_key_exchange_modes, so their
    # servers send no NewSessionTicket; quicfast's client always offers them, so without this
    # only quicfast would pay for a ticket per handshake (a full handshake is measured).
    tls.session_tickets = False
    return tls


async def server_quicfast(args, pki) -> None:
    import quicfast
    tls = _quicfast_server_tls(pki)
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(tls)
    tasks = set()

    def spawn(coro):
        t = asyncio.create_task(coro)
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    async def one_stream(stream):
        try:
            await serve_stream(stream.readexactly, stream.read, stream.write, stream.drain, stream.close)
        except Exception:
            pass

    async def one_conn(conn):
        create_task = asyncio.get_running_loop().create_task
        try:
            while True:
                stream = await conn.accept_stream()
                # A task per stream, no reference kept: what the aioquic/qh3
                # servers' stream_handler (server_aioquic_like) does.
                create_task(one_stream(stream))
        except Exception:
            pass

    async def accept_loop():
        try:
            while True:
                conn = await listener.accept()
                spawn(one_conn(conn))
        except Exception:
            pass

    cpu0 = time.process_time()
    _emit({"port": transport.local_addr[1]})
    acceptor = asyncio.create_task(accept_loop())
    await _wait_stdin_eof()
    cpu = time.process_time() - cpu0
    acceptor.cancel()
    _emit({"server_cpu": cpu})
    listener.close()
    transport.close()


async def server_aioquic_like(args, pki) -> None:
    if args.impl == "aioquic":
        from aioquic.asyncio import serve
    else:
        from qh3.asyncio import serve
    config = _aioquic_like_config(args.impl, pki, is_client=False)
    drain = _make_drain if args.impl == "qh3" else (lambda w: w.drain)

    async def handle(reader, writer):
        try:
            await serve_stream(reader.readexactly, reader.read, writer.write, drain(writer), writer.write_eof)
        except Exception:
            pass

    create_task = asyncio.get_running_loop().create_task
    server = await serve("127.0.0.1", 0, configuration=config,
                         stream_handler=lambda r, w: create_task(handle(r, w)))
    port = server._transport.get_extra_info("sockname")[1]
    cpu0 = time.process_time()
    _emit({"port": port})
    await _wait_stdin_eof()
    _emit({"server_cpu": time.process_time() - cpu0})
    server.close()


def _make_drain(writer, high_water: int = 4 * CHUNK):
    """qh3 2.1.0's StreamWriter.drain() raises AttributeError (its StreamWriter has no
    protocol, so ``_drain_helper`` is looked up on None).  Try the real drain once; when it
    raises, fall back to polling (1 ms sleeps) ``QuicConnection.get_send_buffer_size(stream_id)``
    until the stream's never-sent bytes are below `high_water`, so a bulk sender is bounded
    in memory as with aioquic's drain()."""
    state = {"real": True}
    quic = writer.transport.protocol._quic
    stream_id = writer.get_extra_info("stream_id")

    def buffered() -> int:
        return quic.get_send_buffer_size(stream_id)   # qh3's public "queued, never sent" count

    async def drain():
        if state["real"]:
            try:
                await writer.drain()
                return
            except AttributeError:
                state["real"] = False
        while buffered() > high_water:
            await asyncio.sleep(0.001)

    return drain


async def server_aiopquic(args, pki) -> None:
    from aiopquic.asyncio import QuicConnectionProtocol, serve
    from aiopquic.quic.configuration import QuicConfiguration
    from aiopquic.quic.events import StreamDataReceived

    class Server(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._streams = {}          # sid -> [header bytes, op, n, count]

        def quic_event_received(self, event):
            if not isinstance(event, StreamDataReceived):
                return
            sid = event.stream_id
            st = self._streams.get(sid)
            if st is None:
                st = self._streams[sid] = [b"", None, 0, 0]
            data = event.data
            if st[1] is None:
                need = HDR - len(st[0])
                st[0] += bytes(data[:need])
                data = data[need:]
                if len(st[0]) == HDR:
                    st[1], st[2] = st[0][:1], int.from_bytes(st[0][1:], "big")
            st[3] += len(data)
            del data
            if event.end_stream:
                del self._streams[sid]
                self._loop.create_task(self._answer(sid, st[1], st[2], st[3]))

        async def _answer(self, sid, op, n, count):
            q = self._quic
            try:
                if op == b"D":
                    sent = 0
                    while sent < n:
                        k = min(CHUNK, n - sent)
                        await q.send_stream_data_drained(sid, PAYLOAD if k == CHUNK else PAYLOAD[:k],
                                                         end_stream=(sent + k == n))
                        sent += k
                    if n == 0:
                        await q.send_stream_data_drained(sid, b"", end_stream=True)
                elif op == b"U":
                    await q.send_stream_data_drained(sid, count.to_bytes(8, "big"), end_stream=True)
                elif op == b"R":
                    await q.send_stream_data_drained(sid, PAYLOAD[:n], end_stream=True)
            except Exception:
                pass

    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(pki["cert"], pki["key"])
    config.max_connections = 1024
    server = await serve("127.0.0.1", args.port, configuration=config, create_protocol=Server)
    cpu0 = time.process_time()
    _emit({"port": args.port})
    await _wait_stdin_eof()
    _emit({"server_cpu": time.process_time() - cpu0})
    server.close()


# =============================================================================
# client side
# =============================================================================

def _quicfast_tls(pki):
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_verify_locations(cafile=pki["ca"])
    tls.set_alpn_protocols([ALPN])
    tls.server_name = "localhost"       # SNI + name check, as the aioquic/qh3 clients here
    tls.session_ticket_store = None     # every handshake a full one
    return tls


async def client_quicfast(args, pki) -> dict:
    import quicfast
    tls = _quicfast_tls(pki)
    addr = ("127.0.0.1", args.port)
    w = args.workload
    if w == "handshakes":
        async def one(handshake_done):
            conn = await quicfast.dial_addr(addr, tls)
            handshake_done()
            conn.close()
            await conn.wait_closed()

        return await run_handshakes(one, args)

    cpu0, t0 = time.process_time(), time.perf_counter()
    conn = await quicfast.dial_addr(addr, tls)
    try:
        if w == "download":
            stream = conn.open_stream()
            stream.write(_header(b"D", args.size))
            stream.close()
            got = 0
            while chunk := await stream.read(CHUNK):
                got += len(chunk)
            return _result(t0, cpu0, bytes=got)
        if w == "upload":
            stream = conn.open_stream()
            stream.write(_header(b"U", args.size))
            sent = 0
            while sent < args.size:
                k = min(CHUNK, args.size - sent)
                stream.write(PAYLOAD if k == CHUNK else PAYLOAD[:k])
                await stream.drain()
                sent += k
            stream.close()
            reply = await stream.read_all()
            return _result(t0, cpu0, bytes=int.from_bytes(reply, "big"))
        if w == "streams":
            request = _header(b"R", RESP_SIZE) + b"\x00" * (REQ_SIZE - HDR)
            ok = 0
            per_worker = _split(args.count, args.inflight)
            t1 = time.perf_counter()

            async def worker(n):
                nonlocal ok
                for _ in range(n):
                    stream = await conn.open_stream_sync()
                    stream.write(request)
                    stream.close()
                    if len(await stream.read_all()) == RESP_SIZE:
                        ok += 1

            await asyncio.gather(*(worker(n) for n in per_worker))
            return _result(t1, cpu0, count=ok)
    finally:
        conn.close()
        try:
            await asyncio.wait_for(conn.wait_closed(), 2.0)
        except Exception:
            pass


def _aioquic_like_config(impl: str, pki, is_client: bool):
    """aioquic's or qh3's QuicConfiguration as the benchmark uses it (their defaults)."""
    if impl == "aioquic":
        from aioquic.quic.configuration import QuicConfiguration
    else:
        from qh3.quic.configuration import QuicConfiguration
    if not is_client:
        config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        config.load_cert_chain(pki["cert"], pki["key"])
        return config
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
    if impl == "qh3":
        # qh3's verifier wants the chain: CA + leaf in one bundle.
        with open(pki["ca"]) as a, open(pki["cert"]) as b:
            config.load_verify_locations(cadata=(a.read() + b.read()).encode())
    else:
        config.load_verify_locations(pki["ca"])
    return config


async def client_aioquic_like(args, pki) -> dict:
    if args.impl == "aioquic":
        from aioquic.asyncio import connect
    else:
        from qh3.asyncio import connect

    def make_config():
        return _aioquic_like_config(args.impl, pki, is_client=True)

    w = args.workload
    port = args.port
    if w == "handshakes":
        async def one(handshake_done):
            async with connect("127.0.0.1", port, configuration=make_config()):
                handshake_done()

        return await run_handshakes(one, args)

    cpu0, t0 = time.process_time(), time.perf_counter()
    async with connect("127.0.0.1", port, configuration=make_config()) as client:
        if w == "download":
            reader, writer = await client.create_stream()
            writer.write(_header(b"D", args.size))
            writer.write_eof()
            got = 0
            while chunk := await reader.read(CHUNK):
                got += len(chunk)
            res = _result(t0, cpu0, bytes=got)
        elif w == "upload":
            reader, writer = await client.create_stream()
            drain = _make_drain(writer) if args.impl == "qh3" else writer.drain
            writer.write(_header(b"U", args.size))
            sent = 0
            while sent < args.size:
                k = min(CHUNK, args.size - sent)
                writer.write(PAYLOAD if k == CHUNK else PAYLOAD[:k])
                await drain()
                sent += k
            writer.write_eof()
            reply = await reader.read()
            res = _result(t0, cpu0, bytes=int.from_bytes(reply, "big"))
        elif w == "streams":
            request = _header(b"R", RESP_SIZE) + b"\x00" * (REQ_SIZE - HDR)
            ok = 0
            retries = 0
            quic = client._quic
            gate = args.impl == "qh3"
            t1 = time.perf_counter()

            async def worker(n):
                nonlocal ok, retries
                for _ in range(n):
                    # qh3 2.1.0 raises ValueError when a stream is opened past the peer's
                    # MAX_STREAMS, and a retry then fails with "native stream allocation is out
                    # of sync": wait for credit first (max_concurrent_bidi_streams is the
                    # peer's cumulative limit, as a count of streams).
                    while (gate and quic.get_next_available_stream_id() // 4
                           >= quic.max_concurrent_bidi_streams):
                        retries += 1
                        await asyncio.sleep(0.001)
                    reader, writer = await client.create_stream()
                    writer.write(request)
                    writer.write_eof()
                    if len(await reader.read()) == RESP_SIZE:
                        ok += 1

            await asyncio.gather(*(worker(n) for n in _split(args.count, args.inflight)))
            res = _result(t1, cpu0, count=ok, stream_credit_waits=retries)
        client.close()
    return res


async def client_aiopquic(args, pki) -> dict:
    from aiopquic.asyncio import QuicConnectionProtocol, connect
    from aiopquic.quic.configuration import QuicConfiguration
    from aiopquic.quic.events import StreamDataReceived

    class Client(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.waiters = {}       # sid -> future of (bytes count, last 8 bytes)
            self.counts = {}

        def quic_event_received(self, event):
            if not isinstance(event, StreamDataReceived):
                return
            sid = event.stream_id
            c = self.counts.get(sid)
            if c is None:
                c = self.counts[sid] = [0, b""]
            n = len(event.data)
            if n:
                c[0] += n
                if n >= 8:
                    c[1] = bytes(event.data[n - 8:])
            if event.end_stream:
                del self.counts[sid]
                fut = self.waiters.pop(sid, None)
                if fut is not None and not fut.done():
                    fut.set_result(c)

        def expect(self, sid):
            fut = asyncio.get_running_loop().create_future()
            self.waiters[sid] = fut
            return fut

    def make_config():
        config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
        config.load_verify_locations(cafile=pki["ca"])
        return config

    w = args.workload
    port = args.port
    if w == "handshakes":
        async def one(handshake_done):
            async with connect("127.0.0.1", port, configuration=make_config(), create_protocol=Client):
                handshake_done()

        return await run_handshakes(one, args)

    cpu0, t0 = time.process_time(), time.perf_counter()
    async with connect("127.0.0.1", port, configuration=make_config(), create_protocol=Client) as client:
        q = client._quic
        if w == "download":
            sid = q.get_next_available_stream_id()
            fut = client.expect(sid)
            await q.send_stream_data_drained(sid, _header(b"D", args.size), end_stream=True)
            got, _ = await fut
            res = _result(t0, cpu0, bytes=got)
        elif w == "upload":
            sid = q.get_next_available_stream_id()
            fut = client.expect(sid)
            await q.send_stream_data_drained(sid, _header(b"U", args.size))
            sent = 0
            while sent < args.size:
                k = min(CHUNK, args.size - sent)
                await q.send_stream_data_drained(sid, PAYLOAD if k == CHUNK else PAYLOAD[:k],
                                                 end_stream=(sent + k == args.size))
                sent += k
            _, tail = await fut
            res = _result(t0, cpu0, bytes=int.from_bytes(tail, "big"))
        elif w == "streams":
            request = _header(b"R", RESP_SIZE) + b"\x00" * (REQ_SIZE - HDR)
            ok = 0
            t1 = time.perf_counter()

            async def worker(n):
                nonlocal ok
                for _ in range(n):
                    sid = q.get_next_available_stream_id()
                    fut = client.expect(sid)
                    await q.send_stream_data_drained(sid, request, end_stream=True)
                    got, _ = await fut
                    if got == RESP_SIZE:
                        ok += 1

            await asyncio.gather(*(worker(n) for n in _split(args.count, args.inflight)))
            res = _result(t1, cpu0, count=ok)
    return res


async def run_handshakes(one, args) -> dict:
    """Run `args.count` connections, at most `args.inflight` handshakes at a time.

    ``one(handshake_done)`` dials a new connection from a new socket, calls
    ``handshake_done()`` once the library reports the handshake complete, then closes the
    connection its library's way and returns when the library says it is closed.  The
    in-flight slot is given back at ``handshake_done()``: closing periods (3 PTO, ~0.1 s on
    loopback, which aioquic/qh3's ``async with connect()`` wait out) overlap with the next
    handshakes instead of gating them.  The wall clock stops when every connection is
    closed as its library reports it: aioquic and qh3 report it at the end of the
    closing period (3 PTO); quicfast, like quic-go, once its CONNECTION_CLOSE is sent,
    its transport keeping the closing period (so the periods of the last ~3 PTO of
    connections end after the clock stops; all earlier ones are inside the time and CPU).
    """
    sem = asyncio.Semaphore(args.inflight)
    latencies = []
    failures = []
    ok = []

    async def slot():
        await sem.acquire()
        t = time.perf_counter()
        held = True

        def handshake_done():
            nonlocal held
            latencies.append(time.perf_counter() - t)
            held = False
            sem.release()

        try:
            await one(handshake_done)
            ok.append(1)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            if held:
                sem.release()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(slot() for _ in range(args.count)))
    latencies.sort()
    return _result(t0, cpu0, count=len(ok),
                   failures=len(failures), first_failure=failures[0] if failures else None,
                   handshake_p50_ms=1e3 * latencies[len(latencies) // 2] if latencies else None,
                   handshake_p90_ms=1e3 * latencies[len(latencies) * 9 // 10] if latencies else None)


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _result(t0: float, cpu0: float, **kw) -> dict:
    return {"wall": time.perf_counter() - t0, "client_cpu": time.process_time() - cpu0, **kw}


# =============================================================================
# orchestration
# =============================================================================

def child_main(args) -> None:
    pki = json.loads(args.pki)
    if args.role == "server":
        fn = {"quicfast": server_quicfast, "aiopquic": server_aiopquic}.get(args.impl, server_aioquic_like)
        asyncio.run(fn(args, pki))
    else:
        fn = {"quicfast": client_quicfast, "aiopquic": client_aiopquic}.get(args.impl, client_aioquic_like)
        res = asyncio.run(asyncio.wait_for(fn(args, pki), args.timeout))
        _emit(res)
    sys.stdout.flush()
    os._exit(0)     # do not wait for library threads (aiopquic's network thread) to wind down


def _tail(f, lines: int = 3) -> str:
    f.seek(0)
    return " | ".join(f.read().strip().splitlines()[-lines:])


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _read_marked(stream, deadline: float) -> dict:
    """Read lines until one carries a result (MARK); raise on EOF or deadline."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError("child did not answer in time")
            line = stream.readline()
            if not line:
                raise RuntimeError("child exited without a result")
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
    finally:
        sel.close()


def _kill(p) -> None:
    if p is not None and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def run_pair(impl: str, workload: str, params: dict, pki: dict, python: str, timeout: float) -> dict:
    base = [python, os.path.abspath(__file__), "--child", "--impl", impl, "--workload", workload,
            "--size", str(params.get("size", 0)), "--count", str(params.get("count", 0)),
            "--inflight", str(params.get("inflight", 1)), "--pki", json.dumps(pki),
            "--timeout", str(timeout)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "src"), ROOT, env.get("PYTHONPATH", "")])
    server_port = _free_udp_port() if impl == "aiopquic" else 0
    deadline = time.monotonic() + timeout + 2 * SERVER_GRACE
    server = client = res = None
    # stderr to files, not pipes: a chatty child must never block on a full pipe
    server_err = tempfile.TemporaryFile("w+")
    client_err = tempfile.TemporaryFile("w+")
    try:
        server = subprocess.Popen(base + ["--role", "server", "--port", str(server_port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=server_err,
                                  text=True, env=env, start_new_session=True)
        try:
            port = _read_marked(server.stdout, time.monotonic() + SERVER_GRACE)["port"]
        except Exception as exc:
            _kill(server)
            raise RuntimeError(f"server: {exc}; stderr: {_tail(server_err)}") from None
        client = subprocess.Popen(base + ["--role", "client", "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=client_err, text=True, env=env,
                                  start_new_session=True)
        try:
            res = _read_marked(client.stdout, deadline)
        except Exception as exc:
            _kill(client)
            raise RuntimeError(f"client: {exc}; stderr: {_tail(client_err)}") from None
        server.stdin.close()
        res.update(_read_marked(server.stdout, time.monotonic() + SERVER_GRACE))
        try:
            client.wait(SERVER_GRACE)
            server.wait(SERVER_GRACE)
        except subprocess.TimeoutExpired:
            pass
    finally:
        _kill(client)
        _kill(server)
        for side, f in (("server", server_err), ("client", client_err)):
            f.seek(0)
            text = f.read()
            f.close()
            n = text.count("Traceback (most recent call last)")
            if n:
                last = [ln for ln in text.splitlines() if ln and not ln.startswith(" ")][-1]
                # logged by the library inside the child (e.g. from a timer callback); the run went on
                if res is not None:
                    res[f"{side}_tracebacks"] = n
                    res[f"{side}_last_error"] = last[:200]
    res.update(peer=impl, workload=workload, **params)
    if workload in ("download", "upload"):
        if res["bytes"] != params["size"]:
            raise RuntimeError(f"transferred {res['bytes']} of {params['size']} bytes")
        gib = params["size"] / (1 << 30)
        res.update(mb_s=params["size"] / res["wall"] / 1e6,
                   client_cpu_per_gib=res["client_cpu"] / gib, server_cpu_per_gib=res["server_cpu"] / gib)
    else:
        if res["count"] != params["count"]:
            raise RuntimeError(f"completed {res['count']} of {params['count']}")
        res.update(rate=res["count"] / res["wall"],
                   client_cpu_per_op_ms=res["client_cpu"] * 1e3 / res["count"],
                   server_cpu_per_op_ms=res["server_cpu"] * 1e3 / res["count"])
    return res


def _params(impl: str, workload: str, args) -> dict:
    if workload in ("download", "upload"):
        mib = args.size_mib or DEFAULT_BULK_MIB[impl]
        return {"size": mib << 20}
    if workload == "handshakes":
        return {"count": args.handshakes or DEFAULT_HANDSHAKES[impl], "inflight": args.hs_inflight}
    return {"count": args.streams, "inflight": args.st_inflight}


def _median_runs(runs: list[dict], key: str):
    vals = [r[key] for r in runs]
    return statistics.median(vals), min(vals), max(vals)


def summarize(results: list[dict]) -> dict:
    """(impl, workload) -> summary of the successful runs (medians) and errors."""
    out = {}
    for r in results:
        out.setdefault((r["peer"], r["workload"]), {"runs": [], "errors": []})
        if "error" in r:
            out[(r["peer"], r["workload"])]["errors"].append(r["error"])
        else:
            out[(r["peer"], r["workload"])]["runs"].append(r)
    for (impl, workload), s in out.items():
        runs = s["runs"]
        if not runs:
            continue
        if workload in ("download", "upload"):
            keys = ("mb_s", "client_cpu_per_gib", "server_cpu_per_gib")
        else:
            keys = ("rate", "client_cpu_per_op_ms", "server_cpu_per_op_ms")
            if workload == "handshakes":
                keys += ("handshake_p50_ms",)
        for k in keys:
            s[k], s[k + "_min"], s[k + "_max"] = _median_runs(runs, k)
        s["n"] = len(runs)
        s["size_mib"] = runs[0].get("size", 0) >> 20
        s["count"] = runs[0].get("count", 0)
    return out


def _round_ratios(runs: list[dict], peer_runs: list[dict], key: str) -> list[float]:
    """quicfast's `key` ÷ the peer's, for each repetition both completed, in order."""
    by_rep = {r["rep"]: r[key] for r in peer_runs}
    return [r[key] / by_rep[r["rep"]] for r in runs if r["rep"] in by_rep and by_rep[r["rep"]]]


TARGETS = [("download", "qh3", 4.0), ("download", "aiopquic", 1.5), ("upload", "qh3", 10.0),
           ("handshakes", "qh3", 2.0), ("streams", "qh3", 3.0)]


def markdown(summary: dict, impls, workloads, notes: dict) -> str:
    lines = []

    def cell(s, key, fmt):
        if s is None or key not in s:
            return "-"
        v = fmt.format(s[key])
        if s.get("n", 0) > 1:
            v += " (" + fmt.format(s[key + "_min"]) + "–" + fmt.format(s[key + "_max"]) + ")"
        return v

    def err(s):
        if s is None:
            return "not run"
        return "error: " + (s["errors"][0] if s["errors"] else "?")

    bulk = [w for w in ("download", "upload") if w in workloads]
    for w in bulk:
        lines += [f"### Bulk {w}, one stream (median of runs; min–max in brackets)", "",
                  "| peer | MiB | runs | MB/s | client CPU s/GiB | server CPU s/GiB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for impl in impls:
            s = summary.get((impl, w))
            if s is None or "mb_s" not in s:
                lines.append(f"| {impl} | | | {notes.get(impl) or err(s)} | | |")
                continue
            lines.append(f"| {impl} | {s['size_mib']} | {s['n']} | {cell(s, 'mb_s', '{:.1f}')} | "
                         f"{cell(s, 'client_cpu_per_gib', '{:.2f}')} | {cell(s, 'server_cpu_per_gib', '{:.2f}')} |")
        lines.append("")
    titles = {"handshakes": "Handshakes (new connection each, full handshake, closed after)",
              "streams": "Request/response streams on one connection"}
    units = {"handshakes": "handshakes/s", "streams": "streams/s"}
    for w in ("handshakes", "streams"):
        if w not in workloads:
            continue
        cpu_unit = "ms" if w == "handshakes" else "µs"
        scale = 1.0 if w == "handshakes" else 1e3
        extra = " handshake p50 ms |" if w == "handshakes" else ""
        lines += [f"### {titles[w]}", "",
                  f"| peer | count | in flight | runs | {units[w]} | client CPU {cpu_unit}/op | server CPU {cpu_unit}/op |{extra}",
                  "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else "")]
        for impl in impls:
            s = summary.get((impl, w))
            if s is None or "rate" not in s:
                lines.append(f"| {impl} | | | | {notes.get(impl) or err(s)} | | |" + (" |" if extra else ""))
                continue
            sc = dict(s)
            for k in ("client_cpu_per_op_ms", "server_cpu_per_op_ms"):
                for suf in ("", "_min", "_max"):
                    sc[k + suf] = s[k + suf] * scale
            lines.append(f"| {impl} | {s['count']} | {s['runs'][0]['inflight']} | {s['n']} | {cell(s, 'rate', '{:,.0f}')} | "
                         f"{cell(sc, 'client_cpu_per_op_ms', '{:.2f}')} | {cell(sc, 'server_cpu_per_op_ms', '{:.2f}')} |"
                         + (f" {cell(s, 'handshake_p50_ms', '{:.1f}')} |" if extra else ""))
        lines.append("")

    # ratio table: quicfast / peer for each headline metric (higher is better for quicfast)
    metric = {"download": "mb_s", "upload": "mb_s", "handshakes": "rate", "streams": "rate"}
    peers = [i for i in impls if i != "quicfast"]
    lines += ["### quicfast ÷ peer (throughput ratios; > 1 means quicfast is faster)", "",
              "| workload | " + " | ".join(f"vs {p}" for p in peers) + " |",
              "|---|" + "---:|" * len(peers)]
    qf_all = {w: summary.get(("quicfast", w)) for w in workloads}
    for w in workloads:
        row = []
        for p in peers:
            q, s = qf_all[w], summary.get((p, w))
            if q and s and metric[w] in q and metric[w] in s:
                row.append(f"{q[metric[w]] / s[metric[w]]:.2f}x")
            else:
                row.append("-")
        lines.append(f"| {w} | " + " | ".join(row) + " |")
    lines.append("")
    # The same ratios repetition by repetition: each peer's run of a repetition runs right
    # after quicfast's, so a slow spell of the machine shows up here as one low round.
    if any(len(q["runs"]) > 1 for q in qf_all.values() if q):
        lines += ["### quicfast ÷ peer, repetition by repetition", "",
                  "| workload | " + " | ".join(f"vs {p}" for p in peers) + " |",
                  "|---|" + "---|" * len(peers)]
        for w in workloads:
            row = []
            for p in peers:
                q, s = qf_all[w], summary.get((p, w))
                ratios = _round_ratios(q["runs"], s["runs"], metric[w]) if q and s else []
                row.append(" · ".join(f"{x:.2f}" for x in ratios) or "-")
            lines.append(f"| {w} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["### peer ÷ quicfast CPU per unit of work (client + server; > 1 means quicfast uses less)", "",
              "| workload | " + " | ".join(f"{p}" for p in peers) + " |",
              "|---|" + "---:|" * len(peers)]
    cpu_keys = {"download": ("client_cpu_per_gib", "server_cpu_per_gib"),
                "upload": ("client_cpu_per_gib", "server_cpu_per_gib"),
                "handshakes": ("client_cpu_per_op_ms", "server_cpu_per_op_ms"),
                "streams": ("client_cpu_per_op_ms", "server_cpu_per_op_ms")}
    for w in workloads:
        row = []
        for p in peers:
            q, s = qf_all[w], summary.get((p, w))
            a, b = cpu_keys[w]
            if q and s and a in q and a in s:
                row.append(f"{(s[a] + s[b]) / (q[a] + q[b]):.2f}x")
            else:
                row.append("-")
        lines.append(f"| {w} | " + " | ".join(row) + " |")
    lines.append("")
    logged = []
    for (impl, w), s in sorted(summary.items()):
        for side in ("server", "client"):
            runs = [r for r in s["runs"] if r.get(f"{side}_tracebacks")]
            if runs:
                logged.append(f"* {impl} {w}, {side}: {sum(r[f'{side}_tracebacks'] for r in runs)} tracebacks "
                              f"logged in {len(runs)} of {len(s['runs'])} runs (the runs completed), last: "
                              f"`{runs[-1][f'{side}_last_error']}`")
    if logged:
        lines += ["Errors the libraries logged on stderr during successful runs:", ""] + logged + [""]
    lines += ["### Targets (issue 5)", "", "| target | measured | met |", "|---|---:|---|"]
    for w, p, goal in TARGETS:
        if w not in workloads:
            continue
        q, s = qf_all.get(w), summary.get((p, w))
        if q and s and metric[w] in q and metric[w] in s:
            ratio = q[metric[w]] / s[metric[w]]
            lines.append(f"| {w} ≥ {goal:g}× {p} | {ratio:.2f}× | {'yes' if ratio >= goal else 'no'} |")
        else:
            lines.append(f"| {w} ≥ {goal:g}× {p} | - | not measured |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(IMPLS), help="comma-separated peers")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=None, help="bulk size for every peer (default 256; aioquic 32)")
    ap.add_argument("--handshakes", type=int, default=None, help="connections (default 1000; aioquic 400)")
    ap.add_argument("--hs-inflight", type=int, default=50)
    ap.add_argument("--streams", type=int, default=DEFAULT_STREAMS)
    ap.add_argument("--st-inflight", type=int, default=100)
    ap.add_argument("--py312", default="/tmp/bench312/bin/python", help="interpreter with aiopquic installed")
    ap.add_argument("--timeout", type=float, default=CLIENT_TIMEOUT, help="per client run, seconds")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--md-out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--inflight", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pki", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)

    sys.path[:0] = [ROOT, os.path.join(ROOT, "src")]
    from tests.helpers.certs import pki_paths
    paths = pki_paths()
    pki = {"ca": paths.ca_file, "cert": paths.cert_file, "key": paths.key_file}
    impls = [i for i in args.only.split(",") if i]
    workloads = [w for w in args.workloads.split(",") if w]
    for name in impls + workloads:
        if name not in IMPLS + WORKLOADS:
            ap.error(f"unknown peer or workload {name!r}")

    notes = {}
    versions = {"python": sys.version.split()[0]}
    if "aiopquic" in impls:
        probe = subprocess.run([args.py312, "-c", "import sys, importlib.metadata as m; "
                                "print(sys.version.split()[0], m.version('aiopquic'))"],
                               capture_output=True, text=True, timeout=60) if os.path.exists(args.py312) else None
        if probe is None or probe.returncode != 0:
            notes["aiopquic"] = f"not run: no aiopquic under {args.py312} (needs Python >= 3.12)"
            impls.remove("aiopquic")
        else:
            py, ver = probe.stdout.split()
            versions["aiopquic"] = f"{ver} (Python {py})"
    for mod in ("aioquic", "qh3"):
        try:
            import importlib.metadata as md
            versions[mod] = md.version(mod)
        except Exception:
            pass

    results = []
    t_start = time.time()
    for rep in range(args.repeat):
        for workload in workloads:
            for impl in impls:
                params = _params(impl, workload, args)
                python = args.py312 if impl == "aiopquic" else sys.executable
                t0 = time.perf_counter()
                try:
                    r = run_pair(impl, workload, params, pki, python, args.timeout)
                except Exception as exc:  # report and carry on with the other peers
                    r = {"peer": impl, "workload": workload, "rep": rep, **params,
                         "error": f"{type(exc).__name__}: {exc}"[:300]}
                r["rep"] = rep
                results.append(r)
                what = (f"{r['mb_s']:.1f} MB/s" if "mb_s" in r else f"{r['rate']:,.0f}/s" if "rate" in r
                        else r.get("error"))
                print(f"[rep {rep + 1}/{args.repeat}] {workload:10s} {impl:9s} {what}  "
                      f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)

    summary = summarize(results)
    md = markdown(summary, impls + [i for i in notes if i not in impls], workloads, notes)
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        versions["quicfast"] = (f"{commit}{' + uncommitted src/' if dirty else ''}" if commit
                                else "(not a git checkout)")
    except Exception:
        pass
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(t_start))}, "
              f"{os.cpu_count()} CPUs, {' '.join(f'{k} {v}' for k, v in versions.items())}, "
              f"repeat {args.repeat}, total {time.time() - t_start:.0f} s\n")
    print(header)
    print(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"header": header, "versions": versions, "notes": notes, "results": results,
                       "summary": {f"{k[0]}/{k[1]}": {kk: vv for kk, vv in v.items() if kk != "runs"}
                                   for k, v in summary.items()}}, f, indent=2)
    if args.md_out:
        with open(args.md_out, "w") as f:
            f.write(header + "\n" + md)


if __name__ == "__main__":
    main()
