"""TLS alerts as Python exceptions.

Every failure the handshake detects is raised as :class:`AlertError`, carrying
the TLS AlertDescription the peer should see. QUIC never sends TLS alert
records: the engine turns ``description`` into the QUIC transport error
``CRYPTO_ERROR`` (0x100 + description).

Implements RFC 8446 §6 (alert protocol, descriptions) and RFC 9001 §4.8
(TLS errors carried as QUIC CRYPTO_ERROR).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["AlertDescription", "AlertError"]


class AlertDescription(IntEnum):
    """TLS AlertDescription values (RFC 8446 §6, RFC 7301 §3.2)."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    no_application_protocol = 120


class AlertError(Exception):
    """The handshake failed; ``description`` is the TLS alert to report.

    :param description: a TLS AlertDescription (see :class:`AlertDescription`).
    :param message: a human-readable cause, e.g. ``"hostname mismatch: ..."``.
    """

    def __init__(self, description: int, message: str) -> None:
        super().__init__(f"{AlertDescription(description).name}: {message}")
        self.description: int = int(description)
        self.message: str = message

    @property
    def quic_error_code(self) -> int:
        """The QUIC CRYPTO_ERROR code for this alert (RFC 9001 §4.8)."""
        return 0x100 + self.description
