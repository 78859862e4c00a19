import pickle

import pytest

from quicfast import errors
from quicfast.errors import (
    ApplicationError,
    ConnectionClosedError,
    DatagramNotSupportedError,
    DatagramTooLargeError,
    H3ErrorCode,
    HandshakeTimeoutError,
    IdleTimeoutError,
    QuicError,
    ServerClosed,
    ServerClosedError,
    StatelessResetError,
    StreamError,
    StreamLimitReachedError,
    StreamStateError,
    TransportClosedError,
    TransportError,
    TransportErrorCode,
    VersionNegotiationError,
    ZeroRTTRejected,
    ZeroRTTRejectedError,
    crypto_error,
    transport_error_name,
)

# RFC 9000 §20.1 plus RFC 9368 §10.2.
RFC_TRANSPORT_CODES = {
    "NO_ERROR": 0x00,
    "INTERNAL_ERROR": 0x01,
    "CONNECTION_REFUSED": 0x02,
    "FLOW_CONTROL_ERROR": 0x03,
    "STREAM_LIMIT_ERROR": 0x04,
    "STREAM_STATE_ERROR": 0x05,
    "FINAL_SIZE_ERROR": 0x06,
    "FRAME_ENCODING_ERROR": 0x07,
    "TRANSPORT_PARAMETER_ERROR": 0x08,
    "CONNECTION_ID_LIMIT_ERROR": 0x09,
    "PROTOCOL_VIOLATION": 0x0A,
    "INVALID_TOKEN": 0x0B,
    "APPLICATION_ERROR": 0x0C,
    "CRYPTO_BUFFER_EXCEEDED": 0x0D,
    "KEY_UPDATE_ERROR": 0x0E,
    "AEAD_LIMIT_REACHED": 0x0F,
    "NO_VIABLE_PATH": 0x10,
    "VERSION_NEGOTIATION_ERROR": 0x11,
    "CRYPTO_ERROR": 0x100,
}

# RFC 9114 §8.1, RFC 9204 §6.
RFC_H3_CODES = {
    "H3_NO_ERROR": 0x100,
    "H3_GENERAL_PROTOCOL_ERROR": 0x101,
    "H3_INTERNAL_ERROR": 0x102,
    "H3_STREAM_CREATION_ERROR": 0x103,
    "H3_CLOSED_CRITICAL_STREAM": 0x104,
    "H3_FRAME_UNEXPECTED": 0x105,
    "H3_FRAME_ERROR": 0x106,
    "H3_EXCESSIVE_LOAD": 0x107,
    "H3_ID_ERROR": 0x108,
    "H3_SETTINGS_ERROR": 0x109,
    "H3_MISSING_SETTINGS": 0x10A,
    "H3_REQUEST_REJECTED": 0x10B,
    "H3_REQUEST_CANCELLED": 0x10C,
    "H3_REQUEST_INCOMPLETE": 0x10D,
    "H3_MESSAGE_ERROR": 0x10E,
    "H3_CONNECT_ERROR": 0x10F,
    "H3_VERSION_FALLBACK": 0x110,
    "QPACK_DECOMPRESSION_FAILED": 0x200,
    "QPACK_ENCODER_STREAM_ERROR": 0x201,
    "QPACK_DECODER_STREAM_ERROR": 0x202,
}


@pytest.mark.parametrize("name,value", RFC_TRANSPORT_CODES.items())
def test_transport_codes_match_rfc(name, value):
    assert TransportErrorCode[name] == value


@pytest.mark.parametrize("name,value", RFC_H3_CODES.items())
def test_h3_codes_match_rfc(name, value):
    assert H3ErrorCode[name] == value


def test_crypto_error_maps_tls_alerts():
    assert crypto_error(0) == 0x100
    assert crypto_error(42) == 0x12A  # bad_certificate
    assert crypto_error(120) == 0x178  # no_application_protocol
    assert crypto_error(255) == 0x1FF
    for bad in (-1, 256):
        with pytest.raises(ValueError):
            crypto_error(bad)


def test_transport_error_name():
    assert transport_error_name(0x3) == "FLOW_CONTROL_ERROR"
    assert transport_error_name(0x11) == "VERSION_NEGOTIATION_ERROR"
    assert transport_error_name(0x100) == "CRYPTO_ERROR(alert 0)"
    assert transport_error_name(0x178) == "CRYPTO_ERROR(alert 120)"
    assert transport_error_name(0x1234) == "0x1234"


def test_transport_error_fields_and_message():
    err = TransportError(TransportErrorCode.FLOW_CONTROL_ERROR, 0x08, "stream data beyond limit", remote=True)
    assert (err.error_code, err.frame_type, err.reason, err.remote) == (0x3, 0x8, "stream data beyond limit", True)
    assert str(err) == "transport error FLOW_CONTROL_ERROR (remote), frame type 0x8: stream data beyond limit"
    local = TransportError(0x2A5, reason="")
    assert local.frame_type is None and local.remote is False
    assert str(local) == "transport error 0x2a5 (local)"
    assert str(TransportError(crypto_error(40), 0x06, "handshake failure")) == (
        "transport error CRYPTO_ERROR(alert 40) (local), frame type 0x6: handshake failure"
    )


