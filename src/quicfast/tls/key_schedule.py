"""The TLS 1.3 key schedule and transcript hash.

Implements RFC 8446 §7.1 (HKDF-Extract, HKDF-Expand-Label, Derive-Secret and
the early/handshake/master secret chain), §4.4.1 (transcript hash, including
the synthetic ``message_hash`` that replaces ClientHello1 after a
HelloRetryRequest), §4.4.4 (Finished verify_data), §4.2.11.2 (PSK binders)
§4.6.1 (resumption PSK from a ticket nonce) and §7.5 (exporter master
secret and TLS-Exporter). Checked bit for bit against RFC 8448 §3 and §4 in
tests/unit/tls/test_tls_key_schedule.py.

HMAC and HKDF-Expand-Label are the C ones of ``quicfast.proto.crypto``
(csrc/hkdf.c), which QUIC's packet keys use too: about a fifth of the cost
of ``hmac.digest`` (OpenSSL 3's one-shot HMAC looks the digest up by name
on every call) and a third of HMAC composed from hashlib calls.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from ..proto.crypto import hkdf_expand_label, hmac_digest

__all__ = [
    "CipherSuite",
    "CIPHER_SUITE_HASH",
    "KeySchedule",
    "Transcript",
    "hkdf_extract",
    "hkdf_expand_label",
]


class CipherSuite(IntEnum):
    """TLS 1.3 cipher suites usable with QUIC (RFC 8446 §B.4, RFC 9001 §5.3)."""

    AES_128_GCM_SHA256 = 0x1301
    AES_256_GCM_SHA384 = 0x1302
    CHACHA20_POLY1305_SHA256 = 0x1303


#: hashlib name of each suite's HKDF/transcript hash
CIPHER_SUITE_HASH: dict[int, str] = {
    CipherSuite.AES_128_GCM_SHA256: "sha256",
    CipherSuite.AES_256_GCM_SHA384: "sha384",
    CipherSuite.CHACHA20_POLY1305_SHA256: "sha256",
}

_HASH_LENGTH = {"sha256": 32, "sha384": 48}
_EMPTY_HASH = {name: hashlib.new(name).digest() for name in _HASH_LENGTH}


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) (RFC 5869 §2.2); an empty salt is HashLen zeros,
    which HMAC pads to the same key."""
    return hmac_digest(hash_name, salt, ikm)


_ZEROS = {name: bytes(length) for name, length in _HASH_LENGTH.items()}
_ZERO_EARLY_SECRET = {name: hmac_digest(name, _ZEROS[name], _ZEROS[name]) for name in _HASH_LENGTH}
_ZERO_EARLY_DERIVED = {
    name: hkdf_expand_label(name, _ZERO_EARLY_SECRET[name], b"derived", _EMPTY_HASH[name], length)
    for name, length in _HASH_LENGTH.items()
}


class Transcript:
    """The running transcript hash (RFC 8446 §4.4.1).

    Until the cipher suite (and so the hash) is known, messages are kept and
    hashed once :meth:`set_hash` is called. The digest is remembered until
    the next message: a handshake asks for the same transcript hash up to
    three times (Finished, application secrets, the peer's Finished).
    """

    __slots__ = ("hash_name", "_hash", "_pending", "_digest")

    def __init__(self, hash_name: str | None = None) -> None:
        self.hash_name = hash_name
        self._hash = hashlib.new(hash_name) if hash_name else None
        self._pending: list[bytes] = []
        self._digest: bytes | None = None

    def set_hash(self, hash_name: str) -> None:
        """Fix the hash algorithm and absorb any pending messages."""
        self.hash_name = hash_name
        self._hash = hashlib.new(hash_name)
        for message in self._pending:
            self._hash.update(message)
        self._pending = []
        self._digest = None

    def update(self, message: bytes) -> None:
        """Append one complete handshake message (header included)."""
        self._digest = None
        if self._hash is None:
            self._pending.append(message)
        else:
            self._hash.update(message)

    def digest(self) -> bytes:
        """Hash of every message so far."""
        if self._digest is None:
            self._digest = self._hash.copy().digest()
        return self._digest

    def digest_with(self, partial: bytes) -> bytes:
        """Hash of every message so far followed by ``partial`` (not recorded)."""
        h = self._hash.copy()
        h.update(partial)
        return h.digest()

    def restart_for_retry(self) -> None:
        """Replace ClientHello1 with ``message_hash`` (RFC 8446 §4.4.1)."""
        first_hello_hash = self._hash.digest()
        self._digest = None
        self._hash = hashlib.new(self.hash_name)
        self._hash.update(bytes((254, 0, 0, len(first_hello_hash))) + first_hello_hash)


