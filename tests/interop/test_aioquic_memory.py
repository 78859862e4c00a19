"""quicfast's engine against aioquic's QuicConnection, joined in memory
with a simulated clock: handshake and a bulk transfer in both directions."""

import hashlib
import os

import pytest

from quicfast.proto import events
from tests.helpers.engines import (
    ALPN, CLIENT_ADDR, SERVER_ADDR, drain_events, quicfast_client, quicfast_server_for, server_tls,
)
from tests.helpers.certs import pki_paths

aioquic = pytest.importorskip("aioquic", reason="aioquic (a test dependency) is not installed")
from aioquic.quic import events as aev  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.connection import QuicConnection  # noqa: E402

MAX_ROUNDS = 3000


def run_timers(conn, now):
    t = conn.get_timer()
    if t is not None and t <= now:
        conn.handle_timer(now)


@pytest.mark.parametrize("size", [0, 100, 3_000_000])
def test_quicfast_client_uploads_to_aioquic_server(size):
    payload = os.urandom(size)
    client = quicfast_client()
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
    server = QuicConnection(configuration=config,
                            original_destination_connection_id=client.original_destination_connection_id)
    now = 0.0
    client.connect(SERVER_ADDR, now)
    received, done, handshake = bytearray(), False, None
    for _ in range(MAX_ROUNDS):
        now += 0.001
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT_ADDR, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER_ADDR, now)
        for event in drain_events(client):
            if isinstance(event, events.HandshakeCompleted):
                handshake = event
                sid = client.open_stream()
                client.send_stream_data(sid, payload, end_stream=True)
        for event in drain_events(server):
            if isinstance(event, aev.StreamDataReceived):
                received += event.data
                done = done or event.end_stream
        run_timers(client, now)
        run_timers(server, now)
        if done:
            break
    assert handshake is not None and handshake.alpn_protocol == ALPN
    assert done
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("size", [1, 3_000_000])
def test_aioquic_client_downloads_from_quicfast_server(size):
    payload = os.urandom(size)
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
    config.load_verify_locations(pki_paths().ca_file)
    client = QuicConnection(configuration=config)
    now = 0.0
    client.connect(SERVER_ADDR, now)
    server = None
    received, done = bytearray(), False
    for _ in range(MAX_ROUNDS):
        now += 0.001
        for data, _ in client.datagrams_to_send(now):
            if server is None:
                server = quicfast_server_for(data)
            server.receive_datagram(data, CLIENT_ADDR, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER_ADDR, now)
        for event in drain_events(client):
            if isinstance(event, aev.HandshakeCompleted):
                client.send_stream_data(client.get_next_available_stream_id(), b"GET", end_stream=True)
            elif isinstance(event, aev.StreamDataReceived):
                received += event.data
                done = done or event.end_stream
        for event in drain_events(server):
            if isinstance(event, events.StreamDataAvailable):
                request, fin = server.read_stream(event.stream_id)
                if fin:
                    assert request == b"GET"
                    server.send_stream_data(event.stream_id, payload, end_stream=True)
        run_timers(client, now)
        run_timers(server, now)
        if done:
            break
    assert done
    assert bytes(received) == payload


def test_application_close_code_reaches_aioquic():
    client = quicfast_client()
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
    server = QuicConnection(configuration=config,
                            original_destination_connection_id=client.original_destination_connection_id)
    now = 0.0
    client.connect(SERVER_ADDR, now)
    terminated = None
    closed = False
    for _ in range(2000):
        now += 0.001
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT_ADDR, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER_ADDR, now)
        for event in drain_events(client):
            if isinstance(event, events.HandshakeConfirmed) and not closed:
                client.close(0x1234, "bye")
                closed = True
        for event in drain_events(server):
            if isinstance(event, aev.ConnectionTerminated):
                terminated = event
        run_timers(client, now)
        run_timers(server, now)
        if terminated:
            break
    assert terminated is not None
    assert terminated.error_code == 0x1234 and terminated.reason_phrase == "bye"