def test_application_error_message():
    err = ApplicationError(H3ErrorCode.H3_REQUEST_CANCELLED, "bye", remote=True)
    assert (err.error_code, err.reason, err.remote) == (0x10C, "bye", True)
    assert str(err) == "application error 0x10c (remote): bye"
    assert str(ApplicationError(7)) == "application error 0x7 (local)"


def test_timeouts_are_builtin_timeouts_and_connection_closed():
    for cls in (IdleTimeoutError, HandshakeTimeoutError):
        err = cls()
        assert isinstance(err, TimeoutError)
        assert isinstance(err, ConnectionClosedError)
        assert "timeout" in str(err)
    with pytest.raises(TimeoutError):
        raise IdleTimeoutError()


def test_connection_ending_errors_share_a_base():
    for err in (
        TransportError(1),
        ApplicationError(1),
        IdleTimeoutError(),
        HandshakeTimeoutError(),
        StatelessResetError(bytes(16)),
        VersionNegotiationError([1], [0x6B3343CF]),
    ):
        assert isinstance(err, ConnectionClosedError)
        assert isinstance(err, QuicError)
    for err in (
        StreamError(4, 0, True),
        StreamLimitReachedError(),
        DatagramTooLargeError(1000),
        DatagramNotSupportedError(),
        StreamStateError("stream 3 has no receiving half"),
        ZeroRTTRejectedError(),
        ServerClosedError(),
        TransportClosedError(),
    ):
        assert isinstance(err, QuicError)
        assert not isinstance(err, ConnectionClosedError)


def test_messages_of_the_other_errors():
    assert str(StatelessResetError(bytes(range(16)))) == (
        "received a stateless reset with token 000102030405060708090a0b0c0d0e0f"
    )
    vn = VersionNegotiationError([0x00000001, 0x6B3343CF], (0xFF00001D,))
    assert vn.ours == (1, 0x6B3343CF) and vn.theirs == (0xFF00001D,)
    assert str(vn) == (
        "no compatible QUIC version found (we support [0x00000001, 0x6b3343cf], server offered [0xff00001d])"
    )
    reset = StreamError(4, 0x10C, remote=True, kind="reset")
    assert (reset.stream_id, reset.error_code, reset.remote, reset.kind) == (4, 0x10C, True, "reset")
    assert str(reset) == "stream 4 reset by peer with error code 0x10c"
    assert str(StreamError(2, 5, remote=True, kind="stop_sending")) == (
        "stream 2 stopped (STOP_SENDING) by peer with error code 0x5"
    )
    assert str(StreamError(3, 0, remote=False, kind="closed")) == "stream 3 closed locally with error code 0x0"
    assert str(StreamLimitReachedError(100, bidirectional=False)) == (
        "too many open unidirectional streams (peer allows 100)"
    )
    assert DatagramTooLargeError(1180).max_size == 1180
    assert "1180" in str(DatagramTooLargeError(1180))
    assert str(ZeroRTTRejectedError()) == "0-RTT rejected"
    assert str(ServerClosedError()) == "server closed"
    assert str(TransportClosedError()) == "transport closed"
    assert str(DatagramNotSupportedError()) == "DATAGRAM frames are not supported on this connection"
    assert str(DatagramNotSupportedError("peer sent no max_datagram_frame_size")) == "peer sent no max_datagram_frame_size"
    assert str(StreamStateError("stream 3 has no receiving half")) == "stream 3 has no receiving half"
    assert str(ConnectionClosedError("connection is closed")) == "connection is closed"


def test_short_aliases():
    assert ZeroRTTRejected is ZeroRTTRejectedError
    assert ServerClosed is ServerClosedError


_SAMPLES = [
    TransportError(0xA, 0x1, "bad", True),
    ApplicationError(3, "x", True),
    StatelessResetError(b"t" * 16),
    VersionNegotiationError([1], [2]),
    StreamError(0, 1, False, "closed"),
    StreamLimitReachedError(5, False),
    DatagramTooLargeError(9),
    IdleTimeoutError(),
]


@pytest.mark.parametrize("err", _SAMPLES)
def test_errors_pickle(err):
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)


@pytest.mark.parametrize("err", _SAMPLES)
def test_a_fresh_copy_is_the_same_error_without_the_traceback(err):
    try:
        raise err
    except QuicError:
        pass
    copy = errors.fresh_copy(err)
    assert copy is not err and type(copy) is type(err)
    assert (copy.args, copy.__dict__, str(copy)) == (err.args, err.__dict__, str(err))
    assert err.__traceback__ is not None and copy.__traceback__ is None


def test_every_public_class_documents_when_it_is_raised():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, QuicError) and obj is not QuicError:
            assert obj.__doc__ and "Raised" in obj.__doc__, name
