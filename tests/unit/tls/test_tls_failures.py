"""Failures raise AlertError with the right description on the side that
detects them; partial delivery works; garbage never raises anything else."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quicfast.tls import AlertError, ClientHandshake, Level, ServerHandshake
from quicfast.tls import messages as m

from tls_testing import NOW, Pair, client_config, handshake, server_config

UNEXPECTED_MESSAGE = 10
BAD_CERTIFICATE = 42
CERTIFICATE_EXPIRED = 45
ILLEGAL_PARAMETER = 47
UNKNOWN_CA = 48
DECODE_ERROR = 50
DECRYPT_ERROR = 51
PROTOCOL_VERSION = 70
INTERNAL_ERROR = 80
MISSING_EXTENSION = 109
NO_APPLICATION_PROTOCOL = 120


def pair_for(pki, client_cfg=None, server_cfg=None, server_name="localhost", tp=b"client-params"):
    client = ClientHandshake(client_cfg or client_config(pki), server_name, tp)
    server = ServerHandshake(server_cfg or server_config(pki), b"server-params")
    return Pair(client, server)


def split_messages(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        out.append(data[pos : pos + 4 + length])
        pos += 4 + length
    return out


def expect_alert(description, action):
    with pytest.raises(AlertError) as info:
        action()
    assert info.value.description == description, info.value
    return info.value


def test_unknown_ca_detected_by_client(pki):
    pair = pair_for(pki, server_cfg=server_config(pki, pki.foreign))
    error = expect_alert(UNKNOWN_CA, pair.run)
    assert "unknown CA" in error.message
    assert not pair.server.handshake_complete


def test_hostname_mismatch_detected_by_client(pki):
    pair = pair_for(pki, server_name="example.org")
    error = expect_alert(BAD_CERTIFICATE, pair.run)
    assert "hostname mismatch" in error.message


def test_hostname_not_checked_when_disabled(pki):
    pair = handshake(client_config(pki, check_hostname=False), server_config(pki),
                     server_name="example.org")
    assert pair.client.handshake_complete


def test_expired_certificate_detected_by_client(pki):
    pair = pair_for(pki, server_cfg=server_config(pki, pki.expired))
    error = expect_alert(CERTIFICATE_EXPIRED, pair.run)
    assert "expired" in error.message


def test_certificate_expired_by_client_clock(pki):
    later = datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    pair = pair_for(pki, client_cfg=client_config(pki, clock=lambda: later))
    expect_alert(CERTIFICATE_EXPIRED, pair.run)


def test_verify_callback_can_reject(pki):
    calls = []

    def reject(certs, name):
        calls.append((len(certs), name))
        return False

    pair = pair_for(pki, client_cfg=client_config(pki, verify_callback=reject))
    expect_alert(BAD_CERTIFICATE, pair.run)
    assert calls == [(1, "localhost")]


def test_no_alpn_overlap_detected_by_server(pki):
    client_cfg = client_config(pki)
    client_cfg.set_alpn_protocols(["hq-interop"])
    pair = pair_for(pki, client_cfg=client_cfg)
    error = expect_alert(NO_APPLICATION_PROTOCOL, pair.run)
    assert "hq-interop" in error.message


def test_missing_transport_parameters_detected_by_server(pki):
    pair = pair_for(pki, tp=None)
    error = expect_alert(MISSING_EXTENSION, pair.run)
    assert "quic_transport_parameters" in error.message


def test_missing_transport_parameters_detected_by_client(pki):
    pair = pair_for(pki)
    pair.client.start()
    pair.flush(pair.client, pair.server)
    pair.client.receive(Level.INITIAL, bytes(pair.server.output[Level.INITIAL]))
    messages = split_messages(bytes(pair.server.output[Level.HANDSHAKE]))
    messages[0] = m.push_encrypted_extensions(m.EncryptedExtensions(alpn_protocol="h3"))
    error = expect_alert(MISSING_EXTENSION, lambda: pair.client.receive(Level.HANDSHAKE, b"".join(messages)))
    assert "quic_transport_parameters" in error.message


def server_flight(pki):
    pair = pair_for(pki)
    pair.client.start()
    pair.flush(pair.client, pair.server)
    return pair, bytes(pair.server.output[Level.INITIAL]), bytes(pair.server.output[Level.HANDSHAKE])


def test_bad_server_finished_detected_by_client(pki):
    pair, initial, handshake_data = server_flight(pki)
    pair.client.receive(Level.INITIAL, initial)
    tampered = handshake_data[:-1] + bytes([handshake_data[-1] ^ 1])
    expect_alert(DECRYPT_ERROR, lambda: pair.client.receive(Level.HANDSHAKE, tampered))
    # the handshake is dead afterwards
    with pytest.raises(AlertError):
        pair.client.receive(Level.HANDSHAKE, b"\x14\x00\x00\x00")


def test_bad_client_finished_detected_by_server(pki):
    pair, initial, handshake_data = server_flight(pki)
    pair.client.receive(Level.INITIAL, initial)
    pair.client.receive(Level.HANDSHAKE, handshake_data)
    finished = bytearray(pair.client.output[Level.HANDSHAKE])
    finished[-1] ^= 0x80
    expect_alert(DECRYPT_ERROR, lambda: pair.server.receive(Level.HANDSHAKE, bytes(finished)))


def test_bad_certificate_verify_signature(pki):
    pair, initial, handshake_data = server_flight(pki)
    pair.client.receive(Level.INITIAL, initial)
    messages = split_messages(handshake_data)
    verify = m.pull_certificate_verify(messages[2])
    signature = bytearray(verify.signature)
    signature[-1] ^= 1
    messages[2] = m.push_certificate_verify(m.CertificateVerify(verify.algorithm, bytes(signature)))
    expect_alert(DECRYPT_ERROR, lambda: pair.client.receive(Level.HANDSHAKE, b"".join(messages)))


def test_byte_by_byte_delivery(pki):
    pair, initial, handshake_data = server_flight(pki)
    for i in range(len(initial)):
        pair.client.receive(Level.INITIAL, initial[i : i + 1])
    for i in range(0, len(handshake_data), 7):
        pair.client.receive(Level.HANDSHAKE, handshake_data[i : i + 7])
    assert pair.client.handshake_complete


def test_data_at_wrong_level_is_unexpected(pki):
    pair, initial, handshake_data = server_flight(pki)
    expect_alert(UNEXPECTED_MESSAGE, lambda: pair.client.receive(Level.HANDSHAKE, handshake_data))


def test_message_spanning_key_change_is_unexpected(pki):
    pair, initial, handshake_data = server_flight(pki)
    expect_alert(UNEXPECTED_MESSAGE, lambda: pair.client.receive(Level.INITIAL, initial + b"\x08"))


def test_key_update_is_unexpected_message(pki):
    pair = handshake(client_config(pki), server_config(pki))
    expect_alert(UNEXPECTED_MESSAGE, lambda: pair.client.receive(Level.ONE_RTT, b"\x18\x00\x00\x01\x00"))


def test_post_handshake_data_to_server_is_unexpected(pki):
    pair = handshake(client_config(pki), server_config(pki))
    expect_alert(UNEXPECTED_MESSAGE, lambda: pair.server.receive(Level.ONE_RTT, b"\x18\x00\x00\x01\x00"))


def test_oversized_message_is_decode_error(pki):
    server = ServerHandshake(server_config(pki), b"s")
    expect_alert(DECODE_ERROR, lambda: server.receive(Level.INITIAL, b"\x01\x02\x00\x00"))


def client_hello(pki, **changes) -> bytes:
    client = ClientHandshake(client_config(pki), "localhost", b"params")
    client.start()
    hello = m.pull_client_hello(bytes(client.output[Level.INITIAL]))
    for name, value in changes.items():
        setattr(hello, name, value)
    return m.push_client_hello(hello)


def server_receives(pki, data: bytes) -> ServerHandshake:
    server = ServerHandshake(server_config(pki), b"s")
    server.receive(Level.INITIAL, data)
    return server


def test_legacy_session_id_rejected(pki):
    data = client_hello(pki, legacy_session_id=b"x" * 32)
    expect_alert(ILLEGAL_PARAMETER, lambda: server_receives(pki, data))


def test_tls12_only_client_rejected(pki):
    data = client_hello(pki, supported_versions=[0x0303])
    expect_alert(PROTOCOL_VERSION, lambda: server_receives(pki, data))


def append_extension(message: bytes, extension: bytes) -> bytes:
    """Add a raw extension at the end of a ClientHello's extension block."""
    hello = m.pull_client_hello(message)
    block = (4 + 2 + 32 + 1 + len(hello.legacy_session_id) + 2 + 2 * len(hello.cipher_suites)
             + 1 + len(hello.legacy_compression_methods))
    block_length = int.from_bytes(message[block : block + 2], "big") + len(extension)
    body = message[4:block] + block_length.to_bytes(2, "big") + message[block + 2 :] + extension
    return m.handshake_message(1, body)


