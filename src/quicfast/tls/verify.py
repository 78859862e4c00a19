"""Certificate chain verification for TLS 1.3 peers.

Implements RFC 8446 §4.4.2.4 (receiving a Certificate message: the chain is
validated and failures are reported with the matching alert), RFC 5280 path
validation and RFC 6125 / RFC 9525 server identity checks through
``cryptography.x509.verification`` (WebPKI profile), against either the
configured trust anchors or the system bundle (certifi, else
``ssl.get_default_verify_paths()``).

Errors name their cause: ``certificate_expired`` (outside the validity
period at the configured clock's time), ``bad_certificate`` (hostname
mismatch, unparsable certificate, policy violation), ``unknown_ca`` (no path
to a trust anchor). Parsed trust stores are cached: the system bundle once per
process, configured anchors once per TLSConfig; so are server chains that
verified (`VerifiedChainCache`), for clients that reconnect.
"""

from __future__ import annotations

import collections
import datetime
import ipaddress
import os
import ssl
from typing import Any, Sequence

from cryptography import x509
from cryptography.x509 import verification

from .alerts import AlertDescription, AlertError

__all__ = [
    "load_certificates",
    "default_trust_store",
    "build_trust_store",
    "verify_server_certificates",
    "verify_client_certificates",
    "hostname_matches",
    "VerifiedChainCache",
    "VerifiedChain",
]

_default_store: verification.Store | None = None


def ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``name`` as an IP address when it is an IP literal, else None.

    A cheap test comes first: ``ipaddress.ip_address`` takes about 4 us to
    reject a host name (two parsers fail and raise), once per handshake.
    """
    if ":" not in name and not name.replace(".", "").isdigit():
        return None
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Parse one DER certificate or any number of PEM certificates."""
    if isinstance(data, str):
        data = data.encode("ascii")
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _load_file(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as f:
        return load_certificates(f.read())


def _load_directory(path: str) -> list[x509.Certificate]:
    certificates = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full):
            try:
                certificates.extend(_load_file(full))
            except ValueError:
                continue  # not a certificate file
    return certificates


def default_trust_store() -> verification.Store:
    """The system trust anchors, parsed once per process."""
    global _default_store
    if _default_store is None:
        certificates: list[x509.Certificate] = []
        try:
            import certifi

            certificates = _load_file(certifi.where())
        except (ImportError, OSError, ValueError):
            paths = ssl.get_default_verify_paths()
            if paths.cafile and os.path.exists(paths.cafile):
                certificates = _load_file(paths.cafile)
            elif paths.capath and os.path.isdir(paths.capath):
                certificates = _load_directory(paths.capath)
        _default_store = verification.Store(certificates)
    return _default_store


def build_trust_store(
    cafile: str | None, capath: str | None, cadata: bytes | str | None
) -> verification.Store:
    """A Store holding the anchors from a file, a directory and/or data."""
    certificates: list[x509.Certificate] = []
    if cafile:
        certificates.extend(_load_file(cafile))
    if capath:
        certificates.extend(_load_directory(capath))
    if cadata:
        certificates.extend(load_certificates(cadata))
    if not certificates:
        raise ValueError("no CA certificates found")
    return verification.Store(certificates)


