"""CPU time of TLS 1.3 handshakes for QUIC: quicfast.tls vs aioquic.tls.

Runs, in one process and side by side, a full in-memory client+server
handshake (x25519, AES-128-GCM, ECDSA P-256 certificate verified against a
test CA) and a resumed one (PSK with x25519), and prints the CPU time per
handshake and the ratio aioquic / quicfast (> 1 means quicfast is faster).

Like for like:

- both clients offer the single x25519 key share and only AES-128-GCM, so
  both sides do the same key exchange and hashing;
- both servers issue one NewSessionTicket per handshake and both clients
  turn it into a ticket object;
- tickets are single use on both sides (RFC 8446 §C.4): each resumed
  handshake resumes with the ticket the previous one issued, and aioquic's
  ticket store hands each ticket out once and keeps at most 16. Reusing one
  ticket forever would let either side amortise per-ticket work, and an
  unbounded store made aioquic's garbage collection dearer (about 2%);
- quicfast's server seals its tickets with AES-256-GCM (stateless tickets),
  aioquic's keeps them in a dict: this extra work is on quicfast's side;
- aioquic re-parses the CA PEM and builds a pyOpenSSL store in every
  handshake, because its ``Context`` takes ``cadata`` per connection as
  ``QuicConfiguration`` does; quicfast parses it once per ``TLSConfig``.
  That is each library's normal use, so it is left as is.

Timing: the two sides run alternately in batches (order swapped every
round); each side's figure is the median CPU time over the batches, and the
ratio is the median of the per-round ratios (see ``interleaved``).

Usage: python benchmarks/micro/bench_tls.py [--iterations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from collections import OrderedDict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from quicfast import tls as qtls  # noqa: E402

SERVER_NAME = "localhost"
TRANSPORT_PARAMETERS = b"\x01\x02\x03\x04" * 8
LEVELS = tuple(qtls.Level)


def make_pki():
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca, leaf, key


# --- quicfast ---------------------------------------------------------------


def quicfast_setup(ca, leaf, key):
    client_config = qtls.TLSConfig()
    client_config.load_verify_locations(cadata=ca.public_bytes(serialization.Encoding.PEM))
    client_config.set_alpn_protocols(["h3"])
    client_config.groups = [qtls.Group.X25519]
    client_config.cipher_suites = [qtls.CipherSuite.AES_128_GCM_SHA256]
    client_config.session_ticket_store = None
    client_config.keylog_filename = None
    server_config = qtls.TLSConfig()
    server_config.set_certificate_chain([leaf], key)
    server_config.set_alpn_protocols(["h3"])
    server_config.keylog_filename = None
    return client_config, server_config


def quicfast_handshake(client_config, server_config, ticket=None):
    tickets = []
    client = qtls.ClientHandshake(client_config, SERVER_NAME, TRANSPORT_PARAMETERS,
                                  session_ticket=ticket)
    client.on_session_ticket = tickets.append
    server = qtls.ServerHandshake(server_config, TRANSPORT_PARAMETERS)
    client.on_secret = server.on_secret = lambda level, is_write, suite, secret: None
    client.start()
    for _ in range(4):
        for sender, receiver in ((client, server), (server, client)):
            for level in LEVELS:
                buffer = sender.output[level]
                if buffer:
                    data = bytes(buffer)
                    buffer.clear()
                    receiver.receive(level, data)
    assert client.handshake_complete and server.handshake_complete
    assert client.session_resumed == (ticket is not None)
    return tickets[0] if tickets else None


# --- aioquic -----------------------------------------------------------------


class TicketStore:
    """aioquic's server-side ticket store: single use and bounded, as a real one."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.tickets: OrderedDict = OrderedDict()

    def add(self, ticket) -> None:
        self.tickets[ticket.ticket] = ticket
        if len(self.tickets) > self.size:
            self.tickets.popitem(last=False)

    def pop(self, label: bytes):
        return self.tickets.pop(label, None)


def aioquic_setup(ca, leaf, key):
    from aioquic import tls as atls
    from aioquic.buffer import Buffer

    cadata = ca.public_bytes(serialization.Encoding.PEM)
    return atls, Buffer, tuple(atls.Epoch), cadata, leaf, key, TicketStore()


