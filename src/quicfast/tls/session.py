"""Session tickets: the client's ticket record and store, the server's ticket
encryption keys and 0-RTT anti-replay memory.

Implements RFC 8446 §4.6.1 (NewSessionTicket contents, lifetime limit of
7 days, ticket_age_add), §4.2.11.1 (obfuscated ticket age), §8 (0-RTT
anti-replay: single-use tickets within a bounded window plus a freshness
check on the ticket age) and RFC 9001 §4.6 (0-RTT over QUIC; the engine keeps
the server's transport parameters in ``SessionTicket.other_data``).

Server tickets are self-contained: the resumption state is sealed with
AES-256-GCM under a rotating ticket key; the previous key is still accepted
so tickets issued just before a rotation remain usable.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .key_schedule import CipherSuite

__all__ = [
    "SessionTicket",
    "SessionTicketStore",
    "TicketKeyring",
    "ServerTicketState",
    "AntiReplayCache",
    "MAX_TICKET_LIFETIME",
]

#: RFC 8446 §4.6.1: ticket_lifetime MUST NOT exceed 7 days.
MAX_TICKET_LIFETIME = 604800


def _pack_str(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    data = value.encode("utf-8")
    return b"\x01" + struct.pack("!H", len(data)) + data


_SUITE_SECRET = struct.Struct("!HB")
_STATE_TIMES = struct.Struct("!dIII")
_UINT16 = struct.Struct("!H")
_UINT32 = struct.Struct("!I")


def _unpack_str(data: bytes, pos: int) -> tuple[str | None, int]:
    """Read a :func:`_pack_str` value at ``pos``; returns it and the next offset."""
    if data[pos] == 0:
        return None, pos + 1
    if data[pos] != 1:
        raise ValueError("malformed session data")
    (length,) = _UINT16.unpack_from(data, pos + 1)
    start = pos + 3
    value = data[start : start + length]
    if len(value) != length:
        raise ValueError("truncated session data")
    return value.decode("utf-8"), start + length


class _Unpacker:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated session data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def blob(self, fmt: str = "!I") -> bytes:
        (length,) = self.unpack(fmt)
        return self.take(length)

    def string(self) -> str | None:
        if self.take(1) == b"\x00":
            return None
        return self.blob("!H").decode("utf-8")

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes in session data")


@dataclass
class SessionTicket:
    """A ticket received by a client, enough to resume (and maybe send 0-RTT).

    Times are in the units of ``TLSConfig.clock`` (seconds since the epoch by
    default).
    """

    #: the opaque ticket (PSK identity) sent back to the server
    ticket: bytes
    #: server name the ticket was issued for
    server_name: str | None
    #: cipher suite of the connection that issued the ticket
    cipher_suite: CipherSuite
    #: the resumption PSK (RFC 8446 §4.6.1)
    resumption_secret: bytes
    #: ticket_age_add (RFC 8446 §4.6.1)
    age_add: int
    #: ticket_lifetime in seconds
    lifetime: int
    #: when the ticket was received
    not_valid_before: float
    #: when the ticket stops being usable (received + lifetime)
    not_valid_after: float
    #: max_early_data_size, 0 if the server does not accept 0-RTT
    max_early_data: int = 0
    #: ALPN protocol of the issuing connection
    alpn: str | None = None
    #: opaque engine data: the server's transport parameters (RFC 9000 §7.4.1)
    other_data: bytes = b""

    @property
    def psk(self) -> bytes:
        """Alias of :attr:`resumption_secret`."""
        return self.resumption_secret

    def obfuscated_age(self, now: float) -> int:
        """obfuscated_ticket_age for a ClientHello sent at ``now``."""
        age_ms = max(0, int((now - self.not_valid_before) * 1000))
        return (age_ms + self.age_add) & 0xFFFFFFFF

    def is_valid(self, now: float) -> bool:
        """True if the ticket is still within its lifetime at ``now``."""
        return self.not_valid_before <= now < self.not_valid_after

    def to_bytes(self) -> bytes:
        """Serialize for storage; see :meth:`from_bytes`."""
        return b"".join(
            (
                b"\x01",
                struct.pack("!I", len(self.ticket)),
                self.ticket,
                _pack_str(self.server_name),
                struct.pack("!HB", int(self.cipher_suite), len(self.resumption_secret)),
                self.resumption_secret,
                struct.pack(
                    "!IIddI",
                    self.age_add,
                    self.lifetime,
                    self.not_valid_before,
                    self.not_valid_after,
                    self.max_early_data,
                ),
                _pack_str(self.alpn),
                struct.pack("!I", len(self.other_data)),
                self.other_data,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "SessionTicket":
        """Parse :meth:`to_bytes` output; raises ValueError if malformed."""
        reader = _Unpacker(bytes(data))
        if reader.take(1) != b"\x01":
            raise ValueError("unknown session ticket format")
        ticket = reader.blob()
        server_name = reader.string()
        suite, secret_length = reader.unpack("!HB")
        secret = reader.take(secret_length)
        age_add, lifetime, not_before, not_after, max_early = reader.unpack("!IIddI")
        alpn = reader.string()
        other_data = reader.blob()
        reader.finish()
        return cls(
            ticket=ticket,
            server_name=server_name,
            cipher_suite=CipherSuite(suite),
            resumption_secret=secret,
            age_add=age_add,
            lifetime=lifetime,
            not_valid_before=not_before,
            not_valid_after=not_after,
            max_early_data=max_early,
            alpn=alpn,
            other_data=other_data,
        )


class SessionTicketStore:
    """Client-side ticket cache keyed by server name.

    Tickets are single use (RFC 8446 §C.4): :meth:`pop` removes the ticket it
    returns. The store keeps at most ``max_per_server`` tickets per name and
    ``max_servers`` names (least recently added dropped first).
    """

    def __init__(self, max_per_server: int = 4, max_servers: int = 1024) -> None:
        self.max_per_server = max_per_server
        self.max_servers = max_servers
        self._tickets: OrderedDict[str | None, list[SessionTicket]] = OrderedDict()

    def add(self, ticket: SessionTicket) -> None:
        """Remember ``ticket`` (the newest is used first)."""
        tickets = self._tickets.pop(ticket.server_name, [])
        tickets.append(ticket)
        del tickets[: -self.max_per_server]
        self._tickets[ticket.server_name] = tickets
        while len(self._tickets) > self.max_servers:
            self._tickets.popitem(last=False)

    def pop(self, server_name: str | None, now: float) -> SessionTicket | None:
        """Remove and return the newest valid ticket for ``server_name``."""
        tickets = self._tickets.get(server_name)
        while tickets:
            ticket = tickets.pop()
            if ticket.is_valid(now):
                if not tickets:
                    del self._tickets[server_name]
                return ticket
        self._tickets.pop(server_name, None)
        return None

    def __len__(self) -> int:
        return sum(len(t) for t in self._tickets.values())


@dataclass
class ServerTicketState:
    """What a server seals into a ticket to resume a connection."""

    cipher_suite: int
    resumption_secret: bytes
    issued_at: float
    age_add: int
    lifetime: int
    max_early_data: int
    alpn: str | None
    server_name: str | None
    app_data: bytes = b""
    ticket_id: bytes = field(default_factory=lambda: os.urandom(16))

    def to_bytes(self) -> bytes:
        """Serialize (before sealing)."""
        return b"".join(
            (
                struct.pack("!HB", self.cipher_suite, len(self.resumption_secret)),
                self.resumption_secret,
                struct.pack("!dIII", self.issued_at, self.age_add, self.lifetime,
                            self.max_early_data),
                _pack_str(self.alpn),
                _pack_str(self.server_name),
                struct.pack("!I", len(self.app_data)),
                self.app_data,
                self.ticket_id,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "ServerTicketState":
        """Parse :meth:`to_bytes` output; raises ValueError if malformed.

        Runs on every resumption, so it unpacks with precompiled structs at
        known offsets rather than through :class:`_Unpacker`.
        """
        try:
            suite, secret_length = _SUITE_SECRET.unpack_from(data, 0)
            pos = _SUITE_SECRET.size + secret_length
            secret = data[_SUITE_SECRET.size : pos]
            issued_at, age_add, lifetime, max_early = _STATE_TIMES.unpack_from(data, pos)
            alpn, pos = _unpack_str(data, pos + _STATE_TIMES.size)
            server_name, pos = _unpack_str(data, pos)
            (app_length,) = _UINT32.unpack_from(data, pos)
            pos += 4
            app_data = data[pos : pos + app_length]
            ticket_id = data[pos + app_length :]
        except (struct.error, IndexError, UnicodeDecodeError):
            raise ValueError("truncated session data") from None
        if len(secret) != secret_length or len(app_data) != app_length or len(ticket_id) != 16:
            raise ValueError("malformed session data")
        return cls(suite, secret, issued_at, age_add, lifetime, max_early, alpn,
                   server_name, app_data, ticket_id)


class TicketKeyring:
    """Seals and opens server tickets with a rotating AES-256-GCM key.

    Ticket layout: key id (8) || nonce (12) || AES-GCM(state, aad=key id).
    A key is used for ``rotation_interval`` seconds; the previous key is
    still accepted, so a ticket opens for up to twice that interval (cap it
    with the ticket lifetime).
    """

    _KEY_ID_LENGTH = 8

    def __init__(self, clock: Callable[[], float], rotation_interval: float = 86400.0) -> None:
        self.clock = clock
        self.rotation_interval = rotation_interval
        self._current: tuple[bytes, AESGCM, float] | None = None
        self._previous: tuple[bytes, AESGCM, float] | None = None

    def rotate(self) -> None:
        """Start a new key now; the current one becomes the previous one."""
        self._previous = self._current
        self._current = (
            os.urandom(self._KEY_ID_LENGTH),
            AESGCM(AESGCM.generate_key(256)),
            self.clock(),
        )

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` into a ticket."""
        if self._current is None or self.clock() - self._current[2] >= self.rotation_interval:
            self.rotate()
        key_id, aead, _ = self._current
        nonce = os.urandom(12)
        return key_id + nonce + aead.encrypt(nonce, plaintext, key_id)

    def open(self, ticket: bytes) -> bytes | None:
        """Decrypt a ticket, or ``None`` if no current key opens it."""
        key_id = ticket[: self._KEY_ID_LENGTH]
        for entry in (self._current, self._previous):
            if entry is not None and entry[0] == key_id:
                nonce = ticket[self._KEY_ID_LENGTH : self._KEY_ID_LENGTH + 12]
                try:
                    return entry[1].decrypt(nonce, ticket[self._KEY_ID_LENGTH + 12 :], key_id)
                except (InvalidTag, ValueError):
                    return None
        return None


class AntiReplayCache:
    """Remembers tickets already used for 0-RTT (RFC 8446 §8.1).

    Holds at most ``max_entries`` ticket ids, each until its ticket expires.
    When full, further 0-RTT is refused (fail safe) until entries expire.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def _purge(self, now: float) -> None:
        seen = self._seen
        while seen:
            ticket_id, expires = next(iter(seen.items()))
            if expires > now:
                break
            del seen[ticket_id]

    def check_and_record(self, ticket_id: bytes, expires: float, now: float) -> bool:
        """True the first time ``ticket_id`` is presented; records it."""
        self._purge(now)
        if ticket_id in self._seen or len(self._seen) >= self.max_entries:
            return False
        self._seen[ticket_id] = expires
        return True

    def __len__(self) -> int:
        return len(self._seen)
