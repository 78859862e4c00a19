"""Signature schemes for CertificateVerify.

Implements RFC 8446 §4.2.3 (SignatureScheme values: ECDSA with P-256/P-384,
RSASSA-PSS with rsaEncryption and RSASSA-PSS keys, Ed25519) and §4.4.3 (the
signed content: 64 spaces, a context string, a zero byte, the transcript
hash).

RSA keys: a certificate whose key is rsaEncryption signs only with the
rsa_pss_rsae_* schemes, one whose key is id-RSASSA-PSS only with the
rsa_pss_pss_* schemes (RFC 8446 §4.2.3). ``cryptography`` loads both as
plain RSA keys, so the certificate's SubjectPublicKeyInfo decides; if an
id-RSASSA-PSS key carries RSASSA-PSS-params, only the scheme of their hash
is allowed (RFC 4055 §3.1; an absent hashAlgorithm means SHA-1, which no
TLS 1.3 scheme uses).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import PublicKeyAlgorithmOID

from .alerts import AlertDescription, AlertError

__all__ = [
    "SignatureScheme",
    "DEFAULT_SIGNATURE_SCHEMES",
    "schemes_for_key",
    "schemes_for_certificate",
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
#: scheme -> (signature algorithm, curve name); the algorithm objects are
#: immutable, so one serves every handshake (making one costs about 1.4 us)
_ECDSA_HASH = {
    SignatureScheme.ECDSA_SECP256R1_SHA256: (ec.ECDSA(hashes.SHA256()), "secp256r1"),
    SignatureScheme.ECDSA_SECP384R1_SHA384: (ec.ECDSA(hashes.SHA384()), "secp384r1"),
}


def certificate_verify_content(context: bytes, transcript_hash: bytes) -> bytes:
    """The octets signed in CertificateVerify (RFC 8446 §4.4.3)."""
    return b" " * 64 + context + b"\x00" + transcript_hash


def schemes_for_key(key: Any) -> tuple[int, ...]:
    """Signature schemes a private or public ``key`` can produce/verify.

    An RSA key is taken as rsaEncryption (rsa_pss_rsae_*); use
    :func:`schemes_for_certificate` when the certificate is known.
    """
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        scheme = _ECDSA_CURVE_SCHEME.get(key.curve.name)
        return (scheme,) if scheme else ()
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return (SignatureScheme.ED25519,)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return _RSAE
    return ()


# DER contents of the SHA-2 OIDs (2.16.840.1.101.3.4.2.1-3) in
# RSASSA-PSS-params.hashAlgorithm, and the one scheme each allows.
_PSS_PARAMS_HASH = {
    bytes.fromhex("608648016503040201"): SignatureScheme.RSA_PSS_PSS_SHA256,
    bytes.fromhex("608648016503040202"): SignatureScheme.RSA_PSS_PSS_SHA384,
    bytes.fromhex("608648016503040203"): SignatureScheme.RSA_PSS_PSS_SHA512,
}


def _der_element(data: bytes, pos: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the DER element at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def _rsassa_pss_schemes(certificate: x509.Certificate) -> tuple[int, ...]:
    """The rsa_pss_pss_* schemes an id-RSASSA-PSS certificate key allows.

    Walks tbsCertificate to SubjectPublicKeyInfo.algorithm.parameters
    (RFC 5280 §4.1, RFC 4055 §3.1): absent parameters allow every hash,
    otherwise only hashAlgorithm's (SHA-1 when it is absent: none).
    """
    tbs = certificate.tbs_certificate_bytes
    try:
        _, pos, _ = _der_element(tbs, 0)
        tag, _, end = _der_element(tbs, pos)
        if tag == 0xA0:  # [0] version
            pos = end
        for _ in range(5):  # serialNumber, signature, issuer, validity, subject
            pos = _der_element(tbs, pos)[2]
        _, spki, _ = _der_element(tbs, pos)
        _, algorithm, algorithm_end = _der_element(tbs, spki)
        pos = _der_element(tbs, algorithm)[2]  # the OID
        if pos == algorithm_end:
            return _RSA_PSS
        tag, params, params_end = _der_element(tbs, pos)
        if tag == 0x05:  # NULL: treated as no restriction
            return _RSA_PSS
        if tag != 0x30 or params == params_end:
            return ()
        tag, hash_field, _ = _der_element(tbs, params)
        if tag != 0xA0:  # hashAlgorithm defaults to SHA-1
            return ()
        _, hash_algorithm, _ = _der_element(tbs, hash_field)
        _, oid_start, oid_end = _der_element(tbs, hash_algorithm)
    except (IndexError, ValueError):
        return ()
    scheme = _PSS_PARAMS_HASH.get(tbs[oid_start:oid_end])
    return (scheme,) if scheme is not None else ()


def schemes_for_certificate(certificate: x509.Certificate, key: Any) -> tuple[int, ...]:
    """Signature schemes usable with ``certificate``'s key.

    ``key`` is the certificate's public key or the matching private key; the
    certificate says whether an RSA key is id-RSASSA-PSS (see module
    docstring).
    """
    if certificate.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS:
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            return ()
        return _rsassa_pss_schemes(certificate)
    return schemes_for_key(key)


def _pss(hash_cls: Any) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)


def sign(private_key: Any, scheme: int, data: bytes) -> bytes:
    """Sign ``data`` with ``scheme``."""
    if scheme in _RSA_HASH:
        hash_cls = _RSA_HASH[scheme]
        return private_key.sign(data, _pss(hash_cls), hash_cls())
    if scheme == SignatureScheme.ED25519:
        return private_key.sign(data)
    algorithm, _ = _ECDSA_HASH[scheme]
    return private_key.sign(data, algorithm)


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
            algorithm, curve = _ECDSA_HASH[scheme]
            if public_key.curve.name != curve:
                raise AlertError(
                    AlertDescription.illegal_parameter,
                    f"signature scheme {scheme:#06x} does not match the certificate's curve",
                )
            public_key.verify(signature, data, algorithm)
        else:
            raise AlertError(
                AlertDescription.illegal_parameter,
                f"signature scheme {scheme:#06x} does not match the certificate key",
            )
    except InvalidSignature:
        raise AlertError(
            AlertDescription.decrypt_error, "bad CertificateVerify signature"
        ) from None
