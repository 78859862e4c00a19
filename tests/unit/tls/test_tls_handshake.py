"""In-memory client<->server handshakes over every cipher suite, group and
signature scheme; secrets exported on both sides must match per level.
(rsa_pss_pss_* needs openssl-made certificates: test_tls_rsa_pss.py.)"""

from __future__ import annotations

import pytest

from quicfast.tls import CipherSuite, ClientHandshake, Group, Level, ServerHandshake, SignatureScheme

from tls_testing import Pair, client_config, handshake, server_config

SCHEME_KEY = {
    SignatureScheme.ECDSA_SECP256R1_SHA256: "ec256",
    SignatureScheme.ECDSA_SECP384R1_SHA384: "ec384",
    SignatureScheme.ED25519: "ed25519",
    SignatureScheme.RSA_PSS_RSAE_SHA256: "rsa",
    SignatureScheme.RSA_PSS_RSAE_SHA384: "rsa",
    SignatureScheme.RSA_PSS_RSAE_SHA512: "rsa",
}

CLIENT_ORDER = [(Level.HANDSHAKE, False), (Level.HANDSHAKE, True), (Level.ONE_RTT, False),
                (Level.ONE_RTT, True)]
SERVER_ORDER = [(Level.HANDSHAKE, False), (Level.HANDSHAKE, True), (Level.ONE_RTT, True),
                (Level.ONE_RTT, False)]


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
@pytest.mark.parametrize("group", list(Group), ids=lambda g: g.name)
def test_full_handshake_every_suite_and_group(pki, suite, group):
    pair = handshake(
        client_config(pki, cipher_suites=[suite], groups=[group]),
        server_config(pki),
    )
    client, server = pair.client, pair.server
    assert client.handshake_complete and server.handshake_complete
    assert client.cipher_suite == server.cipher_suite == suite
    assert client.group == server.group == group
    assert client.alpn_protocol == server.alpn_protocol == "h3"
    assert client.peer_transport_parameters == b"server-params"
    assert server.peer_transport_parameters == b"client-params"
    assert not client.session_resumed and not server.session_resumed
    assert client.peer_certificates[0] == pki.server.certificate
    assert pair.order["client"] == CLIENT_ORDER
    assert pair.order["server"] == SERVER_ORDER
    pair.assert_secrets_match()


@pytest.mark.parametrize("scheme", list(SCHEME_KEY), ids=lambda s: s.name)
def test_full_handshake_every_signature_scheme(pki, scheme):
    identity = pki.leaves[SCHEME_KEY[scheme]]
    pair = handshake(
        client_config(pki, signature_algorithms=[scheme]),
        server_config(pki, identity),
    )
    assert pair.client.handshake_complete and pair.server.handshake_complete
    pair.assert_secrets_match()



@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
def test_exporter_gives_both_sides_the_same_keying_material(pki, suite):
    pair = handshake(client_config(pki, cipher_suites=[suite]), server_config(pki))
    client, server = pair.client, pair.server
    material = client.export_keying_material("EXPERIMENTAL-test", b"context", 48)
    assert len(material) == 48
    assert server.export_keying_material(b"EXPERIMENTAL-test", b"context", 48) == material
    # label, context and length each change the output
    assert client.export_keying_material("EXPERIMENTAL-other", b"context", 48) != material
    assert client.export_keying_material("EXPERIMENTAL-test", b"", 48) != material
    assert client.export_keying_material("EXPERIMENTAL-test", b"context", 32) != material[:32]
    # another connection exports something else
    other = handshake(client_config(pki, cipher_suites=[suite]), server_config(pki))
    assert other.client.export_keying_material("EXPERIMENTAL-test", b"context", 48) != material


def test_exporter_errors(pki):
    client = ClientHandshake(client_config(pki), "localhost", b"c")
    with pytest.raises(RuntimeError):
        client.export_keying_material("EXPERIMENTAL-early")
    pair = handshake(client_config(pki), server_config(pki))
    with pytest.raises(ValueError):
        pair.client.export_keying_material("EXPERIMENTAL-\u00e9")
    with pytest.raises(ValueError):
        pair.client.export_keying_material("x" * 250)


@pytest.mark.parametrize("server_groups", [[Group.X25519MLKEM768], [Group.X25519]], ids=["hybrid", "x25519"])
def test_hybrid_and_x25519_shares_reuse_one_x25519_key(pki, server_groups):
    client_cfg = client_config(pki, groups=[Group.X25519MLKEM768, Group.X25519])
    client_cfg.key_share_count = 2
    client = ClientHandshake(client_cfg, "localhost", b"client-params")
    client.start()
    shares = {group: share.public for group, share in client._key_shares.items()}
    assert set(shares) == {Group.X25519MLKEM768, Group.X25519}
    # The hybrid share ends with its X25519 public key: the same as the X25519 share.
    assert shares[Group.X25519MLKEM768][-32:] == shares[Group.X25519]
    pair = Pair(client, ServerHandshake(server_config(pki, groups=server_groups), b"server-params"))
    pair.run(started=True)
    assert pair.client.group == pair.server.group == server_groups[0]
    assert pair.client.handshake_complete and pair.server.handshake_complete
    pair.assert_secrets_match()