def test_duplicate_extension_rejected(pki):
    twice = append_extension(client_hello(pki, early_data=True), b"\x00\x2a\x00\x00")
    expect_alert(ILLEGAL_PARAMETER, lambda: server_receives(pki, twice))


def test_malformed_extension_is_decode_error(pki):
    # cookie (44) whose 2-byte length prefix is cut short (psk_key_exchange_modes,
    # used before, is now in every ClientHello, so appending it is a duplicate).
    bad = append_extension(client_hello(pki), b"\x00\x2c\x00\x01\x05")
    expect_alert(DECODE_ERROR, lambda: server_receives(pki, bad))


def test_pre_shared_key_must_be_last(pki):
    hello = m.pull_client_hello(client_hello(pki))
    hello.psk_key_exchange_modes = [1]
    hello.pre_shared_key = m.OfferedPsks([(b"ticket", 0)], [bytes(32)])
    moved = append_extension(m.push_client_hello(hello), b"\xfa\xfa\x00\x00")
    expect_alert(ILLEGAL_PARAMETER, lambda: server_receives(pki, moved))


def test_unknown_extension_ignored_by_server(pki):
    grease = append_extension(client_hello(pki), b"\x0a\x0a\x00\x01\x00")
    server = server_receives(pki, grease)
    assert server.output[Level.INITIAL]


