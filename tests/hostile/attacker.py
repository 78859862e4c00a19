"""A hostile client for sans-I/O server tests: a real handshake, then
hand-crafted 1-RTT packets sealed with the client's own keys.

`established()` runs a clean in-memory handshake (tests/hostile/netsim.py)
while recording the client's TLS secrets; the returned `Attacker` then
writes any frames it likes (valid or not, as many per datagram as fit, in
datagrams up to 64 KiB) straight into the server engine, and can open the
server's 1-RTT packets to read their packet numbers. The honest client
engine is not used after the handshake.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from quicfast.config import Config
from quicfast.proto.buffer import encode_varint
from quicfast.proto.crypto import PacketProtection
from quicfast.tls import Level
from tests.helpers.engines import CLIENT_ADDR, quicfast_client
from tests.hostile.netsim import Net

AEAD_TAG = 16
PN_LEN = 4


def frame(ftype: int, *fields) -> bytes:
    """A frame of varint fields; bytes fields are appended raw."""
    out = encode_varint(ftype)
    for f in fields:
        out += f if isinstance(f, (bytes, bytearray)) else encode_varint(f)
    return out


@dataclasses.dataclass
class Attacker:
    net: Net
    send_keys: PacketProtection
    recv_keys: PacketProtection
    server_cid: bytes
    next_pn: int = 1 << 20
    sent_bytes: int = 0
    server_bytes: int = 0
    server_largest_pn: int = -1

    @property
    def server(self):
        return self.net.server

    def packet(self, payload: bytes) -> bytes:
        pn = self.next_pn
        self.next_pn += 1
        header = bytes([0x40 | (PN_LEN - 1)]) + self.server_cid + pn.to_bytes(PN_LEN, "big")
        buf = bytearray(header + payload + bytes(AEAD_TAG))
        n = self.send_keys.protect_packet(buf, len(header), 1 + len(self.server_cid), PN_LEN, len(payload), pn)
        return bytes(buf[:n])

    def send(self, payload: bytes, *, drain: bool = True) -> list:
        """Seal `payload` (frames) in one 1-RTT packet, deliver it to the
        server, and return what the server sends back (when `drain`)."""
        data = self.packet(payload)
        self.sent_bytes += len(data)
        self.server.receive_datagram(data, CLIENT_ADDR, self.net.now)
        return self.drain() if drain else []

    def drain(self) -> list:
        out = []
        while (event := self.server.next_event()) is not None:
            self.net.server_events.append(event)
        for data, _addr in self.server.datagrams_to_send(self.net.now):
            out.append(data)
            self.server_bytes += len(data)
            self._note_pn(data)
        return out

    def _note_pn(self, data: bytes) -> None:
        if data[0] & 0x80:
            return
        buf = bytearray(data)
        try:
            pn, _, _ = self.recv_keys.unprotect_packet(buf, len(buf), 1 + len(self.server_cid), self.server_largest_pn)
        except ValueError:
            return
        self.server_largest_pn = max(self.server_largest_pn, pn)

    def advance(self, seconds: float) -> list:
        """Let virtual time pass, firing the server's timers; returns what it sent."""
        end = self.net.now + seconds
        out = []
        for _ in range(10_000):
            t = self.server.get_timer()
            if t is None or t > end:
                break
            self.net.now = max(self.net.now, t)
            self.server.handle_timer(self.net.now)
            out += self.drain()
        self.net.now = end
        return out + self.drain()

    @property
    def closed_with(self) -> Optional[int]:
        err = self.server.close_error
        return None if err is None else getattr(err, "error_code", None)


def established(server_config: Optional[Config] = None, client_config: Optional[Config] = None) -> Attacker:
    secrets = {}
    client = quicfast_client(client_config)
    tls = client.tls
    honest = tls.on_secret

    def record(level, is_write, cipher_suite, secret):
        secrets[(level, bool(is_write))] = (int(cipher_suite), secret)
        return honest(level, is_write, cipher_suite, secret)

    tls.on_secret = record
    net = Net(client=client, server_config=server_config)
    if not net.run_until(lambda: net.client.is_handshake_confirmed and net.server is not None
                         and net.server.is_handshake_confirmed, max_time=5):
        raise AssertionError("clean handshake did not complete")
    # Let the last ACKs settle, then take over.
    net.run_until(lambda: False, max_time=net.now + 0.1)
    suite, secret = secrets[(Level.ONE_RTT, True)]
    send_keys = PacketProtection.from_secret(suite, secret, net.client.version)
    suite, secret = secrets[(Level.ONE_RTT, False)]
    recv_keys = PacketProtection.from_secret(suite, secret, net.client.version)
    attacker = Attacker(net, send_keys, recv_keys, net.client.peer_cid)
    attacker.drain()
    return attacker
