"""RFC 8448 key schedule vectors, reproduced bit for bit.

§3 "Simple 1-RTT Handshake": early, handshake and master secrets, the four
traffic secrets, handshake key/iv, the Finished key and the exporter master
secret (RFC 8448 gives no TLS-Exporter output, so that is checked against
the RFC 8446 §7.5 formula built on cryptography's HKDF-Expand). §4 "Resumed 0-RTT
Handshake": resumption master secret and PSK, early secret, binder key,
binder finished key, binder and client early traffic secret.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from quicfast.tls.key_schedule import (
    KeySchedule,
    Transcript,
    hkdf_expand_label,
    hkdf_extract,
)
from quicfast.proto.crypto import hmac_digest

h = bytes.fromhex

# RFC 8448 §3
ECDHE = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
DERIVED_FOR_HANDSHAKE = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
HELLO_HASH = h("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
CLIENT_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
SERVER_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
SERVER_HS_KEY = h("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = h("5d313eb2671276ee13000b30")
CLIENT_HS_KEY = h("dbfaa693d1762c5b666af5d950258d01")
CLIENT_HS_IV = h("5bd3c71b836e0b76bb73265f")
SERVER_FINISHED_KEY = h("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
SERVER_FINISHED_HASH = h("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
CLIENT_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
SERVER_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
SERVER_AP_KEY = h("9f02283b6c9c07efc26bb9f2ac92e356")
SERVER_AP_IV = h("cf782b88dd83549aadf1e984")
CLIENT_AP_KEY = h("17422dda596ed5d9acd890e3c63f5051")
CLIENT_AP_IV = h("5b78923dee08579033e523d9")
CLIENT_FINISHED_HASH = h("209145a96ee8e2a122ff810047cc952684658d6049e86429426db87c54ad143d")
RESUMPTION_MASTER = h("7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c")
EXPORTER_MASTER = h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")

# RFC 8448 §4
PSK = h("4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3")
RESUMED_EARLY_SECRET = h("9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c")
BINDER_KEY = h("69fe131a3bbad5d63c64eebcc30e395b9d8107726a13d074e389dbc8a4e47256")
BINDER_FINISHED_KEY = h("5588673e72cb59c87d220caffe94f2dea9a3b1609f7d50e90a48227db9ed7eaa")
TRUNCATED_HELLO_HASH = h("63224b2e4573f2d3454ca84b9d009a04f6be9e05711a8396473aefa01e924a14")
BINDER = h("3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d")
FULL_HELLO_HASH = h("08ad0fa05d7c7233b1775ba2ff9f4c5b8b59276b7f227f13a976245f5d960913")
CLIENT_EARLY_TRAFFIC = h("3fbbe6a60deb66c30a32795aba0eff7eaa10105586e7be5c09678d63b6caab62")

EMPTY_HASH = hashlib.sha256(b"").digest()


def simple_schedule() -> KeySchedule:
    ks = KeySchedule(0x1301)
    assert ks.extract(None) == EARLY_SECRET
    return ks


def test_early_secret_and_derived_salt():
    ks = simple_schedule()
    assert ks.derive_secret(b"derived", EMPTY_HASH) == DERIVED_FOR_HANDSHAKE
    assert hkdf_extract("sha256", b"", bytes(32)) == EARLY_SECRET


def test_handshake_secret_and_traffic_secrets():
    ks = simple_schedule()
    assert ks.extract(ECDHE) == HANDSHAKE_SECRET
    assert ks.derive_secret(b"c hs traffic", HELLO_HASH) == CLIENT_HS_TRAFFIC
    assert ks.derive_secret(b"s hs traffic", HELLO_HASH) == SERVER_HS_TRAFFIC


def test_handshake_keys_and_finished_key():
    assert hkdf_expand_label("sha256", SERVER_HS_TRAFFIC, b"key", b"", 16) == SERVER_HS_KEY
    assert hkdf_expand_label("sha256", SERVER_HS_TRAFFIC, b"iv", b"", 12) == SERVER_HS_IV
    assert hkdf_expand_label("sha256", CLIENT_HS_TRAFFIC, b"key", b"", 16) == CLIENT_HS_KEY
    assert hkdf_expand_label("sha256", CLIENT_HS_TRAFFIC, b"iv", b"", 12) == CLIENT_HS_IV
    assert hkdf_expand_label("sha256", SERVER_HS_TRAFFIC, b"finished", b"", 32) == SERVER_FINISHED_KEY


def test_master_and_application_traffic_secrets():
    ks = simple_schedule()
    ks.extract(ECDHE)
    assert ks.extract(None) == MASTER_SECRET
    client = ks.derive_secret(b"c ap traffic", SERVER_FINISHED_HASH)
    server = ks.derive_secret(b"s ap traffic", SERVER_FINISHED_HASH)
    assert client == CLIENT_AP_TRAFFIC
    assert server == SERVER_AP_TRAFFIC
    assert hkdf_expand_label("sha256", server, b"key", b"", 16) == SERVER_AP_KEY
    assert hkdf_expand_label("sha256", server, b"iv", b"", 12) == SERVER_AP_IV
    assert hkdf_expand_label("sha256", client, b"key", b"", 16) == CLIENT_AP_KEY
    assert hkdf_expand_label("sha256", client, b"iv", b"", 12) == CLIENT_AP_IV


def test_resumption_master_secret_and_psk():
    ks = simple_schedule()
    ks.extract(ECDHE)
    ks.extract(None)
    resumption = ks.derive_secret(b"res master", CLIENT_FINISHED_HASH)
    assert resumption == RESUMPTION_MASTER
    assert ks.resumption_psk(resumption, b"\x00\x00") == PSK


def test_resumed_binder_and_early_traffic_secret():
    ks = KeySchedule(0x1301)
    assert ks.extract(PSK) == RESUMED_EARLY_SECRET
    assert ks.derive_secret(b"res binder", EMPTY_HASH) == BINDER_KEY
    assert hkdf_expand_label("sha256", BINDER_KEY, b"finished", b"", 32) == BINDER_FINISHED_KEY
    assert ks.binder(False, TRUNCATED_HELLO_HASH) == BINDER
    assert ks.derive_secret(b"c e traffic", FULL_HELLO_HASH) == CLIENT_EARLY_TRAFFIC


def test_transcript_defers_hashing_until_suite_known_and_handles_retry():
    transcript = Transcript()
    transcript.update(b"\x01\x00\x00\x01a")
    transcript.set_hash("sha384")
    assert transcript.digest() == hashlib.sha384(b"\x01\x00\x00\x01a").digest()
    transcript.restart_for_retry()
    first = hashlib.sha384(b"\x01\x00\x00\x01a").digest()
    assert transcript.digest() == hashlib.sha384(b"\xfe\x00\x00\x30" + first).digest()


def test_expand_label_longer_than_one_block_matches_rfc5869_expand():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    secret = bytes(range(32))
    label = b"tls13 test"
    info = (80).to_bytes(2, "big") + bytes((len(label),)) + label + b"\x00"
    expected = HKDFExpand(hashes.SHA256(), 80, info).derive(secret)
    assert hkdf_expand_label("sha256", secret, b"test", b"", 80) == expected


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("key_length", [0, 1, 32, 48, 64, 127, 128, 129, 200])
def test_hmac_matches_stdlib_for_every_key_length(hash_name, key_length):
    # the C HMAC pads short keys and hashes keys longer than a block (RFC 2104 §2)
    key = bytes(range(key_length % 256)) + bytes(max(0, key_length - 256))
    message = b"quicfast" * 9
    assert hmac_digest(hash_name, key, message) == hmac.digest(key, message, hash_name)


def _hkdf_label(length: int, label: bytes, context: bytes) -> bytes:
    full = b"tls13 " + label
    return length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context


def test_exporter_master_secret():
    ks = simple_schedule()
    ks.extract(ECDHE)
    ks.extract(None)
    assert ks.exporter_master_secret(SERVER_FINISHED_HASH) == EXPORTER_MASTER


@pytest.mark.parametrize("context, length", [(b"", 32), (b"quicfast context", 80), (b"x", 0)])
def test_tls_exporter_follows_rfc8446_section_7_5(context, length):
    # TLS-Exporter(label, context_value, key_length) =
    #   HKDF-Expand-Label(Derive-Secret(Secret, label, ""), "exporter",
    #                     Hash(context_value), key_length)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    label = b"EXPERIMENTAL-quicfast"
    derived = HKDFExpand(hashes.SHA256(), 32, _hkdf_label(32, label, EMPTY_HASH)).derive(
        EXPORTER_MASTER
    )
    context_hash = hashlib.sha256(context).digest()
    expected = (
        HKDFExpand(hashes.SHA256(), length, _hkdf_label(length, b"exporter", context_hash)).derive(
            derived
        )
        if length
        else b""
    )
    assert KeySchedule(0x1301).export(EXPORTER_MASTER, label, context, length) == expected


def test_tls_exporter_rejects_long_label_and_length():
    ks = KeySchedule(0x1302)
    with pytest.raises(ValueError):
        ks.export(bytes(48), b"x" * 250, b"", 32)
    with pytest.raises(ValueError):
        ks.export(bytes(48), b"label", b"", 255 * 48 + 1)
    assert len(ks.export(bytes(48), b"x" * 249, b"", 255 * 48)) == 255 * 48
