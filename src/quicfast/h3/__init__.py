"""quicfast.h3: HTTP/3 (RFC 9114) with QPACK (RFC 9204, via pylsqpack) over
quicfast connections — a client with connection reuse, an httpx transport,
an ASGI 3 server and a static-file app.

Modules: `frames` (RFC 9114 §7 codec), `connection` (control and QPACK
streams, request streams, GOAWAY, HTTP Datagrams), `messages` (§4.1–4.3
header checks), `client`, `server`, `static`, `httpx_transport`.
"""

from .client import Client, Headers, Response
from .connection import ALPN, H3Connection, H3Settings, RequestStream
from .exceptions import (
    FrameError, GoAwayError, H3ConnectionError, H3Error, H3StreamError, MessageError, RequestCancelled,
)
from .server import Server, serve
from .static import StaticFiles
from . import frames, messages  # noqa: E402  (submodules used by callers)

__all__ = [
    "ALPN", "Client", "FrameError", "GoAwayError", "H3Connection", "H3ConnectionError", "H3Error",
    "H3Settings", "H3StreamError", "HTTPXTransport", "Headers", "MessageError", "RequestCancelled",
    "RequestStream", "Response", "Server", "StaticFiles", "serve",
]


def __getattr__(name):
    # httpx is optional: import the transport only when asked for.
    if name == "HTTPXTransport":
        from .httpx_transport import HTTPXTransport
        return HTTPXTransport
    raise AttributeError(name)