# --- fuzzing: only AlertError, never anything else -----------------------------------

PARSERS = [
    m.pull_client_hello,
    m.pull_server_hello,
    m.pull_encrypted_extensions,
    m.pull_certificate_request,
    m.pull_certificate,
    m.pull_certificate_verify,
    m.pull_new_session_ticket,
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARSERS), st.binary(max_size=300))
def test_parsers_raise_only_alert_error(parser, body):
    try:
        parser(m.handshake_message(1, body))
    except AlertError:
        pass


@pytest.fixture(scope="module")
def valid_hello(pki):
    return client_hello(pki)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_client_hello_raises_only_alert_error(pki, valid_hello, data):
    message = bytearray(valid_hello)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(message) - 1))
        message[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(message)))
    server = ServerHandshake(server_config(pki), b"s")
    try:
        server.receive(Level.INITIAL, bytes(message[:cut]))
    except AlertError as error:
        assert error.description != INTERNAL_ERROR, error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_server_flight_raises_only_alert_error(pki, data):
    pair, initial, handshake_data = server_flight(pki)
    flight = bytearray(handshake_data)  # its length varies with the signature
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, 1 << 16)) % len(flight)
        flight[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 1 << 16)) % (len(flight) + 1)
    try:
        pair.client.receive(Level.INITIAL, initial)
        pair.client.receive(Level.HANDSHAKE, bytes(flight[:cut]))
    except AlertError as error:
        assert error.description != INTERNAL_ERROR, error
