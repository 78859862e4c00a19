"""Endpoint decisions for datagrams that belong to no connection, sans I/O.

Implements RFC 9000 §8.1.2–8.1.4 (address validation tokens: Retry and
NEW_TOKEN), §17.2.5 (Retry packets, with RFC 9001 §5.8 integrity tags for v1
and v2), §6 (Version Negotiation) and §10.3 (stateless resets: when to send
one, how to build it, rate limiting).

The asyncio `Transport` owns the socket and the routing table; for a datagram
whose destination CID it does not know it asks `Endpoint.classify()` what to
do, and gets back one of the `Decision` values below. Time is a float
(seconds) passed in by the caller.

Token format (opaque to clients): one kind byte (`R` for Retry, `N` for
NEW_TOKEN), a 12-byte nonce, then AES-128-GCM over (issue time as a 64-bit
millisecond count, the original DCID, the Retry SCID) with the client's
address as associated data (IP and port for Retry tokens, IP only for
NEW_TOKEN ones, which later connections present from new ports), so a token
only validates the address it was issued to.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import os
import struct
from dataclasses import dataclass
from typing import Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import crypto
from .packet import encode_retry, encode_version_negotiation

__all__ = ["Decision", "Endpoint", "TokenCodec", "ValidatedToken", "build_stateless_reset"]

#: RFC 9000 §10.3: a stateless reset must look like a short-header packet of at least 21 bytes.
MIN_STATELESS_RESET_SIZE = 21
#: Stateless resets sent per second at most (RFC 9000 §10.3.3 asks for a limit).
STATELESS_RESETS_PER_SECOND = 100
#: Version Negotiation packets sent per second at most.
VERSION_NEGOTIATIONS_PER_SECOND = 100


class Decision(enum.Enum):
    """What to do with a datagram for no known connection."""

    #: Create a server connection for this client Initial.
    ACCEPT = "accept"
    #: Answer with `reply` (Retry, Version Negotiation or stateless reset) and create nothing.
    REPLY = "reply"
    #: Drop it silently.
    DROP = "drop"


@dataclass(frozen=True)
class ValidatedToken:
    """A token that validated the client's address."""

    #: retry is True for a Retry token, False for a NEW_TOKEN one.
    retry: bool
    #: original_dcid is the client's first DCID (Retry tokens only).
    original_dcid: bytes
    #: retry_scid is the SCID our Retry carried (Retry tokens only).
    retry_scid: bytes


@functools.lru_cache(maxsize=1024)
def _packed_host(host: str) -> bytes:
    # Parsing an address costs about 3 us; a server sees the same hosts again.
    try:
        return ipaddress.ip_address(host.split("%")[0]).packed
    except ValueError:
        return host.encode()


def _address_bytes(addr, with_port: bool) -> bytes:
    packed = _packed_host(addr[0])
    return packed + struct.pack("!H", addr[1]) if with_port else packed


class TokenCodec:
    """Seals and opens address-validation tokens with a 32-byte key."""

    def __init__(self, key: bytes, max_age: float) -> None:
        if len(key) < 16:
            raise ValueError("token_generator_key must be at least 16 bytes")
        self._aead = AESGCM(crypto.hkdf_expand_label("sha256", key[:32].ljust(32, b"\0"), b"token", b"", 16))
        self.max_age = max_age

    def issue(self, addr, now: float, *, original_dcid: bytes = b"", retry_scid: bytes = b"") -> bytes:
        kind = b"R" if original_dcid else b"N"
        nonce = os.urandom(12)
        body = struct.pack("!QB", int(now * 1000), len(original_dcid)) + original_dcid + retry_scid
        # A Retry token is for this exact 4-tuple; a NEW_TOKEN one is used by a
        # later connection, usually from another port, so it binds the IP only.
        return kind + nonce + self._aead.encrypt(nonce, body, kind + _address_bytes(addr, kind == b"R"))

    def validate(self, token: bytes, addr, now: float) -> Optional[ValidatedToken]:
        """The token's contents when it is ours, intact, issued to `addr` and
        not older than max_age (Retry tokens: 10 s at most, RFC 9000 §8.1.3); else None."""
        if len(token) < 1 + 12 + 16 + 9 or token[:1] not in (b"R", b"N"):
            return None
        kind = token[:1]
        try:
            body = self._aead.decrypt(token[1:13], token[13:], kind + _address_bytes(addr, kind == b"R"))
        except Exception:
            return None
        issued_ms, odcid_len = struct.unpack("!QB", body[:9])
        age = now - issued_ms / 1000.0
        max_age = min(self.max_age, 10.0) if kind == b"R" else self.max_age
        if age < -1.0 or age > max_age or len(body) < 9 + odcid_len:
            return None
        return ValidatedToken(kind == b"R", body[9:9 + odcid_len], body[9 + odcid_len:])


