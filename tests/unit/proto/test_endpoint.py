"""Tokens, stateless resets and VN decisions of quicfast.proto.endpoint."""

from quicfast.proto.endpoint import Endpoint, TokenCodec, build_stateless_reset
from quicfast.proto.packet import pull_header

ADDR = ("192.0.2.1", 4433)


def test_token_roundtrip_and_address_binding():
    codec = TokenCodec(b"k" * 32, max_age=60.0)
    token = codec.issue(ADDR, 100.0, original_dcid=b"odcid123", retry_scid=b"rscid")
    valid = codec.validate(token, ADDR, 101.0)
    assert valid is not None and valid.retry and valid.original_dcid == b"odcid123" and valid.retry_scid == b"rscid"
    assert codec.validate(token, ("192.0.2.2", 4433), 101.0) is None      # another address
    assert codec.validate(token, ("192.0.2.1", 4434), 101.0) is None      # another port
    assert codec.validate(token, ADDR, 111.0) is None                     # Retry tokens live 10 s at most
    tampered = bytearray(token)
    tampered[-1] ^= 1
    assert codec.validate(bytes(tampered), ADDR, 101.0) is None
    assert TokenCodec(b"x" * 32, 60.0).validate(token, ADDR, 101.0) is None  # another key


def test_new_token_expires_after_max_age():
    codec = TokenCodec(b"k" * 32, max_age=60.0)
    token = codec.issue(ADDR, 100.0)
    assert codec.validate(token, ADDR, 150.0) is not None
    assert not codec.validate(token, ADDR, 150.0).retry
    assert codec.validate(token, ("192.0.2.1", 5555), 150.0) is not None   # new port: still this client
    assert codec.validate(token, ("192.0.2.9", 4433), 150.0) is None       # another host
    assert codec.validate(token, ADDR, 161.0) is None


def test_garbage_tokens_rejected():
    codec = TokenCodec(b"k" * 32, max_age=60.0)
    for junk in (b"", b"R", b"N" + b"\0" * 60, bytes(range(200))):
        assert codec.validate(junk, ADDR, 0.0) is None


def test_stateless_reset_shape():
    token = bytes(range(16))
    reset = build_stateless_reset(token, 1200)
    assert reset.endswith(token) and 21 <= len(reset) < 1200 and reset[0] & 0xC0 == 0x40
    assert len(build_stateless_reset(token, 30)) == 29     # smaller than the trigger
    assert build_stateless_reset(token, 21) is None         # too small to answer


def test_stateless_resets_are_rate_limited():
    endpoint = Endpoint(8, b"s" * 32, b"t" * 32, 60.0)
    packet = b"\x40" + b"C" * 8 + b"\0" * 100
    sent = sum(endpoint.on_unknown_short(packet, 5.0) is not None for _ in range(500))
    assert sent == 100
    assert endpoint.on_unknown_short(packet, 6.0) is not None


def test_retry_packet_carries_token_and_new_cid():
    endpoint = Endpoint(8, b"s" * 32, b"t" * 32, 60.0)
    initial = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002") + bytes(1200)
    header = pull_header(initial)
    retry = endpoint.retry(header, ADDR, 10.0)
    info = pull_header(retry)
    assert info.packet_type == 3 and info.dcid == header.scid and len(info.scid) == 8
    valid = endpoint.tokens.validate(info.token, ADDR, 11.0)
    assert valid.retry and valid.original_dcid == header.dcid and valid.retry_scid == info.scid
