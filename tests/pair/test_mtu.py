"""DPLPMTUD (RFC 8899) over the simulated network: the datagram size grows
to what the path carries, stops below a smaller path MTU, is off when
disabled, and falls back when a black hole appears."""

import hashlib
import random

from quicfast.config import Config
from tests.pair.sim import LinkConfig, Pair, Upload

MiB = 1024 * 1024


def _upload(seed, mtu=None, client_config=None, server_config=None, size=2 * MiB, mtu_after=None):
    state = {"mtu": mtu}

    def too_big(index, data):
        return state["mtu"] is not None and len(data) > state["mtu"]

    app = Upload(random.Random(seed).randbytes(size))
    pair = Pair(seed=seed, client_config=client_config, server_config=server_config,
                c2s=LinkConfig(delay=0.005, drop=too_big), s2c=LinkConfig(delay=0.005, drop=too_big),
                client_app=app.client, server_app=app.server)
    if mtu_after is not None:
        pair.drive_until(lambda: len(app.received) > size // 4, 200_000)
        state["mtu"] = mtu_after
    pair.drive_until(lambda: app.done, 300_000)
    assert hashlib.sha256(app.received).digest() == hashlib.sha256(app.payload).digest()
    return pair


def test_grows_to_configured_maximum():
    pair = _upload(71)
    assert pair.client.max_datagram_size == 1452 and pair.server.max_datagram_size == 1452


def test_stops_below_path_mtu():
    # Long enough for the search (which starts 5 RTTs after the handshake) to converge.
    pair = _upload(72, mtu=1350, size=16 * MiB)
    assert 1350 - 20 <= pair.client.max_datagram_size <= 1350
    assert pair.client.pmtud_high < 1452


def test_disabled():
    config = Config(disable_path_mtu_discovery=True)
    pair = _upload(73, client_config=config, server_config=config)
    assert pair.client.max_datagram_size == config.initial_packet_size


def test_black_hole_falls_back_and_transfer_completes():
    pair = _upload(74, mtu_after=1300, size=4 * MiB)
    assert pair.client.pmtud_black_holes >= 1
    assert pair.client.max_datagram_size <= 1300


def test_the_first_probe_waits_five_round_trips_after_the_handshake():
    sizes = []

    def record(index, data):
        sizes.append(len(data))
        return False

    link = LinkConfig(delay=0.005, drop=record)     # RTT 10 ms
    pair = Pair(seed=75, c2s=link, s2c=link)
    pair.handshake()
    pair.drive_for(0.03)
    # A connection closed this soon after its handshake never paid for a probe.
    assert max(sizes) <= Config().initial_packet_size
    pair.drive_for(0.05)
    pair.step()
    assert max(sizes) == Config().max_packet_size