class KeySchedule:
    """The secret chain of one connection for one cipher suite (RFC 8446 §7.1).

    Call in order: :meth:`extract` with the PSK (or ``None``), then
    :meth:`extract` with the (EC)DHE shared secret, then :meth:`extract` with
    ``None`` for the master secret; :meth:`derive_secret` between the steps.
    """

    __slots__ = ("cipher_suite", "hash_name", "hash_length", "secret", "generation")

    def __init__(self, cipher_suite: int) -> None:
        self.cipher_suite = CipherSuite(cipher_suite)
        self.hash_name = CIPHER_SUITE_HASH[cipher_suite]
        self.hash_length = _HASH_LENGTH[self.hash_name]
        #: the current early, handshake or master secret
        self.secret: bytes | None = None
        #: 0 before the early secret, then 1 (early), 2 (handshake), 3 (master)
        self.generation = 0

    def extract(self, ikm: bytes | None) -> bytes:
        """Advance to the next secret; ``None`` stands for a zero-filled key."""
        hash_name = self.hash_name
        self.generation += 1
        if ikm is None:
            if self.secret is None:
                # no PSK: the early secret is a per-hash constant
                self.secret = _ZERO_EARLY_SECRET[hash_name]
                return self.secret
            ikm = _ZEROS[hash_name]
        if self.secret is None:
            salt = _ZEROS[hash_name]
        elif self.secret is _ZERO_EARLY_SECRET[hash_name]:
            salt = _ZERO_EARLY_DERIVED[hash_name]
        else:
            salt = self.derive_secret(b"derived", _EMPTY_HASH[hash_name])
        self.secret = hmac_digest(hash_name, salt, ikm)
        return self.secret

    def derive_secret(self, label: bytes, transcript_hash: bytes) -> bytes:
        """Derive-Secret(current secret, label, messages) given their hash."""
        return hkdf_expand_label(
            self.hash_name, self.secret, label, transcript_hash, self.hash_length
        )

    def finished_verify_data(self, base_key: bytes, transcript_hash: bytes) -> bytes:
        """Finished.verify_data for ``base_key`` (RFC 8446 §4.4.4)."""
        finished_key = hkdf_expand_label(
            self.hash_name, base_key, b"finished", b"", self.hash_length
        )
        return hmac_digest(self.hash_name, finished_key, transcript_hash)

    def binder(self, is_external: bool, truncated_hello_hash: bytes) -> bytes:
        """PSK binder over a truncated ClientHello (RFC 8446 §4.2.11.2).

        Must be called right after the early-secret :meth:`extract`.
        """
        label = b"ext binder" if is_external else b"res binder"
        binder_key = self.derive_secret(label, _EMPTY_HASH[self.hash_name])
        return self.finished_verify_data(binder_key, truncated_hello_hash)

    def resumption_psk(self, resumption_master_secret: bytes, ticket_nonce: bytes) -> bytes:
        """The PSK for a ticket (RFC 8446 §4.6.1)."""
        return hkdf_expand_label(
            self.hash_name, resumption_master_secret, b"resumption", ticket_nonce,
            self.hash_length,
        )

    def exporter_master_secret(self, transcript_hash: bytes) -> bytes:
        """exporter_master_secret (RFC 8446 §7.1) given the hash of the
        transcript through the server's Finished; call after the master
        secret :meth:`extract`."""
        return self.derive_secret(b"exp master", transcript_hash)

    def export(self, exporter_secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter(label, context_value, key_length) (RFC 8446 §7.5).

        :raises ValueError: if ``label`` is longer than 249 bytes (HkdfLabel
            allows 255 with the ``"tls13 "`` prefix) or ``length`` is not
            between 0 and 255 hash lengths (RFC 5869 §2.3).
        """
        if len(label) > 249:
            raise ValueError("exporter label longer than 249 bytes")
        if not 0 <= length <= 255 * self.hash_length:
            raise ValueError(f"exporter length must be 0..{255 * self.hash_length}")
        hash_name = self.hash_name
        secret = hkdf_expand_label(
            hash_name, exporter_secret, label, _EMPTY_HASH[hash_name], self.hash_length
        )
        context_hash = hashlib.new(hash_name, context).digest()
        return hkdf_expand_label(hash_name, secret, b"exporter", context_hash, length)

    def empty_hash(self) -> bytes:
        """Hash of the empty string for this suite."""
        return _EMPTY_HASH[self.hash_name]
