"""HelloRetryRequest, PSK resumption, 0-RTT accepted and rejected, mutual
TLS, session ticket storage and the key log."""

from __future__ import annotations

import ssl

import pytest

from quicfast.tls import (
    AlertError,
    ClientHandshake,
    Group,
    Level,
    ServerHandshake,
    SessionTicket,
    SessionTicketStore,
)

from quicfast.tls.session import ServerTicketState

from tls_testing import NOW, Pair, client_config, handshake, server_config


def test_hello_retry_request_when_client_share_unsupported(pki):
    client_cfg = client_config(pki, groups=[Group.X25519, Group.SECP256R1])
    client_cfg.key_share_count = 1   # only an x25519 share: the server must ask again
    server_cfg = server_config(pki, groups=[Group.SECP256R1])
    pair = handshake(client_cfg, server_cfg)
    assert pair.client.handshake_complete and pair.server.handshake_complete
    assert pair.client.group == pair.server.group == Group.SECP256R1
    assert pair.server._retry_cookie is not None
    pair.assert_secrets_match()


def test_default_groups_use_hybrid_post_quantum_share(pki):
    pair = handshake(client_config(pki), server_config(pki))
    assert pair.client.group == Group.X25519MLKEM768


def test_server_prefers_share_the_client_sent_over_retry(pki):
    client_cfg = client_config(pki, groups=[Group.X25519, Group.X25519MLKEM768])
    client_cfg.key_share_count = 1
    pair = handshake(client_cfg, server_config(pki))
    assert pair.server.group == Group.X25519
    assert pair.server._retry_cookie is None


def test_hello_retry_request_keeps_psk(pki):
    server_cfg = server_config(pki, groups=[Group.SECP384R1])
    client_cfg = client_config(pki, groups=[Group.X25519, Group.SECP384R1])
    first = handshake(client_cfg, server_cfg)
    ticket = first.tickets[0]
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    assert pair.client.session_resumed and pair.server.session_resumed
    assert not pair.client.early_data_accepted and not pair.server.early_data_accepted
    pair.assert_secrets_match()


def first_ticket(pki, server_cfg, client_cfg=None) -> tuple[SessionTicket, object]:
    client_cfg = client_cfg or client_config(pki)
    pair = handshake(client_cfg, server_cfg)
    assert len(pair.tickets) == 1
    return pair.tickets[0], client_cfg


def test_resumption_with_ticket(pki):
    server_cfg = server_config(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    assert ticket.server_name == "localhost" and ticket.alpn == "h3"
    assert ticket.max_early_data == 0
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket)
    assert pair.client.session_resumed and pair.server.session_resumed
    assert pair.client.peer_certificates == []
    assert pair.order["client"][0] == (Level.HANDSHAKE, False)
    pair.assert_secrets_match()


def test_resumption_from_store_pops_ticket(pki):
    server_cfg = server_config(pki)
    client_cfg = client_config(pki)
    handshake(client_cfg, server_cfg)
    assert len(client_cfg.session_ticket_store) == 1
    pair = handshake(client_cfg, server_cfg)
    assert pair.client.session_resumed
    # the resumed connection got a fresh ticket; the used one is gone
    assert len(client_cfg.session_ticket_store) == 1


def test_session_ticket_round_trips_to_bytes(pki):
    ticket, _ = first_ticket(pki, server_config(pki))
    ticket.other_data = b"\x01\x02engine"
    assert SessionTicket.from_bytes(ticket.to_bytes()) == ticket
    with pytest.raises(ValueError):
        SessionTicket.from_bytes(ticket.to_bytes()[:-1])


@pytest.mark.parametrize(
    "alpn, server_name, app_data",
    [("h3", "localhost", b"params"), (None, None, b""), ("\u00e9", "a" * 300, b"q" * 1000)],
)
def test_server_ticket_state_round_trips_and_rejects_truncation(alpn, server_name, app_data):
    state = ServerTicketState(0x1301, b"k" * 32, NOW, 7, 86400, 0, alpn, server_name, app_data)
    data = state.to_bytes()
    assert ServerTicketState.from_bytes(data) == state
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            ServerTicketState.from_bytes(data[:cut])
    with pytest.raises(ValueError):
        ServerTicketState.from_bytes(data + b"\x00")


