"""Fuzz targets: one function per parser, shared by the atheris runner
(fuzz/fuzz.py), the corpus replay under AddressSanitizer (.ci/asan-fuzz)
and the normal test suite (tests/fuzz/test_fuzz_corpus.py).

Each target takes arbitrary bytes and returns normally when the input ended
in the parser's documented error or was accepted/ignored; anything else
(another exception, a crash, a hang) is a finding. The documented errors:

- ``packet_header``: `quicfast.proto.packet.pull_header` raises ValueError.
- ``frames``: the input is the plaintext payload of one 1-RTT packet sent to
  an established server engine; `receive_datagram` never raises, protocol
  errors close the connection with a `TransportError` (RFC 9000 §11, §20),
  a CONNECTION_CLOSE frame with the error it carries.
- ``transport_params``: `decode_transport_parameters` raises
  `TransportError(TRANSPORT_PARAMETER_ERROR)`.
- ``tls_messages``: the first byte picks a ``pull_*`` parser of
  `quicfast.tls.messages`; it raises `AlertError`.
- ``h3_frames``: HTTP/3 unidirectional and request streams from a peer into
  quicfast.h3's stream handlers (fuzz/h3_frames.py); they return, raise an
  `H3Error` or close the connection with an HTTP/3 error code (RFC 9114 §8).
"""

from __future__ import annotations

from quicfast.errors import ApplicationError, TransportError, TransportErrorCode
from quicfast.proto.packet import pull_header
from quicfast.proto.transport_params import decode_transport_parameters
from quicfast.tls import AlertError
from quicfast.tls import messages as tls_messages

from .h3_frames import h3_frames

TLS_PARSERS = [
    tls_messages.pull_client_hello,
    tls_messages.pull_server_hello,
    tls_messages.pull_encrypted_extensions,
    tls_messages.pull_certificate_request,
    tls_messages.pull_certificate,
    tls_messages.pull_certificate_verify,
    tls_messages.pull_finished,
    tls_messages.pull_new_session_ticket,
]


def packet_header(data: bytes) -> None:
    if not data:
        return
    cid_len = data[0] % 21
    try:
        pull_header(data[1:], cid_len)
    except ValueError:
        pass


def transport_params(data: bytes) -> None:
    if not data:
        return
    try:
        decode_transport_parameters(data[1:], from_server=bool(data[0] & 1))
    except TransportError as exc:
        if exc.error_code != TransportErrorCode.TRANSPORT_PARAMETER_ERROR:
            raise


def tls_messages_(data: bytes) -> None:
    if not data:
        return
    parser = TLS_PARSERS[data[0] % len(TLS_PARSERS)]
    try:
        parser(bytes(data[1:]))
    except AlertError:
        pass


_attacker = None


def frames(data: bytes) -> None:
    """One 1-RTT packet with `data` as its frames, into a live server engine
    (re-established after the previous input closed it)."""
    global _attacker
    from tests.hostile.attacker import established   # needs the repository root on sys.path

    if not data or len(data) > 60_000:
        return
    if _attacker is None or _attacker.server.is_closed or _attacker.server.close_error is not None:
        _attacker = established()
    _attacker.send(bytes(data))
    err = _attacker.server.close_error
    if err is not None and not isinstance(err, (TransportError, ApplicationError)):
        raise AssertionError(f"engine closed with {err!r}")


TARGETS = {
    "packet_header": packet_header,
    "frames": frames,
    "transport_params": transport_params,
    "tls_messages": tls_messages_,
    "h3_frames": h3_frames,
}