def build_stateless_reset(token: bytes, trigger_length: int) -> Optional[bytes]:
    """A stateless reset (RFC 9000 §10.3) smaller than the packet that
    triggered it, or None when that packet is too small to answer (§10.3.3)."""
    size = min(trigger_length - 1, 43)
    if size < MIN_STATELESS_RESET_SIZE:
        return None
    head = bytearray(os.urandom(size - 16))
    head[0] = 0x40 | (head[0] & 0x3F)
    return bytes(head) + token


class _RateLimiter:
    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.window = -1
        self.count = 0

    def allow(self, now: float) -> bool:
        window = int(now)
        if window != self.window:
            self.window, self.count = window, 0
        self.count += 1
        return self.count <= self.per_second


class Endpoint:
    """Stateless decisions of one UDP endpoint (quinn-proto's `Endpoint::handle`).

    :param cid_length: length of the CIDs we issue.
    :param stateless_reset_key: key our reset tokens derive from.
    :param token_key: key for address-validation tokens.
    """

    def __init__(self, cid_length: int, stateless_reset_key: bytes, token_key: bytes, max_token_age: float,
                 disable_version_negotiation: bool = False) -> None:
        self.cid_length = cid_length
        self.stateless_reset_key = stateless_reset_key
        self.tokens = TokenCodec(token_key, max_token_age)
        self.disable_version_negotiation = disable_version_negotiation
        self._resets = _RateLimiter(STATELESS_RESETS_PER_SECOND)
        self._negotiations = _RateLimiter(VERSION_NEGOTIATIONS_PER_SECOND)

    def reset_token(self, cid: bytes) -> bytes:
        return crypto.stateless_reset_token(self.stateless_reset_key, cid)

    def on_unknown_short(self, data: bytes, now: float) -> Optional[bytes]:
        """A short-header datagram for an unknown CID: maybe a stateless reset to send."""
        if self.cid_length == 0 or len(data) < 1 + self.cid_length or not self._resets.allow(now):
            return None
        return build_stateless_reset(self.reset_token(bytes(data[1:1 + self.cid_length])), len(data))

    def on_unsupported_version(self, header, versions, datagram_length: int, now: float) -> Optional[bytes]:
        """A long header with a version we do not speak: Version Negotiation (RFC 9000 §6.1)."""
        if self.disable_version_negotiation or header.version == 0 or datagram_length < 1200:
            return None
        if not self._negotiations.allow(now):
            return None
        return encode_version_negotiation(header.dcid, header.scid, versions)

    def retry(self, header, addr, now: float) -> bytes:
        """A Retry packet for this client Initial (RFC 9000 §8.1.2)."""
        new_scid = os.urandom(self.cid_length or 8)   # becomes our CID: it must route
        token = self.tokens.issue(addr, now, original_dcid=header.dcid, retry_scid=new_scid)
        return encode_retry(header.version, header.scid, new_scid, header.dcid, token, crypto.retry_integrity_tag)

    def new_token(self, addr, now: float) -> bytes:
        """A token for a NEW_TOKEN frame, valid for later connections from `addr`."""
        return self.tokens.issue(addr, now)
