"""Key exchange groups: (EC)DHE and the X25519MLKEM768 hybrid KEM.

Implements RFC 8446 §4.2.7-§4.2.8 and §7.4 (key_share formats and shared
secrets for x25519, secp256r1, secp384r1; X9.62 uncompressed points) and
draft-ietf-tls-ecdhe-mlkem (X25519MLKEM768 = 0x11EC: the client share is
the ML-KEM-768 encapsulation key followed by the X25519 public key, the
server share is the ML-KEM ciphertext followed by the X25519 public key, and
the shared secret is the ML-KEM shared secret followed by the X25519 one).

A malformed or invalid peer share raises ``AlertError(illegal_parameter)``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .alerts import AlertDescription, AlertError

__all__ = ["Group", "KeyShare", "server_key_exchange"]


class Group(IntEnum):
    """NamedGroup values we support (RFC 8446 §4.2.7, draft-ietf-tls-ecdhe-mlkem)."""

    SECP256R1 = 0x0017
    SECP384R1 = 0x0018
    X25519 = 0x001D
    X25519MLKEM768 = 0x11EC


_CURVES = {Group.SECP256R1: ec.SECP256R1(), Group.SECP384R1: ec.SECP384R1()}
_EC_SHARE_LENGTH = {Group.SECP256R1: 65, Group.SECP384R1: 97}
_MLKEM768_EK_LENGTH = 1184
_MLKEM768_CT_LENGTH = 1088
_X25519_LENGTH = 32
_RAW = (Encoding.Raw, PublicFormat.Raw)
_X962 = (Encoding.X962, PublicFormat.UncompressedPoint)


def _illegal(message: str) -> AlertError:
    return AlertError(AlertDescription.illegal_parameter, message)


def _x25519_exchange(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    if len(peer) != _X25519_LENGTH:
        raise _illegal("x25519 key share has the wrong length")
    try:
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # all-zero output: a low-order point (RFC 8446 §7.4.2)
        raise _illegal("x25519 key share is a low-order point") from None


def _ec_exchange(group: Group, private: ec.EllipticCurvePrivateKey, peer: bytes) -> bytes:
    if len(peer) != _EC_SHARE_LENGTH[group] or peer[0] != 4:
        raise _illegal(f"{group.name} key share is not an uncompressed point")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[group], peer)
        return private.exchange(ec.ECDH(), public)
    except ValueError:
        raise _illegal(f"{group.name} key share is not on the curve") from None


class KeyShare:
    """The client's ephemeral private key(s) for one group.

    ``public`` is the KeyShareEntry.key_exchange to send. ``x25519`` may pass
    the X25519 private key of another share of the same ClientHello: an
    X25519 share and the X25519 half of an X25519MLKEM768 share may be the
    same key (draft-ietf-tls-hybrid-design §3.2 allows reusing a component
    share across the groups offered in one ClientHello; only one of them is
    ever used), which saves one key generation per handshake.
    """

    __slots__ = ("group", "public", "_private", "_x25519")

    def __init__(self, group: int, x25519_key: x25519.X25519PrivateKey | None = None) -> None:
        self.group = Group(group)
        self._x25519: Any = None
        if group == Group.X25519:
            self._private: Any = x25519_key or x25519.X25519PrivateKey.generate()
            self.public = self._private.public_key().public_bytes(*_RAW)
        elif group == Group.X25519MLKEM768:
            self._private = mlkem.MLKEM768PrivateKey.generate()
            self._x25519 = x25519_key or x25519.X25519PrivateKey.generate()
            self.public = (
                self._private.public_key().public_bytes_raw()
                + self._x25519.public_key().public_bytes(*_RAW)
            )
        else:
            self._private = ec.generate_private_key(_CURVES[self.group])
            self.public = self._private.public_key().public_bytes(*_X962)

    @property
    def x25519_key(self) -> x25519.X25519PrivateKey | None:
        """The X25519 private key in this share (X25519 or its hybrid), else None."""
        return self._private if self.group == Group.X25519 else self._x25519

    def exchange(self, server_share: bytes) -> bytes:
        """The shared secret given the server's KeyShareEntry.key_exchange."""
        group = self.group
        if group == Group.X25519:
            return _x25519_exchange(self._private, server_share)
        if group == Group.X25519MLKEM768:
            if len(server_share) != _MLKEM768_CT_LENGTH + _X25519_LENGTH:
                raise _illegal("X25519MLKEM768 key share has the wrong length")
            try:
                kem_secret = self._private.decapsulate(server_share[:_MLKEM768_CT_LENGTH])
            except ValueError:
                raise _illegal("X25519MLKEM768 ciphertext is invalid") from None
            return kem_secret + _x25519_exchange(
                self._x25519, server_share[_MLKEM768_CT_LENGTH:]
            )
        return _ec_exchange(group, self._private, server_share)


def server_key_exchange(group: int, client_share: bytes) -> tuple[bytes, bytes]:
    """Respond to a client's share: returns ``(server_share, shared_secret)``."""
    if group == Group.X25519:
        private = x25519.X25519PrivateKey.generate()
        return private.public_key().public_bytes(*_RAW), _x25519_exchange(private, client_share)
    if group == Group.X25519MLKEM768:
        if len(client_share) != _MLKEM768_EK_LENGTH + _X25519_LENGTH:
            raise _illegal("X25519MLKEM768 key share has the wrong length")
        try:
            encapsulation_key = mlkem.MLKEM768PublicKey.from_public_bytes(
                client_share[:_MLKEM768_EK_LENGTH]
            )
            kem_secret, ciphertext = encapsulation_key.encapsulate()
        except ValueError:
            raise _illegal("X25519MLKEM768 encapsulation key is invalid") from None
        private = x25519.X25519PrivateKey.generate()
        ecdh_secret = _x25519_exchange(private, client_share[_MLKEM768_EK_LENGTH:])
        return (
            ciphertext + private.public_key().public_bytes(*_RAW),
            kem_secret + ecdh_secret,
        )
    group = Group(group)
    private = ec.generate_private_key(_CURVES[group])
    secret = _ec_exchange(group, private, client_share)
    return private.public_key().public_bytes(*_X962), secret
