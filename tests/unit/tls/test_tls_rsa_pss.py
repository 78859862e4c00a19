"""rsa_pss_pss_* with id-RSASSA-PSS certificates, and the RFC 8446 §4.2.3
rule that keeps them apart from rsa_pss_rsae_* (rsaEncryption keys).

The certificates are made at test time by the openssl CLI in a temporary
directory: ``cryptography`` can load id-RSASSA-PSS keys and certificates
(as plain RSA keys) but cannot issue one.
"""

from __future__ import annotations

import shutil
import ssl

import pytest
from cryptography.x509.oid import PublicKeyAlgorithmOID

from quicfast.tls import (
    AlertDescription,
    AlertError,
    ClientHandshake,
    Level,
    ServerHandshake,
    SignatureScheme,
)
from quicfast.tls.messages import HandshakeType, pull_certificate_verify

from tls_testing import Pair, client_config, make_openssl_pki, server_config

S = SignatureScheme
PSS_SCHEMES = [S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA384, S.RSA_PSS_PSS_SHA512]
RSAE_SCHEMES = [S.RSA_PSS_RSAE_SHA256, S.RSA_PSS_RSAE_SHA384, S.RSA_PSS_RSAE_SHA512]


@pytest.fixture(scope="module")
def pss_pki(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is not installed; it is needed to create "
                    "id-RSASSA-PSS certificates, which cryptography cannot issue")
    return make_openssl_pki(openssl, tmp_path_factory.mktemp("rsa_pss"))


def configs(pss_pki, leaf: str, client_schemes, **server_overrides):
    clock = lambda: pss_pki.now  # noqa: E731
    client = client_config(pss_pki, signature_algorithms=list(client_schemes), clock=clock)
    server = server_config(pss_pki, pss_pki.leaves[leaf], clock=clock, **server_overrides)
    return client, server


def run(client_cfg, server_cfg) -> tuple[Pair, list[int]]:
    """Handshake in memory; also return the schemes of the server's CertificateVerify."""
    pair = Pair(ClientHandshake(client_cfg, "localhost", b"c"), ServerHandshake(server_cfg, b"s"))
    pair.client.start()
    schemes = []
    for _ in range(10):
        moved = pair.flush(pair.client, pair.server)
        flight = bytes(pair.server.output[Level.HANDSHAKE])
        pos = 0
        while pos < len(flight):
            end = pos + 4 + int.from_bytes(flight[pos + 1 : pos + 4], "big")
            if flight[pos] == HandshakeType.certificate_verify:
                schemes.append(pull_certificate_verify(flight[pos:end]).algorithm)
            pos = end
        moved = pair.flush(pair.server, pair.client) or moved
        if not moved:
            break
    return pair, schemes


def alert_of(client_cfg, server_cfg) -> int:
    with pytest.raises(AlertError) as raised:
        run(client_cfg, server_cfg)
    return raised.value.description


def test_openssl_certificates_have_the_intended_key_types(pss_pki):
    oids = {kind: leaf.certificate.public_key_algorithm_oid for kind, leaf in pss_pki.leaves.items()}
    assert oids == {
        "pss": PublicKeyAlgorithmOID.RSASSA_PSS,
        "pss_sha384_only": PublicKeyAlgorithmOID.RSASSA_PSS,
        "rsae": PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5,
    }


@pytest.mark.parametrize("scheme", PSS_SCHEMES, ids=lambda s: s.name)
def test_handshake_with_each_rsa_pss_pss_scheme(pss_pki, scheme):
    pair, used = run(*configs(pss_pki, "pss", [scheme]))
    assert pair.client.handshake_complete and pair.server.handshake_complete
    assert used == [scheme]
    leaf = pair.client.peer_certificates[0]
    assert leaf.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS
    pair.assert_secrets_match()


def test_pss_certificate_picks_pss_scheme_even_when_rsae_is_preferred(pss_pki):
    _, used = run(*configs(pss_pki, "pss", [S.RSA_PSS_RSAE_SHA256, S.RSA_PSS_PSS_SHA256]))
    assert used == [S.RSA_PSS_PSS_SHA256]


def test_rsaencryption_certificate_picks_rsae_scheme_even_when_pss_is_preferred(pss_pki):
    _, used = run(*configs(pss_pki, "rsae", [S.RSA_PSS_PSS_SHA256, S.RSA_PSS_RSAE_SHA256]))
    assert used == [S.RSA_PSS_RSAE_SHA256]


def test_pss_certificate_is_never_used_with_rsae_schemes(pss_pki):
    # the server has no scheme the client accepts for its certificate
    assert alert_of(*configs(pss_pki, "pss", RSAE_SCHEMES)) == AlertDescription.handshake_failure


def test_rsaencryption_certificate_is_never_used_with_pss_schemes(pss_pki):
    assert alert_of(*configs(pss_pki, "rsae", PSS_SCHEMES)) == AlertDescription.handshake_failure


@pytest.mark.parametrize(
    "leaf, forced",
    [("pss", S.RSA_PSS_RSAE_SHA256), ("rsae", S.RSA_PSS_PSS_SHA256),
     ("pss_sha384_only", S.RSA_PSS_PSS_SHA256)],
)
def test_client_rejects_scheme_that_does_not_match_the_certificate_key(pss_pki, leaf, forced):
    # A misbehaving server signs with a scheme its certificate does not allow,
    # one the client did offer: illegal_parameter, as for any key mismatch.
    client_cfg, server_cfg = configs(pss_pki, leaf, PSS_SCHEMES + RSAE_SCHEMES)
    server_cfg._signature_schemes_for_key = (forced,)
    assert alert_of(client_cfg, server_cfg) == AlertDescription.illegal_parameter


def test_pss_params_restrict_the_hash(pss_pki):
    # RSASSA-PSS-params name SHA-384 (RFC 4055 §3.1): only rsa_pss_pss_sha384
    _, used = run(*configs(pss_pki, "pss_sha384_only", PSS_SCHEMES))
    assert used == [S.RSA_PSS_PSS_SHA384]
    restricted = configs(pss_pki, "pss_sha384_only", [S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA512])
    assert alert_of(*restricted) == AlertDescription.handshake_failure


def test_client_certificate_with_pss_key(pss_pki):
    client_cfg, server_cfg = configs(pss_pki, "pss", PSS_SCHEMES, verify_mode=ssl.CERT_REQUIRED)
    server_cfg.load_verify_locations(cadata=pss_pki.ca_pem)
    leaf = pss_pki.leaves["pss"]
    client_cfg.set_certificate_chain(leaf.chain, leaf.key)
    pair, _ = run(client_cfg, server_cfg)
    assert pair.server.handshake_complete
    assert pair.server.peer_certificates[0].public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS


def test_pss_client_certificate_not_sent_when_server_accepts_only_rsae(pss_pki):
    # The client has no scheme for its certificate among those requested, so it
    # sends none, and a server that requires one says certificate_required.
    client_cfg, server_cfg = configs(
        pss_pki, "rsae", RSAE_SCHEMES, verify_mode=ssl.CERT_REQUIRED, signature_algorithms=RSAE_SCHEMES
    )
    server_cfg.load_verify_locations(cadata=pss_pki.ca_pem)
    leaf = pss_pki.leaves["pss"]
    client_cfg.set_certificate_chain(leaf.chain, leaf.key)
    assert alert_of(client_cfg, server_cfg) == AlertDescription.certificate_required
