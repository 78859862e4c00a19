"""Packet protection: RFC 9001 Appendix A and RFC 9369 Appendix A vectors,
key update, failure modes, batch protection, and round-trip properties."""

import json
import os
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from quicfast.proto.crypto import (
    AEAD_TAG_SIZE,
    AES_128_GCM_SHA256,
    AES_256_GCM_SHA384,
    CHACHA20_POLY1305_SHA256,
    SAMPLE_SIZE,
    VERSION_1,
    VERSION_2,
    Aead,
    CryptoError,
    HeaderProtection,
    PacketProtection,
    confidentiality_limit,
    derive_packet_keys,
    hkdf_expand_label,
    hkdf_extract,
    hmac_digest,
    initial_packet_protections,
    initial_secrets,
    integrity_limit,
    next_secret,
    retry_integrity_tag,
    stateless_reset_token,
)

VECTORS_DIR = pathlib.Path(__file__).parent.parent / "vectors"
V1 = json.loads((VECTORS_DIR / "rfc9001_appendix_a.json").read_text())
V2 = json.loads((VECTORS_DIR / "rfc9369_appendix_a.json").read_text())
BOTH = pytest.mark.parametrize("vec", [V1, V2], ids=["rfc9001", "rfc9369"])
SUITES = [AES_128_GCM_SHA256, AES_256_GCM_SHA384, CHACHA20_POLY1305_SHA256]


def x(hexstr):
    return bytes.fromhex(hexstr)


