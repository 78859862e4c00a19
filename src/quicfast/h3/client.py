"""HTTP/3 client: `quicfast.h3.Client`, with one connection per origin
reused by concurrent requests, and streamed responses.

Implements the client side of RFC 9114 §3.1 (connection reuse per origin,
§3.3), §4.1 (sending a request and reading its response, skipping 1xx
interim responses) and §5.2 (GOAWAY: new requests go to a new connection,
rejected ones are retried once). 0-RTT (RFC 9114 §3.2, RFC 9001 §4.6) is used
for idempotent requests when `allow_0rtt` is set and a session ticket is held.

Usage::

    async with quicfast.h3.Client(ca_file="ca.pem") as client:
        response = await client.request("GET", "https://localhost:4433/file")
        async for chunk in response:
            ...
"""

from __future__ import annotations

import asyncio
import ssl
from typing import AsyncIterable, Iterable, Optional, Union
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ConnectionClosedError, H3ErrorCode, QuicError, StreamError
from ..tls import TLSConfig
from ..transport import dial_addr
from .connection import ALPN, H3Connection, H3Settings, RequestStream
from .exceptions import GoAwayError, H3ConnectionError, H3StreamError, MessageError
from .messages import CONNECTION_SPECIFIC, check_response, check_trailers

__all__ = ["Client", "Response", "Headers"]

#: Methods that may go in 0-RTT and be retried after GOAWAY (RFC 9110 §9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

HeadersLike = Union[None, dict, Iterable[tuple]]
Content = Union[None, bytes, bytearray, memoryview, str, AsyncIterable[bytes], Iterable[bytes]]


class Headers(list):
    """A response's fields as a list of (name, value) bytes pairs, names lowercase."""

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        key = name.lower().encode()
        for k, v in self:
            if k == key:
                return v.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self if k == key]

    def __contains__(self, name) -> bool:
        if isinstance(name, str):
            return self.get(name) is not None
        return list.__contains__(self, name)


