"""HTTP semantics on top of HTTP/3 field sections: building and checking
request and response headers.

Implements RFC 9114 §4.1.2 (malformed messages), §4.2 (lowercase field
names, connection-specific fields prohibited), §4.3.1 (request
pseudo-headers, with the CONNECT form of §4.4 and the extended CONNECT
`:protocol` of RFC 9220 §3) and §4.3.2 (response pseudo-headers).
A violation raises `MessageError`, which the caller turns into a reset of
the stream with H3_MESSAGE_ERROR.
"""

from __future__ import annotations

from typing import Optional

from .exceptions import MessageError

__all__ = ["Request", "check_request", "check_response", "CONNECTION_SPECIFIC"]

#: Fields that are connection-specific in HTTP/1.1 and malformed in HTTP/3 (RFC 9114 §4.2).
CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                 b"transfer-encoding", b"upgrade"})
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})


class Request:
    """A checked request head: pseudo-headers split from regular fields."""

    __slots__ = ("method", "scheme", "authority", "path", "protocol", "headers")

    def __init__(self, method: bytes, scheme: Optional[bytes], authority: Optional[bytes],
                 path: Optional[bytes], protocol: Optional[bytes], headers: list) -> None:
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.protocol = protocol
        self.headers = headers


def _check_regular(name: bytes, value: bytes) -> None:
    if name.lower() != name:
        raise MessageError(f"uppercase field name {name!r}")
    if name in CONNECTION_SPECIFIC:
        raise MessageError(f"connection-specific field {name!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise MessageError("TE other than trailers")
    if not name or b"\r" in value or b"\n" in value or b"\x00" in value:
        raise MessageError("invalid field")


def check_request(headers: list[tuple[bytes, bytes]], connect_protocol_enabled: bool = False) -> Request:
    """Split and check a request's field section (RFC 9114 §4.3.1)."""
    pseudo: dict[bytes, bytes] = {}
    regular = []
    for name, value in headers:
        if name.startswith(b":"):
            if regular:
                raise MessageError("pseudo-header after a regular field")
            if name not in _REQUEST_PSEUDO:
                raise MessageError(f"unknown pseudo-header {name!r}")
            if name in pseudo:
                raise MessageError(f"duplicate {name!r}")
            pseudo[name] = value
        else:
            _check_regular(name, value)
            regular.append((name, value))
    method = pseudo.get(b":method")
    if not method:
        raise MessageError("missing :method")
    protocol = pseudo.get(b":protocol")
    if protocol is not None and (method != b"CONNECT" or not connect_protocol_enabled):
        raise MessageError(":protocol without extended CONNECT")
    if method == b"CONNECT" and protocol is None:
        # RFC 9114 §4.4: only :method and :authority.
        if b":scheme" in pseudo or b":path" in pseudo or not pseudo.get(b":authority"):
            raise MessageError("malformed CONNECT")
    else:
        if not pseudo.get(b":scheme") or not pseudo.get(b":path"):
            raise MessageError("missing :scheme or :path")
        if pseudo[b":scheme"] in (b"http", b"https") and not (pseudo.get(b":authority") or _host(regular)):
            raise MessageError("missing :authority and Host")
    return Request(method, pseudo.get(b":scheme"), pseudo.get(b":authority") or _host(regular),
                   pseudo.get(b":path"), protocol, regular)


def check_response(headers: list[tuple[bytes, bytes]]) -> tuple[int, list]:
    """The status and regular fields of a response (RFC 9114 §4.3.2)."""
    status = None
    regular = []
    for name, value in headers:
        if name.startswith(b":"):
            if regular or name != b":status" or status is not None:
                raise MessageError(f"unexpected pseudo-header {name!r}")
            if len(value) != 3 or not value.isdigit():
                raise MessageError(f"invalid :status {value!r}")
            status = int(value)
        else:
            _check_regular(name, value)
            regular.append((name, value))
    if status is None:
        raise MessageError("missing :status")
    return status, regular


def check_trailers(headers: list[tuple[bytes, bytes]]) -> list:
    for name, value in headers:
        if name.startswith(b":"):
            raise MessageError("pseudo-header in trailers")
        _check_regular(name, value)
    return headers


def _host(regular) -> Optional[bytes]:
    for name, value in regular:
        if name == b"host":
            return value
    return None
