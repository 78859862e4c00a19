"""Fixtures for quicfast.tls tests: the session-wide test PKI (keys are
generated once; RSA key generation is slow)."""

from __future__ import annotations

import pytest

from tls_testing import Pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()