class Response:
    """An HTTP/3 response: `status`, `headers`, then the body, streamed.

    Iterate it (`async for chunk in response`) or `await response.read()`.
    `trailers` is set once the body has been read to its end.
    """

    http_version = "HTTP/3"

    def __init__(self, request_stream: RequestStream, status: int, headers: Headers, url: str,
                 method: str, sender: Optional[asyncio.Task] = None) -> None:
        self._req = request_stream
        self.status = status
        self.status_code = status
        self.headers = headers
        self.url = url
        self.method = method
        self.trailers: Optional[Headers] = None
        self._content: Optional[bytes] = None
        self._done = False
        self._sender = sender

    @property
    def stream_id(self) -> int:
        return self._req.stream_id

    def __repr__(self) -> str:
        return f"<Response [{self.status}] {self.url}>"

    async def aiter_bytes(self):
        """The body, chunk by chunk, as the connection delivers it."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._done:
            raise RuntimeError("the body was already consumed")
        req = self._req
        try:
            while True:
                chunk = await req.read_data()
                if not chunk:
                    break
                yield chunk
        except H3StreamError as exc:
            req.reset(exc.error_code)
            self._done = True
            raise
        except BaseException:
            if not self._done:
                self._done = True
                req.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise
        self._done = True
        if req.trailers is not None:
            try:
                self.trailers = Headers(check_trailers(req.trailers))
            except MessageError:
                req.reset(H3ErrorCode.H3_MESSAGE_ERROR)
                raise
        req._h3._forget(req)

    def __aiter__(self):
        return self.aiter_bytes()

    async def read(self) -> bytes:
        """The whole body (kept in `content`)."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_bytes()])
        return self._content

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("call await response.read() first")
        return self._content

    def text(self, encoding: str = "utf-8") -> str:
        return self.content.decode(encoding, "replace")

    async def aclose(self) -> None:
        """Stop reading: the rest of the body is refused (STOP_SENDING H3_REQUEST_CANCELLED)."""
        if not self._done:
            self._done = True
            self._req.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()

    async def __aenter__(self) -> "Response":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class Client:
    """An HTTP/3 client keeping one connection per origin (scheme, host, port).

    :param verify: verify the server's certificate (False is curl's ``-k``).
    :param ca_file: PEM file of trust anchors (default: the system's / certifi's).
    :param tls: a ready `TLSConfig` (its ALPN is set to "h3").
    :param config: QUIC `Config` (versions, windows, 0-RTT, datagrams).
    :param settings: `H3Settings` advertised to servers.
    :param allow_0rtt: send idempotent requests in 0-RTT when a ticket is held.
    :param timeout: seconds allowed for connecting.
    """

    def __init__(self, *, verify: bool = True, ca_file: Optional[str] = None, tls: Optional[TLSConfig] = None,
                 config: Optional[Config] = None, settings: Optional[H3Settings] = None,
                 allow_0rtt: bool = False, keylog_file: Optional[str] = None, timeout: float = 30.0,
                 server_name: Optional[str] = None) -> None:
        if tls is None:
            tls = TLSConfig()
            if ca_file:
                tls.load_verify_locations(cafile=ca_file)
        if not verify:
            tls.verify_mode = ssl.CERT_NONE
            tls.check_hostname = False
        if keylog_file:
            tls.keylog_filename = keylog_file
        tls.set_alpn_protocols([ALPN])
        self.tls = tls
        self.config = config or Config()
        if allow_0rtt:
            self.config.allow_0rtt = True
        self.allow_0rtt = allow_0rtt
        self.settings = settings or H3Settings()
        self.timeout = timeout
        self.server_name = server_name
        self._connections: dict[tuple, H3Connection] = {}
        self._dialing: dict[tuple, asyncio.Future] = {}
        self._closed = False

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection with H3_NO_ERROR (after a GOAWAY) and wait for them."""
        self._closed = True
        conns = list(self._connections.values())
        self._connections.clear()
        for h3 in conns:
            if not h3.closed:
                h3.send_goaway(0)
                h3.close(H3ErrorCode.H3_NO_ERROR)
        for h3 in conns:
            try:
                await asyncio.wait_for(h3.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass

    # -- connections ---------------------------------------------------------------

    async def connection(self, url: str) -> H3Connection:
        """The HTTP/3 connection this client uses for `url`'s origin (dialled if needed)."""
        return await self._connection_for(_origin(urlsplit(url)), early=False)

    async def _connection_for(self, origin: tuple, early: bool) -> H3Connection:
        while True:
            h3 = self._connections.get(origin)
            if h3 is not None and not h3.closed and h3.goaway_received is None:
                return h3
            pending = self._dialing.get(origin)
            if pending is not None:
                await asyncio.shield(pending)
                continue
            fut = asyncio.get_running_loop().create_future()
            self._dialing[origin] = fut
            try:
                h3 = await asyncio.wait_for(self._dial(origin, early), self.timeout)
                self._connections[origin] = h3
                fut.set_result(None)
                return h3
            except BaseException as exc:
                fut.set_result(None)
                raise exc
            finally:
                self._dialing.pop(origin, None)

    async def _dial(self, origin: tuple, early: bool) -> H3Connection:
        if self._closed:
            raise RuntimeError("client is closed")
        _, host, port = origin
        server_name = self.server_name or host
        quic = await dial_addr((host, port), self.tls, self.config, server_name=server_name, early=early)
        h3 = H3Connection(quic, is_client=True, settings=self.settings)
        await h3.start()
        return h3

    # -- requests -----------------------------------------------------------------

    async def request(self, method: str, url: str, headers: HeadersLike = None,
                      content: Content = None) -> Response:
        """Send a request and return once the response's headers arrived.

        The body is read from the returned `Response`. A request the server
        refused with GOAWAY before processing is retried once on a new
        connection when its content can be replayed.
        """
        method = method.upper()
        parts = urlsplit(url)
        if parts.scheme not in ("https", ""):
            raise ValueError(f"HTTP/3 needs an https URL, not {url!r}")
        origin = _origin(parts)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        fields = [(b":method", method.encode()), (b":scheme", b"https"),
                  (b":authority", authority.encode()), (b":path", path.encode())]
        fields += _normalize_headers(headers)
        if isinstance(content, str):
            content = content.encode()
        replayable = content is None or isinstance(content, (bytes, bytearray, memoryview))
        if isinstance(content, (bytes, bytearray, memoryview)) and not any(k == b"content-length" for k, _ in fields):
            fields.append((b"content-length", str(len(content)).encode()))
        early = self.allow_0rtt and method in _SAFE and replayable
        for attempt in range(2):
            h3 = await self._connection_for(origin, early)
            try:
                return await self._exchange(h3, method, url, fields, content)
            except GoAwayError:
                if attempt or not replayable:
                    raise
        raise AssertionError("unreachable")

    async def get(self, url: str, **kw) -> Response:
        return await self.request("GET", url, **kw)

    async def _exchange(self, h3: H3Connection, method: str, url: str, fields, content) -> Response:
        req = await h3.open_request()
        sender = None
        try:
            if content is None:
                req.send_headers(fields, end_stream=True)
            elif isinstance(content, (bytes, bytearray, memoryview)):
                req.send_headers(fields)
                req.send_data(bytes(content), end_stream=True)
            else:
                req.send_headers(fields)
                sender = asyncio.get_running_loop().create_task(_send_body(req, content))
            while True:
                status, regular = check_response(await req.receive_headers())
                if status >= 200:
                    break
                if status == 101:
                    raise MessageError("101 is not allowed in HTTP/3")
            if method == "HEAD" or status in (204, 304):
                req.expected_length = None    # RFC 9110 §8.6: the length of a body not sent here
            return Response(req, status, Headers(regular), url, method, sender)
        except H3StreamError as exc:
            if not isinstance(exc, GoAwayError):
                req.reset(exc.error_code)
            if sender is not None:
                sender.cancel()
            raise
        except StreamError as exc:
            if sender is not None:
                sender.cancel()
            if h3.goaway_received is not None and req.stream_id >= h3.goaway_received:
                raise GoAwayError() from exc
            if exc.error_code == H3ErrorCode.H3_REQUEST_REJECTED:
                raise GoAwayError("request rejected by the server") from exc
            raise
        except BaseException:
            if sender is not None:
                sender.cancel()
            if not h3.closed:
                req.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise


async def _send_body(req: RequestStream, content) -> None:
    try:
        if hasattr(content, "__aiter__"):
            async for chunk in content:
                if chunk:
                    req.send_data(bytes(chunk))
                    await req.drain()
        else:
            for chunk in content:
                if chunk:
                    req.send_data(bytes(chunk))
                    await req.drain()
        req.end()
    except (QuicError, ConnectionClosedError):
        pass


def _origin(parts) -> tuple:
    host = parts.hostname
    if not host:
        raise ValueError("URL has no host")
    return ("https", host, parts.port or 443)


def _normalize_headers(headers: HeadersLike) -> list[tuple[bytes, bytes]]:
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    out = []
    for name, value in items:
        if isinstance(name, str):
            name = name.encode("latin-1")
        if isinstance(value, str):
            value = value.encode("latin-1")
        name = name.lower()
        if name in CONNECTION_SPECIFIC or name == b"host":
            continue   # RFC 9114 §4.2; Host is carried by :authority
        if name == b"te" and value.lower() != b"trailers":
            continue
        out.append((name, value))
    return out