def _dns_match(pattern: str, name: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def hostname_matches(certificate: x509.Certificate, server_name: str) -> bool:
    """True if the certificate's subjectAltName covers ``server_name``.

    Used to name the cause of a failure; the authoritative check is
    cryptography's verifier.
    """
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return False
    address = ip_literal(server_name)
    if address is None:
        name = server_name.lower().rstrip(".")
        return any(_dns_match(p, name) for p in san.get_values_for_type(x509.DNSName))
    return address in san.get_values_for_type(x509.IPAddress)


def _check_validity(certificates: Sequence[x509.Certificate], now: float) -> None:
    for index, certificate in enumerate(certificates):
        what = "certificate" if index == 0 else f"intermediate certificate {index}"
        if now < certificate.not_valid_before_utc.timestamp():
            raise AlertError(
                AlertDescription.certificate_expired, f"{what} is not yet valid"
            )
        if now > certificate.not_valid_after_utc.timestamp():
            raise AlertError(AlertDescription.certificate_expired, f"{what} has expired")


def _subject_for(certificate: x509.Certificate, server_name: str | None) -> verification.Subject:
    if server_name is not None:
        address = ip_literal(server_name)
        return verification.DNSName(server_name) if address is None else verification.IPAddress(address)
    # No name to check: verify the chain against a name the leaf claims.
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        raise AlertError(
            AlertDescription.bad_certificate, "certificate has no subjectAltName"
        ) from None
    names = san.get_values_for_type(x509.DNSName)
    if names:
        return verification.DNSName(names[0].lstrip("*."))
    addresses = san.get_values_for_type(x509.IPAddress)
    if addresses:
        return verification.IPAddress(addresses[0])
    raise AlertError(AlertDescription.bad_certificate, "certificate names no host")


def _classify(error: Exception) -> AlertError:
    text = str(error)
    lowered = text.lower()
    if "expired" in lowered or "not yet valid" in lowered:
        return AlertError(AlertDescription.certificate_expired, text)
    if "candidates exhausted" in lowered or "issuer" in lowered:
        return AlertError(
            AlertDescription.unknown_ca, f"unknown CA: no valid chain to a trust anchor ({text})"
        )
    return AlertError(AlertDescription.bad_certificate, f"certificate rejected: {text}")


def _as_datetime(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc).replace(tzinfo=None)


def verify_server_certificates(
    store: verification.Store,
    certificates: Sequence[x509.Certificate],
    server_name: str | None,
    check_hostname: bool,
    now: float,
) -> None:
    """Validate a server's chain (leaf first) for ``server_name`` at ``now``."""
    leaf = certificates[0]
    name = server_name if check_hostname else None
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(store)
            .time(_as_datetime(now))
            .build_server_verifier(_subject_for(leaf, name))
        )
        verifier.verify(leaf, list(certificates[1:]))
    except verification.VerificationError as exc:
        # Parsing dates and subjectAltName is costly, so the cause is
        # named only on failure.
        _check_validity(certificates, now)
        if name is not None and not hostname_matches(leaf, name):
            raise AlertError(
                AlertDescription.bad_certificate,
                f"hostname mismatch: certificate is not valid for {name!r}",
            ) from None
        raise _classify(exc) from None
    except ValueError as exc:
        raise AlertError(AlertDescription.bad_certificate, f"certificate rejected: {exc}") from None


def verify_client_certificates(
    store: verification.Store, certificates: Sequence[x509.Certificate], now: float
) -> None:
    """Validate a client's chain (leaf first) at ``now``."""
    try:
        verifier = (
            verification.PolicyBuilder().store(store).time(_as_datetime(now)).build_client_verifier()
        )
        verifier.verify(certificates[0], list(certificates[1:]))
    except verification.VerificationError as exc:
        _check_validity(certificates, now)
        raise _classify(exc) from None
    except ValueError as exc:
        raise AlertError(AlertDescription.bad_certificate, f"certificate rejected: {exc}") from None


class VerifiedChain:
    """A server chain that passed `verify_server_certificates`, with what the
    handshake needs from it: the parsed certificates and the leaf's key."""

    __slots__ = ("certificates", "public_key", "schemes", "not_before", "not_after", "verified_at")

    def __init__(self, certificates: Sequence[x509.Certificate], public_key: Any,
                 schemes: tuple[int, ...], verified_at: float) -> None:
        self.certificates = list(certificates)
        self.public_key = public_key
        self.schemes = schemes
        self.not_before = max(c.not_valid_before_utc.timestamp() for c in certificates)
        self.not_after = min(c.not_valid_after_utc.timestamp() for c in certificates)
        self.verified_at = verified_at


class VerifiedChainCache:
    """Server chains that verified recently, keyed by their exact DER bytes and
    the name they were checked for.

    Path validation is a function of the chain, the trust anchors, the name and
    the time, and a client reconnecting to a server is sent the same chain each
    time: a hit skips validation and parsing (about 150 µs of a client's
    handshake). An entry answers only while ``now`` lies inside every presented
    certificate's validity period and within ``max_age`` seconds of the
    verification, so an anchor that expires or is removed from the system store
    counts again after at most ``max_age``. Only successes are kept, at most
    ``max_entries`` of them (least recently used dropped first). Each trust
    store needs its own cache: TLSConfig makes a new one when its anchors change.
    """

    def __init__(self, max_entries: int = 64, max_age: float = 600.0) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: collections.OrderedDict[tuple, VerifiedChain] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, ders: Sequence[bytes], server_name: str | None, now: float) -> VerifiedChain | None:
        key = (tuple(ders), server_name)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not (entry.not_before <= now <= entry.not_after
                and entry.verified_at <= now <= entry.verified_at + self.max_age):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, ders: Sequence[bytes], server_name: str | None, entry: VerifiedChain) -> None:
        if self.max_entries <= 0:
            return
        key = (tuple(ders), server_name)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
