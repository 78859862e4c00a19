"""VerifiedChainCache: a client that reconnects skips path validation for a
chain that verified, and only where the same checks would pass again."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from quicfast.tls import AlertError
from quicfast.tls import context as tls_context
from quicfast.tls.verify import VerifiedChain, VerifiedChainCache

from tls_testing import NOW, Identity, client_config, handshake, make_leaf, server_config

BAD_CERTIFICATE = 42
CERTIFICATE_EXPIRED = 45
UNKNOWN_CA = 48
DECRYPT_ERROR = 51


@pytest.fixture
def verifications(monkeypatch):
    """Counts the real path validations the client runs."""
    calls = []
    real = tls_context.verify_server_certificates

    def counting(*args):
        calls.append(args[2])   # the server name
        return real(*args)

    monkeypatch.setattr(tls_context, "verify_server_certificates", counting)
    return calls


def clock_at(t):
    now = [t]
    return now, (lambda: now[0])


def test_a_reconnect_skips_validation_and_gets_the_same_certificates(pki, verifications):
    client_cfg = client_config(pki)
    first = handshake(client_cfg, server_config(pki))
    second = handshake(client_cfg, server_config(pki))
    assert first.client.handshake_complete and second.client.handshake_complete
    assert verifications == ["localhost"]
    assert [c.serial_number for c in second.client.peer_certificates] == [pki.server.certificate.serial_number]


def test_without_the_cache_every_handshake_validates(pki, verifications):
    client_cfg = client_config(pki, verified_chain_cache=None)
    handshake(client_cfg, server_config(pki))
    handshake(client_cfg, server_config(pki))
    assert verifications == ["localhost", "localhost"]


def test_the_certificate_verify_signature_is_still_checked_on_a_hit(pki):
    client_cfg = client_config(pki)
    handshake(client_cfg, server_config(pki))
    # The same certificate, presented by a server that does not hold its key.
    impostor = Identity(pki.server.certificate, ec.generate_private_key(ec.SECP256R1()), pki.server.chain)
    with pytest.raises(AlertError) as info:
        handshake(client_cfg, server_config(pki, impostor))
    assert info.value.description == DECRYPT_ERROR


def test_another_server_name_is_validated_again(pki, verifications):
    client_cfg = client_config(pki)
    handshake(client_cfg, server_config(pki))
    with pytest.raises(AlertError) as info:
        handshake(client_cfg, server_config(pki), server_name="example.org")
    assert info.value.description == BAD_CERTIFICATE
    assert verifications == ["localhost", "example.org"]


def test_an_entry_does_not_outlive_the_certificates(pki):
    now, clock = clock_at(NOW)
    client_cfg = client_config(pki, clock=clock)
    short = make_leaf(pki.ca, pki.keys["ec256"],
                      valid_until=datetime.datetime.fromtimestamp(NOW + 60, tz=datetime.timezone.utc))
    handshake(client_cfg, server_config(pki, short))
    now[0] = NOW + 120
    with pytest.raises(AlertError) as info:
        handshake(client_cfg, server_config(pki, short))
    assert info.value.description == CERTIFICATE_EXPIRED


def test_an_entry_is_validated_again_after_max_age(pki, verifications):
    now, clock = clock_at(NOW)
    client_cfg = client_config(pki, clock=clock)
    max_age = client_cfg.verified_chain_cache.max_age
    handshake(client_cfg, server_config(pki))
    now[0] = NOW + max_age / 2
    handshake(client_cfg, server_config(pki))
    now[0] = NOW + max_age + 1
    handshake(client_cfg, server_config(pki))
    now[0] = NOW - 1    # a clock that went back also validates again
    handshake(client_cfg, server_config(pki))
    assert len(verifications) == 3


def test_new_trust_anchors_start_an_empty_cache(pki):
    client_cfg = client_config(pki)
    handshake(client_cfg, server_config(pki))
    client_cfg.load_verify_locations(cadata=pki.other_ca.certificate.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(AlertError) as info:
        handshake(client_cfg, server_config(pki))
    assert info.value.description == UNKNOWN_CA


def test_a_failed_validation_is_not_kept(pki, verifications):
    client_cfg = client_config(pki)
    for _ in range(2):
        with pytest.raises(AlertError):
            handshake(client_cfg, server_config(pki, pki.foreign))
    assert len(verifications) == 2
    assert len(client_cfg.verified_chain_cache) == 0


def test_the_cache_keeps_the_most_recently_used_entries(pki):
    cache = VerifiedChainCache(max_entries=2)
    leaf = pki.server.certificate
    entry = VerifiedChain([leaf], None, (), NOW)
    for name in ("a", "b"):
        cache.put([b"der"], name, entry)
    assert cache.get([b"der"], "a", NOW) is entry     # "a" is now the most recent
    cache.put([b"der"], "c", entry)
    assert len(cache) == 2
    assert cache.get([b"der"], "b", NOW) is None
    assert cache.get([b"der"], "a", NOW) is entry
    assert cache.get([b"other"], "a", NOW) is None