def _varint(data, pos):
    size = 1 << (data[pos] >> 6)
    value = int.from_bytes(data[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, pos + size


def long_header_pn_offset(header):
    """pn offset of an Initial header: flags, version, DCID, SCID, token, Length."""
    pos = 5
    pos += 1 + header[pos]  # DCID
    pos += 1 + header[pos]  # SCID
    token_len, pos = _varint(header, pos)
    _, pos = _varint(header, pos + token_len)  # Length
    return pos


# --- RFC 9001 A.1 / RFC 9369 A.1: keys ------------------------------------


@BOTH
def test_initial_keys(vec):
    dcid = x(vec["dcid"])
    client, server = initial_secrets(dcid, vec["version"])
    assert client == x(vec["client"]["secret"])
    assert server == x(vec["server"]["secret"])
    for side in ("client", "server"):
        key, iv, hp = derive_packet_keys(AES_128_GCM_SHA256, x(vec[side]["secret"]), vec["version"])
        assert (key.hex(), iv.hex(), hp.hex()) == (vec[side]["key"], vec[side]["iv"], vec[side]["hp"])


@BOTH
def test_initial_secret_extract(vec):
    salt = {VERSION_1: "38762cf7f55934b34d179ae6a4c80cadccbb7f0a", VERSION_2: "0dede3def700a6db819381be6e269dcbf9bd2ed9"}
    assert hkdf_extract("sha256", x(salt[vec["version"]]), x(vec["dcid"])) == x(vec["initial_secret"])


def test_hkdf_expand_label_matches_rfc_hkdf_label_bytes():
    # The HkdfLabel bytes listed in RFC 9001 A.1 are what HKDF-Expand hashes;
    # check our label encoding against them through a one-block expansion.
    import hmac

    secret = x(V1["initial_secret"])
    for label, info in V1["labels"].items():
        length = int.from_bytes(x(info)[:2], "big")
        want = hmac.digest(secret, x(info) + b"\x01", "sha256")[:length]
        assert hkdf_expand_label("sha256", secret, label.encode(), b"", length) == want


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_hkdf_expand_label_matches_rfc5869_expand_over_several_blocks(hash_name):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    secret, context = bytes(range(48)), b"ctx" * 20
    for length in (0, 1, 12, 32, 48, 49, 200):
        full = b"tls13 " + b"some label"
        info = length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
        algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
        want = HKDFExpand(algorithm, length, info).derive(secret) if length else b""
        assert hkdf_expand_label(hash_name, secret, b"some label", context, length) == want


def test_key_derivation_rejects_what_hkdf_label_cannot_hold():
    with pytest.raises(ValueError):
        hkdf_expand_label("sha256", bytes(32), b"x" * 250, b"", 16)  # "tls13 " + label > 255
    with pytest.raises(ValueError):
        hkdf_expand_label("sha256", bytes(32), b"key", bytes(256), 16)  # context > 255
    with pytest.raises(ValueError):
        hkdf_expand_label("sha256", bytes(32), b"key", b"", 255 * 32 + 1)  # RFC 5869 §2.3 limit
    with pytest.raises(ValueError):
        hmac_digest("md5", b"key", b"message")


# --- A.2 client Initial, A.3 server Initial ----------------------------------


def _initial_case(vec, which):
    case = vec[which]
    header = x(case["header"])
    if which == "client_initial":
        payload = x(case["crypto_frame"]).ljust(case["payload_len"], b"\x00")  # PADDING
        side = "client"
    else:
        payload = x(case["payload"])
        side = "server"
    pp = PacketProtection.from_secret(AES_128_GCM_SHA256, x(vec[side]["secret"]), vec["version"])
    return case, header, payload, pp


@BOTH
@pytest.mark.parametrize("which", ["client_initial", "server_initial"])
def test_initial_protect_bit_for_bit(vec, which):
    case, header, payload, pp = _initial_case(vec, which)
    pn_offset = len(header) - case["pn_len"]
    assert pn_offset == long_header_pn_offset(header)
    buf = bytearray(header + payload + bytes(AEAD_TAG_SIZE))
    n = pp.protect_packet(buf, len(header), pn_offset, case["pn_len"], len(payload), case["pn"])
    assert n == len(buf)
    assert bytes(buf) == x(case["packet"])
    assert bytes(buf[: len(header)]) == x(case["protected_header"])
    assert bytes(buf[pn_offset + 4 : pn_offset + 4 + SAMPLE_SIZE]) == x(case["sample"])
    assert pp.hp.mask(x(case["sample"])) == x(case["mask"])


@BOTH
@pytest.mark.parametrize("which", ["client_initial", "server_initial"])
def test_initial_unprotect(vec, which):
    case, header, payload, _ = _initial_case(vec, which)
    # The receiving endpoint derives the same keys from the DCID.
    is_client = which == "server_initial"
    _, receive = initial_packet_protections(x(vec["dcid"]), vec["version"], is_client=is_client)
    buf = bytearray(x(case["packet"]))
    pn_offset = long_header_pn_offset(buf)
    pn, header_len, plain_len = receive.unprotect_packet(buf, len(buf), pn_offset, -1)
    assert (pn, header_len, plain_len) == (case["pn"], len(header), len(payload))
    assert bytes(buf[:header_len]) == header
    assert bytes(buf[header_len : header_len + plain_len]) == payload


# --- A.4 Retry ---------------------------------------------------------------


@BOTH
def test_retry_integrity_tag(vec):
    odcid = x(vec["retry"]["odcid"])
    packet = x(vec["retry"]["packet"])
    pseudo = bytes([len(odcid)]) + odcid + packet[:-16]
    assert retry_integrity_tag(pseudo, vec["version"]) == packet[-16:]
    other = VERSION_2 if vec["version"] == VERSION_1 else VERSION_1
    assert retry_integrity_tag(pseudo, other) != packet[-16:]


# --- A.5 ChaCha20-Poly1305 short header --------------------------------------


@BOTH
def test_chacha20_keys_and_key_update(vec):
    case = vec["chacha20"]
    key, iv, hp = derive_packet_keys(CHACHA20_POLY1305_SHA256, x(case["secret"]), vec["version"])
    assert (key.hex(), iv.hex(), hp.hex()) == (case["key"], case["iv"], case["hp"])
    assert next_secret(CHACHA20_POLY1305_SHA256, x(case["secret"]), vec["version"]) == x(case["ku"])


@BOTH
def test_chacha20_short_header_protect_and_unprotect(vec):
    case = vec["chacha20"]
    pp = PacketProtection.from_secret(CHACHA20_POLY1305_SHA256, x(case["secret"]), vec["version"])
    header, plaintext = x(case["header"]), x(case["plaintext"])
    buf = bytearray(header + plaintext + bytes(AEAD_TAG_SIZE))
    assert pp.protect_packet(buf, len(header), 1, case["pn_len"], len(plaintext), case["pn"]) == 21
    assert bytes(buf) == x(case["packet"])
    assert pp.hp.mask(x(case["sample"])) == x(case["mask"])

    # Largest received pn just below, so the 3-byte truncated pn 49140 expands back.
    pn, header_len, plain_len = pp.unprotect_packet(buf, len(buf), 1, case["pn"] - 1)
    assert (pn, header_len, plain_len) == (case["pn"], 4, 1)
    assert bytes(buf[:5]) == header + plaintext


def test_chacha20_aead_ciphertext_matches_rfc():
    case = V1["chacha20"]
    aead = Aead(CHACHA20_POLY1305_SHA256, x(case["key"]), x(case["iv"]))
    buf = bytearray(x(case["header"]) + x(case["plaintext"]) + bytes(16))
    assert aead.seal_into(buf, 4, 1, case["pn"]) == 21
    assert bytes(buf[4:]) == x(case["ciphertext"])
    assert aead.open_into(buf, 4, 17, case["pn"]) == 1
    assert bytes(buf[4:5]) == x(case["plaintext"])


# --- key update ----------------------------------------------------------------


@pytest.mark.parametrize("version", [VERSION_1, VERSION_2])
@pytest.mark.parametrize("suite", SUITES)
def test_next_phase_derives_ku_and_shares_header_protection(suite, version):
    secret = bytes(range(48 if suite == AES_256_GCM_SHA384 else 32))
    pp = PacketProtection.from_secret(suite, secret, version)
    new_secret, nxt = pp.next_phase(secret)
    hash_name = "sha384" if suite == AES_256_GCM_SHA384 else "sha256"
    label = b"quic ku" if version == VERSION_1 else b"quicv2 ku"
    assert new_secret == hkdf_expand_label(hash_name, secret, label, b"", len(secret))
    assert nxt.hp is pp.hp
    assert (nxt.cipher_suite, nxt.version) == (suite, version)
    # New keys differ: a packet from one phase does not open under the other.
    buf = _short_packet(200, pn=7)
    nxt.protect_packet(buf, 9, 5, 4, 200, 7)
    with pytest.raises(CryptoError):
        pp.unprotect_packet(bytearray(buf), len(buf), 5, 6)
    assert nxt.unprotect_packet(buf, len(buf), 5, 6)[0] == 7
    # The chain keeps going: the phase after next uses the next ku.
    assert nxt.next_phase(new_secret)[0] == next_secret(suite, new_secret, version)


# --- failure modes ----------------------------------------------------------------


def _short_packet(payload_len, pn=0, fill=0xAB):
    # Short header: flags 0x43 (4-byte pn), 4-byte DCID, 4-byte pn.
    header = bytes([0x43, 1, 2, 3, 4]) + (pn & 0xFFFFFFFF).to_bytes(4, "big")
    return bytearray(header + bytes([fill]) * payload_len + bytes(AEAD_TAG_SIZE))


@pytest.fixture
def pair():
    secret = bytes(32)
    return PacketProtection.from_secret(AES_128_GCM_SHA256, secret), PacketProtection.from_secret(AES_128_GCM_SHA256, secret)


@pytest.mark.parametrize("where", [0, 3, 9, 100, -1])
def test_tampered_packet_raises_and_is_left_unchanged(pair, where):
    sender, receiver = pair
    buf = _short_packet(100)
    sender.protect_packet(buf, 9, 5, 4, 100, 0)
    buf[where] ^= 0x04  # header byte, DCID, payload or tag
    before = bytes(buf)
    with pytest.raises(CryptoError):
        receiver.unprotect_packet(buf, len(buf), 5, -1)
    assert bytes(buf) == before  # header protection and decryption both undone


def test_aead_open_wrong_tag_raises_and_restores_ciphertext():
    aead = Aead(AES_128_GCM_SHA256, bytes(16), bytes(12))
    buf = bytearray(b"hdr" + b"payload!" * 10 + bytes(16))
    aead.seal_into(buf, 3, 80, 5)
    buf[-1] ^= 1
    before = bytes(buf)
    with pytest.raises(CryptoError):
        aead.open_into(buf, 3, 96, 5)
    assert bytes(buf) == before
    buf[-1] ^= 1
    with pytest.raises(CryptoError):
        aead.open_into(buf, 3, 96, 6)  # wrong packet number: wrong nonce
    assert aead.open_into(buf, 3, 96, 5) == 80
    with pytest.raises(CryptoError):
        aead.open_into(bytearray(20), 3, 15, 0)  # shorter than a tag


def test_crypto_error_is_value_error():
    assert issubclass(CryptoError, ValueError)


def test_too_short_for_sample(pair):
    sender, receiver = pair
    # Protecting: pn_offset + 4 + 16 must fit in the protected packet, so a
    # 1-byte packet number needs at least 3 payload bytes (RFC 9001 5.4.2).
    buf = bytearray([0x40, 1, 2, 3, 4, 0] + [0] * 2 + [0] * 16)
    with pytest.raises(ValueError, match="sample"):
        sender.protect_packet(buf, 6, 5, 1, 2, 0)
    buf = bytearray([0x40, 1, 2, 3, 4, 0] + [0] * 3 + [0] * 16)
    assert sender.protect_packet(buf, 6, 5, 1, 3, 0) == 25  # exactly 5 + 4 + 16
    assert receiver.unprotect_packet(bytearray(buf), 25, 5, -1) == (0, 6, 3)
    # Unprotecting: one byte short of the sample.
    with pytest.raises(CryptoError, match="sample"):
        receiver.unprotect_packet(buf, 24, 5, -1)
    with pytest.raises(CryptoError, match="sample"):
        receiver.hp.remove_from(bytearray(24), 24, 5)


def test_argument_checks():
    with pytest.raises(ValueError):
        Aead(0x1304, bytes(16), bytes(12))  # AES-128-CCM: not offered
    with pytest.raises(ValueError):
        Aead(AES_128_GCM_SHA256, bytes(32), bytes(12))
    with pytest.raises(ValueError):
        Aead(AES_128_GCM_SHA256, bytes(16), bytes(8))
    with pytest.raises(ValueError):
        HeaderProtection(CHACHA20_POLY1305_SHA256, bytes(16))
    with pytest.raises(ValueError):
        initial_secrets(b"12345678", 0xFF00001D)
    with pytest.raises(ValueError):
        PacketProtection(Aead(AES_128_GCM_SHA256, bytes(16), bytes(12)), HeaderProtection(CHACHA20_POLY1305_SHA256, bytes(32)))
    pp = PacketProtection.from_secret(AES_128_GCM_SHA256, bytes(32))
    with pytest.raises(ValueError):
        pp.protect_packet(bytearray(40), 9, 5, 4, 100, 0)  # buffer too small
    with pytest.raises(BufferError):
        pp.protect_packet(bytes(200), 9, 5, 4, 100, 0)  # read-only
    with pytest.raises(ValueError):
        pp.protect_packet(bytearray(200), 9, 5, 5, 100, 0)  # pn_len > 4
    with pytest.raises(ValueError):
        pp.protect_packet(bytearray(200), 9, 4, 4, 100, 0)  # pn not the last header field
    pp.aead = None  # a cleared public attribute is an error, not a crash
    with pytest.raises(ValueError):
        pp.protect_packet(bytearray(200), 9, 5, 4, 100, 0)
    with pytest.raises(ValueError):
        pp.unprotect_packet(bytearray(200), 200, 5, -1)


# --- batch ------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_batch_equals_per_packet(suite):
    pp = PacketProtection.from_secret(suite, bytes(range(48 if suite == AES_256_GCM_SHA384 else 32)))
    count, segment, payload_len = 64, 1200, 1200 - 9 - 16
    rng = __import__("random").Random(1)
    plain = bytearray()
    for i in range(count):
        pkt = _short_packet(payload_len, pn=1000 + i)
        pkt[9 : 9 + payload_len] = rng.randbytes(payload_len)
        plain += pkt
    batch = bytearray(plain)
    assert pp.protect_segments(batch, count, segment, 9, 5, 4, payload_len, 1000) == segment
    single = bytearray(plain)
    view = memoryview(single)
    for i in range(count):
        pp.protect_packet(view[i * segment : (i + 1) * segment], 9, 5, 4, payload_len, 1000 + i)
    assert batch == single
    receiver = PacketProtection.from_secret(suite, bytes(range(48 if suite == AES_256_GCM_SHA384 else 32)))
    for i in range(count):
        pkt = view[i * segment : (i + 1) * segment]
        assert receiver.unprotect_packet(pkt, segment, 5, 1000 + i - 1) == (1000 + i, 9, payload_len)
        assert pkt[: segment - 16] == plain[i * segment : (i + 1) * segment - 16]


def test_batch_with_uneven_segments_and_empty_batch():
    pp = PacketProtection.from_secret(AES_128_GCM_SHA256, bytes(32))
    buf = bytearray(3 * 1452)
    # A 1000-byte payload in a 1452-byte segment: the tail of each segment is untouched.
    pp.protect_segments(buf, 3, 1452, 9, 5, 4, 1000, 0)
    assert buf[1025:1452] == bytes(427)
    assert pp.protect_segments(bytearray(), 0, 1452, 9, 5, 4, 1000, 0) == 1025
    with pytest.raises(ValueError):
        pp.protect_segments(bytearray(100), 2, 60, 9, 5, 4, 40, 0)  # 65-byte packets overlap


# --- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("version", [VERSION_1, VERSION_2])
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("long_header", [False, True])
def test_all_suites_round_trip(suite, version, long_header):
    secret = os.urandom(48 if suite == AES_256_GCM_SHA384 else 32)
    send = PacketProtection.from_secret(suite, secret, version)
    receive = PacketProtection.from_secret(suite, secret, version)
    first = 0xC3 if long_header else 0x43
    header = bytes([first]) + bytes(range(1, 23)) + (77).to_bytes(4, "big")
    payload = os.urandom(1200)
    buf = bytearray(header + payload + bytes(16))
    send.protect_packet(buf, len(header), len(header) - 4, 4, len(payload), 77)
    assert buf[0] & (0xF0 if long_header else 0xE0) == first & (0xF0 if long_header else 0xE0)
    assert receive.unprotect_packet(buf, len(buf), len(header) - 4, 76) == (77, len(header), len(payload))
    assert bytes(buf[: len(header) + len(payload)]) == header + payload


@settings(max_examples=200, deadline=None)
@given(
    suite=st.sampled_from(SUITES),
    payload=st.binary(min_size=0, max_size=1500),
    pn=st.integers(min_value=0, max_value=(1 << 62) - 1),
    pn_len=st.integers(min_value=1, max_value=4),
    dcid_len=st.integers(min_value=0, max_value=20),
    gap=st.integers(min_value=0, max_value=100),
)
def test_hypothesis_round_trip(suite, payload, pn, pn_len, dcid_len, gap):
    key_len = 16 if suite == AES_128_GCM_SHA256 else 32
    send = PacketProtection(Aead(suite, bytes([1]) * key_len, bytes([2]) * 12), HeaderProtection(suite, bytes([3]) * key_len))
    receive = PacketProtection(Aead(suite, bytes([1]) * key_len, bytes([2]) * 12), HeaderProtection(suite, bytes([3]) * key_len))
    # Pad so the sample fits (RFC 9001 section 5.4.2).
    payload = payload.ljust(4 - pn_len, b"\x00")
    pn_offset = 1 + dcid_len
    truncated = pn & ((1 << (8 * pn_len)) - 1)
    header = bytes([0x40 | (pn_len - 1)]) + bytes([0xDD]) * dcid_len + truncated.to_bytes(pn_len, "big")
    buf = bytearray(header + payload + bytes(16))
    assert send.protect_packet(buf, len(header), pn_offset, pn_len, len(payload), pn) == len(buf)
    # Any largest_pn within the decoding window recovers pn (RFC 9000 A.3).
    largest = max(pn - 1 - min(gap, (1 << (8 * pn_len - 1)) - 2), -1) if pn else -1
    assert receive.unprotect_packet(buf, len(buf), pn_offset, largest) == (pn, len(header), len(payload))
    assert bytes(buf[: len(header) + len(payload)]) == header + payload


# --- other derivations --------------------------------------------------------------


def test_stateless_reset_token():
    import hmac

    key = bytes(range(32))
    token = stateless_reset_token(key, b"\x01\x02\x03\x04")
    assert len(token) == 16
    assert token == hmac.digest(key, b"\x01\x02\x03\x04", "sha256")[:16]
    assert token == stateless_reset_token(key, b"\x01\x02\x03\x04")
    assert token != stateless_reset_token(key, b"\x01\x02\x03\x05")
    with pytest.raises(ValueError):
        stateless_reset_token(b"short", b"cid")


def test_aead_limits():
    # RFC 9001 section 6.6.
    assert confidentiality_limit(AES_128_GCM_SHA256) == 2**23
    assert integrity_limit(AES_256_GCM_SHA384) == 2**52
    assert integrity_limit(CHACHA20_POLY1305_SHA256) == 2**36
