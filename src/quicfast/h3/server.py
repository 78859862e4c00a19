"""HTTP/3 server for ASGI 3 applications: `quicfast.h3.Server` and `serve()`.

Implements the server side of RFC 9114 §4.1 (one request per bidirectional
stream; streamed request and response bodies; trailers), §4.1.2 (malformed
requests reset with H3_MESSAGE_ERROR) and §5.2 (graceful shutdown: GOAWAY
naming the first unprocessed request, in-flight requests finish, then
CONNECTION_CLOSE with H3_NO_ERROR), and the ASGI 3 HTTP protocol
(https://asgi.readthedocs.io/en/latest/specs/www.html, spec version 2.3,
`http_version` "3", with the `http.response.trailers` extension).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional
from urllib.parse import unquote

from ..config import Config
from ..errors import ConnectionClosedError, H3ErrorCode, QuicError, ServerClosedError, StreamError
from ..tls import TLSConfig
from ..transport import Transport
from .connection import ALPN, H3Connection, H3Settings, RequestStream
from .exceptions import H3ConnectionError, H3StreamError, MessageError
from .messages import CONNECTION_SPECIFIC, check_request, check_trailers

__all__ = ["Server", "serve"]

log = logging.getLogger("quicfast.h3.server")


class Server:
    """Serves an ASGI 3 application over HTTP/3.

    :param app: the ASGI application (``async def app(scope, receive, send)``).
    :param host: address to bind.
    :param port: UDP port (0: any free one; see `addr`).
    :param tls: a `TLSConfig` with a certificate, or give `certfile` and `keyfile`.
    :param config: QUIC `Config` for accepted connections.
    :param settings: `H3Settings` we advertise (extended CONNECT is offered by default).
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 4433, tls: Optional[TLSConfig] = None,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None, config: Optional[Config] = None,
                 settings: Optional[H3Settings] = None, root_path: str = "", server_header: bool = True) -> None:
        if tls is None:
            if not certfile:
                raise ValueError("give tls= or certfile= (and keyfile=)")
            tls = TLSConfig()
            tls.load_cert_chain(certfile, keyfile)
        tls.set_alpn_protocols([ALPN])
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self.config = config or Config()
        self.settings = settings or H3Settings(enable_connect_protocol=True)
        self.root_path = root_path
        self.server_header = server_header
        self._transport: Optional[Transport] = None
        self._listener = None
        self._accept_task: Optional[asyncio.Task] = None
        self._connections: dict[H3Connection, set] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self._stopped: Optional[asyncio.Future] = None

    @property
    def addr(self):
        """The bound (host, port)."""
        return self._transport.local_addr

    async def start(self) -> None:
        self._transport = await Transport.bind(self.host, self.port)
        # With 0-RTT the connection is taken before its handshake completes, so
        # early requests are read at once (RFC 9114 §3.2; RFC 9001 §4.6.1).
        listen = self._transport.listen_early if self.config.allow_0rtt else self._transport.listen
        self._listener = listen(self.tls, self.config)
        self._stopped = asyncio.get_running_loop().create_future()
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop())
        await self._lifespan("startup")

    async def __aenter__(self) -> "Server":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()

    async def serve_forever(self) -> None:
        if self._transport is None:
            await self.start()
        await asyncio.shield(self._stopped)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Graceful shutdown (RFC 9114 §5.2): stop accepting, send GOAWAY on
        every connection, let requests in flight finish for up to `grace`
        seconds, then close the connections with H3_NO_ERROR."""
        if self._closing:
            return
        self._closing = True
        if self._listener is not None:
            self._listener.close()
        for h3 in list(self._connections):
            if not h3.closed:
                h3.send_goaway()
        pending = [t for conn_tasks in self._connections.values() for t in conn_tasks]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for h3 in list(self._connections):
            h3.close(H3ErrorCode.H3_NO_ERROR, "server shutting down")
        for h3 in list(self._connections):
            try:
                await asyncio.wait_for(h3.wait_closed(), 1.0)
            except asyncio.TimeoutError:
                pass
        if self._accept_task is not None:
            self._accept_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._lifespan("shutdown")
        if self._transport is not None:
            self._transport.close()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    async def _lifespan(self, event: str) -> None:
        """ASGI lifespan, best effort: apps that do not support it are ignored."""
        return None

    # -- connections ----------------------------------------------------------------

    async def _accept_loop(self) -> None:
        try:
            async for quic in self._listener:
                self._spawn(self._serve_connection(quic))
        except (ServerClosedError, asyncio.CancelledError):
            pass

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _serve_connection(self, quic) -> None:
        h3 = H3Connection(quic, is_client=False, settings=self.settings)
        requests: set = set()
        self._connections[h3] = requests
        try:
            await h3.start()
            while True:
                req = await h3.accept_request()
                task = asyncio.get_running_loop().create_task(self._handle_request(h3, req))
                requests.add(task)
                task.add_done_callback(requests.discard)
        except (ConnectionClosedError, QuicError):
            pass
        finally:
            self._connections.pop(h3, None)

    async def _handle_request(self, h3: H3Connection, req: RequestStream) -> None:
        try:
            await _RequestCycle(self, h3, req).run()
        except (ConnectionClosedError, H3ConnectionError):
            pass
        except Exception:
            log.exception("error handling request on stream %d", req.stream_id)
        finally:
            h3._forget(req)


class _RequestCycle:
    """One request handed to the ASGI application."""

    def __init__(self, server: Server, h3: H3Connection, req: RequestStream) -> None:
        self.server = server
        self.h3 = h3
        self.req = req
        self.response_started = False
        self.response_complete = False
        self.expect_trailers = False
        self.body_done = False
        self.disconnected = asyncio.Event()

    async def run(self) -> None:
        req = self.req
        try:
            request = check_request(await req.receive_headers(), self.h3.settings.enable_connect_protocol)
        except H3StreamError as exc:
            req.reset(exc.error_code)
            return
        except StreamError:
            req.reset(H3ErrorCode.H3_REQUEST_INCOMPLETE)
            return
        path_bytes = request.path or b""
        raw_path, _, query = path_bytes.partition(b"?")
        quic = self.h3.quic
        local, remote = quic.local_addr, quic.remote_addr
        headers = list(request.headers)
        if request.authority and not any(k == b"host" for k, _ in headers):
            headers.insert(0, (b"host", request.authority))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "3",
            "method": request.method.decode("ascii", "replace"),
            "scheme": (request.scheme or b"https").decode("ascii", "replace"),
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.server.root_path,
            "headers": headers,
            "client": (remote[0], remote[1]),
            "server": (local[0], local[1]),
            "extensions": {"http.response.trailers": {}},
        }
        if request.protocol is not None:
            scope["extensions"]["http.extended_connect"] = {"protocol": request.protocol.decode("ascii", "replace")}
        try:
            await self.server.app(scope, self.receive, self.send)
        except (StreamError, ConnectionClosedError):
            return
        except Exception:
            log.exception("ASGI application raised")
            if not self.response_started:
                try:
                    await self.send({"type": "http.response.start", "status": 500,
                                     "headers": [(b"content-type", b"text/plain")]})
                    await self.send({"type": "http.response.body", "body": b"Internal Server Error"})
                except Exception:
                    req.reset(H3ErrorCode.H3_INTERNAL_ERROR)
            elif not self.response_complete:
                req.reset(H3ErrorCode.H3_INTERNAL_ERROR)
            return
        if not self.response_started:
            req.reset(H3ErrorCode.H3_INTERNAL_ERROR)
        elif not self.response_complete:
            req.reset(H3ErrorCode.H3_INTERNAL_ERROR)
        elif not self.body_done:
            # The response is complete: the rest of the request body is not needed (RFC 9114 §4.1).
            try:
                req.stream.cancel_read(H3ErrorCode.H3_NO_ERROR)
            except QuicError:
                pass

    async def receive(self) -> dict:
        if self.response_complete:
            return {"type": "http.disconnect"}
        if self.body_done:
            # Nothing more will come: wait until the response is over or the connection is gone.
            waiters = [asyncio.ensure_future(self.disconnected.wait()), asyncio.ensure_future(self.h3.quic.wait_closed())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            return {"type": "http.disconnect"}
        try:
            chunk = await self.req.read_data()
            if not chunk and self.req.trailers is not None:
                check_trailers(self.req.trailers)   # RFC 9114 §4.1.2 (ASGI then drops them)
        except H3StreamError as exc:
            self.req.reset(exc.error_code)
            self.disconnected.set()
            return {"type": "http.disconnect"}
        except (StreamError, ConnectionClosedError, H3ConnectionError):
            self.disconnected.set()
            return {"type": "http.disconnect"}
        if chunk:
            return {"type": "http.request", "body": chunk, "more_body": True}
        self.body_done = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict) -> None:
        kind = message["type"]
        req = self.req
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("response already started")
            self.response_started = True
            self.expect_trailers = bool(message.get("trailers", False))
            fields = [(b":status", str(int(message["status"])).encode())]
            for name, value in message.get("headers", ()):
                name = bytes(name).lower()
                if name in CONNECTION_SPECIFIC:
                    continue
                fields.append((name, bytes(value)))
            if self.server.server_header and not any(k == b"server" for k, _ in fields):
                fields.append((b"server", b"quicfast"))
            req.send_headers(fields)
        elif kind == "http.response.body":
            if not self.response_started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.response_complete:
                raise RuntimeError("response already complete")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body:
                req.send_data(body)
            if not more:
                if not self.expect_trailers:
                    self.response_complete = True
                    req.end()
                    self.disconnected.set()
            await req.drain()
        elif kind == "http.response.trailers":
            if not self.expect_trailers:
                raise RuntimeError("trailers were not announced in http.response.start")
            fields = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            if message.get("more_trailers", False):
                raise RuntimeError("split trailers are not supported")
            req.send_trailers(fields)
            self.response_complete = True
            self.disconnected.set()
            await req.drain()
        else:
            raise RuntimeError(f"unknown ASGI message type {kind!r}")


async def serve(app, host: str = "127.0.0.1", port: int = 4433, **kw) -> Server:
    """Start serving `app` and return the running `Server` (call `shutdown()` to stop)."""
    server = Server(app, host=host, port=port, **kw)
    await server.start()
    return server