def test_expired_ticket_is_not_offered(pki):
    server_cfg = server_config(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    client_cfg.clock = lambda: NOW + ticket.lifetime + 1
    client_cfg.load_verify_locations(cadata=pki.ca_pem)
    pair = handshake(client_cfg, server_config(pki, clock=lambda: NOW + ticket.lifetime + 1),
                     session_ticket=ticket)
    assert not pair.client.session_resumed


def test_ticket_from_other_server_key_falls_back_to_full_handshake(pki):
    ticket, client_cfg = first_ticket(pki, server_config(pki))
    pair = handshake(client_cfg, server_config(pki), session_ticket=ticket)
    assert not pair.server.session_resumed and not pair.client.session_resumed
    assert pair.client.handshake_complete


def test_ticket_key_rotation_accepts_previous_key(pki):
    times = [NOW]
    server_cfg = server_config(pki, clock=lambda: times[0], ticket_key_rotation=100.0)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    times[0] = NOW + 150  # the key rotates on next issue; previous still accepted
    client_cfg.clock = lambda: times[0]
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket)
    assert pair.server.session_resumed
    times[0] = NOW + 350  # two rotations later the first key is gone
    handshake(client_cfg, server_cfg)
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket)
    assert not pair.server.session_resumed


def early_data_server(pki, **overrides):
    return server_config(pki, allow_early_data=True, **overrides)