def aioquic_handshake(setup, ticket=None):
    atls, Buffer, epochs, cadata, leaf, key, store = setup

    client = atls.Context(is_client=True, alpn_protocols=["h3"], cadata=cadata,
                          server_name=SERVER_NAME,
                          cipher_suites=[atls.CipherSuite.AES_128_GCM_SHA256])
    client._supported_groups = [atls.Group.X25519]
    client.handshake_extensions = [(0x39, TRANSPORT_PARAMETERS)]
    client.session_ticket = ticket
    received = []
    client.new_session_ticket_cb = received.append
    server = atls.Context(is_client=False, alpn_protocols=["h3"])
    server.certificate = leaf
    server.certificate_private_key = key
    server.handshake_extensions = [(0x39, TRANSPORT_PARAMETERS)]
    server.new_session_ticket_cb = store.add
    server.get_session_ticket_cb = store.pop

    def buffers():
        return {epoch: Buffer(capacity=8192) for epoch in epochs}

    client_out = buffers()
    server_out = buffers()
    client.handle_message(b"", client_out)
    for _ in range(4):
        for sender_out, receiver, receiver_out in (
            (client_out, server, server_out),
            (server_out, client, client_out),
        ):
            for epoch in epochs:
                data = sender_out[epoch].data
                if data:
                    sender_out[epoch] = Buffer(capacity=8192)
                    receiver.handle_message(data, receiver_out)
    assert client.state == atls.State.CLIENT_POST_HANDSHAKE
    assert client.session_resumed == (ticket is not None)
    return received[0] if received else None


def cpu_time_per_call(function, iterations: int) -> float:
    start = time.process_time()
    for _ in range(iterations):
        function()
    return (time.process_time() - start) / iterations


def interleaved(ours, theirs, iterations: int, rounds: int) -> tuple[float, float, float]:
    """Alternate the two sides in ``rounds`` batches of ``iterations`` calls.

    Returns each side's median CPU time per call and the median over rounds
    of the ratio theirs / ours within a round. Interleaving (and swapping
    which side goes first) exposes both sides to the same load on a shared
    machine; the per-round ratio cancels load that drifts slower than a
    round, and the medians ignore outlying batches.
    """
    ours()
    theirs()  # warm-up (a TicketChain gets its first ticket here)
    ours_times: list[float] = []
    theirs_times: list[float] = []
    for round_number in range(rounds):
        sides = [(ours, ours_times), (theirs, theirs_times)]
        if round_number % 2:
            sides.reverse()
        for function, times in sides:
            times.append(cpu_time_per_call(function, iterations))
    ratios = [t / o for o, t in zip(ours_times, theirs_times)]
    return statistics.median(ours_times), statistics.median(theirs_times), statistics.median(ratios)


class TicketChain:
    """Resume with the ticket the previous handshake issued (single-use tickets).

    The first call makes a full handshake to get a ticket.
    """

    def __init__(self, handshake) -> None:
        self.handshake = handshake
        self.ticket = None

    def __call__(self) -> None:
        self.ticket = self.handshake(self.ticket)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50, help="handshakes per batch")
    parser.add_argument("--rounds", type=int, default=31, help="interleaved batches per side")
    args = parser.parse_args()
    ca, leaf, key = make_pki()

    q_client, q_server = quicfast_setup(ca, leaf, key)
    a_setup = aioquic_setup(ca, leaf, key)
    rows = [
        ("full handshake (x25519, AES-128-GCM, ECDSA P-256)",
         lambda: quicfast_handshake(q_client, q_server),
         lambda: aioquic_handshake(a_setup)),
        ("resumed handshake (PSK + x25519)",
         TicketChain(lambda ticket: quicfast_handshake(q_client, q_server, ticket)),
         TicketChain(lambda ticket: aioquic_handshake(a_setup, ticket))),
    ]
    print(f"CPU time per client+server handshake, median of {args.rounds} interleaved batches "
          f"of {args.iterations}")
    print(f"{'case':52} {'quicfast':>10} {'aioquic':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        ours_time, theirs_time, ratio = interleaved(ours, theirs, args.iterations, args.rounds)
        print(f"{name:52} {ours_time * 1e3:8.3f}ms {theirs_time * 1e3:8.3f}ms {ratio:6.2f}x")


if __name__ == "__main__":
    main()
