"""Signature schemes for CertificateVerify.

Implements RFC 8446 §4.2.3 (SignatureScheme values: ECDSA with P-256/P-384,
RSASSA-PSS with rsaEncryption and RSASSA-PSS keys, Ed25519) and §4.4.3 (the
signed content: 64 spaces, a context string, a zero byte, the transcript
hash).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .alerts import AlertDescription, AlertError

__all__ = [
    "SignatureScheme",
    "DEFAULT_SIGNATURE_SCHEMES",
    "schemes_for_key",
    "sign",
    "verify",
    "certificate_verify_content",
    "SERVER_CONTEXT",
    "CLIENT_CONTEXT",
]


class SignatureScheme(IntEnum):
    """SignatureScheme values we sign and verify (RFC 8446 §4.2.3)."""

    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    RSA_PSS_RSAE_SHA256 = 0x0804
    RSA_PSS_RSAE_SHA384 = 0x0805
    RSA_PSS_RSAE_SHA512 = 0x0806
    ED25519 = 0x0807
    RSA_PSS_PSS_SHA256 = 0x0809
    RSA_PSS_PSS_SHA384 = 0x080A
    RSA_PSS_PSS_SHA512 = 0x080B


#: what we offer in signature_algorithms, most preferred first
DEFAULT_SIGNATURE_SCHEMES: list[int] = [
    SignatureScheme.ECDSA_SECP256R1_SHA256,
    SignatureScheme.ED25519,
    SignatureScheme.RSA_PSS_RSAE_SHA256,
    SignatureScheme.ECDSA_SECP384R1_SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA512,
    SignatureScheme.RSA_PSS_PSS_SHA256,
    SignatureScheme.RSA_PSS_PSS_SHA384,
    SignatureScheme.RSA_PSS_PSS_SHA512,
]

SERVER_CONTEXT = b"TLS 1.3, server CertificateVerify"
CLIENT_CONTEXT = b"TLS 1.3, client CertificateVerify"

_RSA_HASH = {
    SignatureScheme.RSA_PSS_RSAE_SHA256: hashes.SHA256,
    SignatureScheme.RSA_PSS_RSAE_SHA384: hashes.SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA512: hashes.SHA512,
    SignatureScheme.RSA_PSS_PSS_SHA256: hashes.SHA256,
    SignatureScheme.RSA_PSS_PSS_SHA384: hashes.SHA384,
    SignatureScheme.RSA_PSS_PSS_SHA512: hashes.SHA512,
}
_RSAE = (
    SignatureScheme.RSA_PSS_RSAE_SHA256,
    SignatureScheme.RSA_PSS_RSAE_SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA512,
)
_RSA_PSS = (
    SignatureScheme.RSA_PSS_PSS_SHA256,
    SignatureScheme.RSA_PSS_PSS_SHA384,
    SignatureScheme.RSA_PSS_PSS_SHA512,
)
_ECDSA_CURVE_SCHEME = {
    "secp256r1": SignatureScheme.ECDSA_SECP256R1_SHA256,
    "secp384r1": SignatureScheme.ECDSA_SECP384R1_SHA384,
}
_ECDSA_HASH = {
    SignatureScheme.ECDSA_SECP256R1_SHA256: (hashes.SHA256, "secp256r1"),
    SignatureScheme.ECDSA_SECP384R1_SHA384: (hashes.SHA384, "secp384r1"),
}


def certificate_verify_content(context: bytes, transcript_hash: bytes) -> bytes:
    """The octets signed in CertificateVerify (RFC 8446 §4.4.3)."""
    return b" " * 64 + context + b"\x00" + transcript_hash


def schemes_for_key(key: Any, pss_key: bool = False) -> tuple[int, ...]:
    """Signature schemes a private or public ``key`` can produce/verify.

    ``pss_key`` says the certificate's key is an id-RSASSA-PSS key, which
    can only be used with the rsa_pss_pss_* schemes (RFC 8446 §4.2.3).
    """
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        scheme = _ECDSA_CURVE_SCHEME.get(key.curve.name)
        return (scheme,) if scheme else ()
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return (SignatureScheme.ED25519,)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return _RSA_PSS if pss_key else _RSAE
    return ()


def _pss(hash_cls: Any) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)


def sign(private_key: Any, scheme: int, data: bytes) -> bytes:
    """Sign ``data`` with ``scheme``."""
    if scheme in _RSA_HASH:
        hash_cls = _RSA_HASH[scheme]
        return private_key.sign(data, _pss(hash_cls), hash_cls())
    if scheme == SignatureScheme.ED25519:
        return private_key.sign(data)
    hash_cls, _ = _ECDSA_HASH[scheme]
    return private_key.sign(data, ec.ECDSA(hash_cls()))


def verify(public_key: Any, scheme: int, signature: bytes, data: bytes) -> None:
    """Verify a CertificateVerify signature; failure -> decrypt_error."""
    try:
        if scheme in _RSA_HASH and isinstance(public_key, rsa.RSAPublicKey):
            hash_cls = _RSA_HASH[scheme]
            public_key.verify(signature, data, _pss(hash_cls), hash_cls())
        elif scheme == SignatureScheme.ED25519 and isinstance(
            public_key, ed25519.Ed25519PublicKey
        ):
            public_key.verify(signature, data)
        elif scheme in _ECDSA_HASH and isinstance(public_key, ec.EllipticCurvePublicKey):
            hash_cls, curve = _ECDSA_HASH[scheme]
            if public_key.curve.name != curve:
                raise AlertError(
                    AlertDescription.illegal_parameter,
                    f"signature scheme {scheme:#06x} does not match the certificate's curve",
                )
            public_key.verify(signature, data, ec.ECDSA(hash_cls()))
        else:
            raise AlertError(
                AlertDescription.illegal_parameter,
                f"signature scheme {scheme:#06x} does not match the certificate key",
            )
    except InvalidSignature:
        raise AlertError(
            AlertDescription.decrypt_error, "bad CertificateVerify signature"
        ) from None