def test_zero_rtt_accepted(pki):
    server_cfg = early_data_server(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    assert ticket.max_early_data == 0xFFFFFFFF
    client = ClientHandshake(client_cfg, "localhost", b"client-params",
                             session_ticket=ticket, early_data=True)
    server = ServerHandshake(server_cfg)
    server.transport_parameters = b"server-params"
    server.ticket_app_data = b"zero-rtt-params"
    pair = Pair(client, server).run()
    assert pair.client.early_data_accepted and pair.server.early_data_accepted
    assert pair.order["client"][0] == (Level.ZERO_RTT, True)
    assert pair.order["server"][0] == (Level.ZERO_RTT, False)
    assert pair.secrets[("client", Level.ZERO_RTT, True)] == pair.secrets[
        ("server", Level.ZERO_RTT, False)]
    assert server.resumed_app_data == b""
    pair.assert_secrets_match()


def test_resumed_app_data_round_trips_through_ticket(pki):
    server_cfg = early_data_server(pki)
    client_cfg = client_config(pki)
    client = ClientHandshake(client_cfg, "localhost", b"client-params")
    server = ServerHandshake(server_cfg, b"server-params")
    server.ticket_app_data = b"remembered transport parameters"
    pair = Pair(client, server).run()
    pair2 = handshake(client_cfg, server_cfg, session_ticket=pair.tickets[0], early_data=True)
    assert pair2.server.resumed_app_data == b"remembered transport parameters"


def test_zero_rtt_rejected_when_server_not_configured(pki):
    server_cfg = server_config(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    ticket.max_early_data = 0xFFFFFFFF  # pretend the ticket allowed it
    server_cfg.allow_early_data = False
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    assert (Level.ZERO_RTT, True) in pair.order["client"]
    assert pair.client.session_resumed
    assert not pair.client.early_data_accepted and not pair.server.early_data_accepted
    assert ("server", Level.ZERO_RTT, False) not in pair.secrets


def test_zero_rtt_rejected_on_ticket_replay(pki):
    server_cfg = early_data_server(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    first = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    assert first.server.early_data_accepted
    replay = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    assert replay.server.session_resumed
    assert not replay.server.early_data_accepted and not replay.client.early_data_accepted


def test_zero_rtt_rejected_when_ticket_age_is_stale(pki):
    times = [NOW]
    server_cfg = early_data_server(pki, clock=lambda: times[0])
    ticket, client_cfg = first_ticket(pki, server_cfg)
    ticket.age_add = (ticket.age_add + 60_000) & 0xFFFFFFFF  # client age off by 60 s
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    assert pair.server.session_resumed and not pair.server.early_data_accepted


def test_zero_rtt_not_offered_without_early_data_flag(pki):
    server_cfg = early_data_server(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket)
    assert ("client", Level.ZERO_RTT, True) not in pair.secrets
    assert pair.client.session_resumed


def test_send_session_ticket_on_demand(pki):
    pair = handshake(client_config(pki), server_config(pki, session_tickets=False))
    assert pair.tickets == []
    pair.server.send_session_ticket()
    pair.server.send_session_ticket()
    pair.flush(pair.server, pair.client)
    assert len(pair.tickets) == 2
    assert pair.tickets[0].ticket != pair.tickets[1].ticket


def test_session_ticket_store_is_bounded_and_single_use():
    store = SessionTicketStore(max_per_server=2, max_servers=2)

    def ticket(name, n):
        return SessionTicket(bytes([n]), name, 0x1301, b"s" * 32, 0, 100, NOW, NOW + 100)

    for n in range(3):
        store.add(ticket("a", n))
    store.add(ticket("b", 9))
    store.add(ticket("c", 8))
    assert store.pop("a", NOW) is None  # evicted with its server entry
    assert store.pop("c", NOW).ticket == b"\x08"
    assert store.pop("c", NOW) is None
    assert store.pop("b", NOW + 1000) is None  # expired


def test_mutual_tls(pki):
    client_cfg = client_config(pki)
    client_cfg.set_certificate_chain(pki.client.chain, pki.client.key)
    server_cfg = server_config(pki, verify_mode=ssl.CERT_REQUIRED)
    server_cfg.load_verify_locations(cadata=pki.ca_pem)
    pair = handshake(client_cfg, server_cfg)
    assert pair.server.handshake_complete
    assert pair.server.peer_certificates[0] == pki.client.certificate
    pair.assert_secrets_match()


def test_mutual_tls_optional_without_client_certificate(pki):
    server_cfg = server_config(pki, verify_mode=ssl.CERT_OPTIONAL)
    server_cfg.load_verify_locations(cadata=pki.ca_pem)
    pair = handshake(client_config(pki), server_cfg)
    assert pair.server.handshake_complete and pair.server.peer_certificates == []


def test_mutual_tls_required_without_client_certificate(pki):
    server_cfg = server_config(pki, verify_mode=ssl.CERT_REQUIRED)
    server_cfg.load_verify_locations(cadata=pki.ca_pem)
    with pytest.raises(AlertError) as info:
        handshake(client_config(pki), server_cfg)
    assert info.value.description == 116  # certificate_required


def test_mutual_tls_client_from_unknown_ca(pki):
    client_cfg = client_config(pki)
    client_cfg.set_certificate_chain(pki.foreign.chain, pki.foreign.key)
    server_cfg = server_config(pki, verify_mode=ssl.CERT_REQUIRED)
    server_cfg.load_verify_locations(cadata=pki.ca_pem)
    client = ClientHandshake(client_cfg, "localhost", b"c")
    server = ServerHandshake(server_cfg, b"s")
    with pytest.raises(AlertError) as info:
        Pair(client, server).run()
    assert info.value.description == 48  # unknown_ca
    assert client.handshake_complete and not server.handshake_complete


def test_keylog_file(pki, tmp_path):
    path = tmp_path / "keys.log"
    server_cfg = early_data_server(pki)
    ticket, client_cfg = first_ticket(pki, server_cfg)
    client_cfg.keylog_filename = str(path)
    pair = handshake(client_cfg, server_cfg, session_ticket=ticket, early_data=True)
    lines = path.read_text().splitlines()
    labels = [line.split()[0] for line in lines]
    assert labels == [
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "EXPORTER_SECRET",
        "SERVER_TRAFFIC_SECRET_0",
        "CLIENT_TRAFFIC_SECRET_0",
    ]
    random_hex = pair.client._client_random.hex()
    assert all(line.split()[1] == random_hex for line in lines)
    assert lines[0].split()[2] == pair.secrets[("client", Level.ZERO_RTT, True)].hex()
    assert lines[3].split()[2] == pair.server._exporter_secret().hex()
    assert lines[5].split()[2] == pair.secrets[("client", Level.ONE_RTT, True)].hex()


def test_get_config_for_client_switches_certificate(pki):
    other = server_config(pki, pki.leaves["ed25519"])
    seen = []

    def choose(info):
        seen.append((info.server_name, info.alpn_protocols, info.remote_address))
        return other

    server_cfg = server_config(pki, get_config_for_client=choose)
    client = ClientHandshake(client_config(pki), "localhost", b"c")
    server = ServerHandshake(server_cfg, b"s", remote_address=("192.0.2.1", 4433))
    pair = Pair(client, server).run()
    assert seen == [("localhost", ["h3"], ("192.0.2.1", 4433))]
    assert pair.client.peer_certificates[0] == pki.leaves["ed25519"].certificate


def test_ip_address_server_name(pki):
    pair = handshake(client_config(pki), server_config(pki, pki.ip_leaf), server_name="127.0.0.1")
    assert pair.client.handshake_complete
    assert pair.server.server_name is None  # no SNI for IP literals


def test_insecure_client_skips_verification(pki):
    pair = handshake(client_config(pki, verify_mode=ssl.CERT_NONE), server_config(pki, pki.foreign))
    assert pair.client.handshake_complete
