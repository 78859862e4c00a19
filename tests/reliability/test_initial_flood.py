"""Floods of client Initial packets at a listening Transport, over loopback.

A spoofing attacker sends 1200-byte Initials with fresh random connection
IDs and garbage payloads (they never decrypt) from one socket. What a
server may keep for them must be bounded: quic-go refuses new handshakes
past 32 in progress (protocol.MaxAcceptQueueSize) and, with Retry, keeps
no state at all. A real client must still get through during the flood.
"""

import asyncio
import os
import socket

import pytest

import quicfast
from tests.helpers.engines import client_tls, server_tls

FLOOD = 2000
# Generous: what any bounded handshake queue would stay under.
MAX_PENDING_ENGINES = 256


def garbage_initial() -> bytes:
    dcid, scid = os.urandom(8), os.urandom(8)
    header = b"\xc3" + (1).to_bytes(4, "big") + bytes([8]) + dcid + bytes([8]) + scid + b"\x00"
    body = os.urandom(1200 - len(header) - 2)
    return header + (0x4000 | len(body)).to_bytes(2, "big") + body


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def flood(transport, count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for i in range(count):
            try:
                sock.sendto(garbage_initial(), transport.local_addr)
            except BlockingIOError:
                await asyncio.sleep(0.001)
            if i % 64 == 63:
                await asyncio.sleep(0)   # let the transport read
        await asyncio.sleep(0.2)
    finally:
        sock.close()


async def real_client_gets_through(addr):
    conn = await asyncio.wait_for(quicfast.dial_addr(addr, client_tls()), 10)
    stream = conn.open_stream()
    stream.write(b"ping")
    stream.close()
    conn.close()


def test_initial_flood_keeps_server_state_bounded():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        transport.listen(server_tls())
        before = rss_bytes()
        await flood(transport, FLOOD)
        pending = len(transport._connections)
        grown = rss_bytes() - before
        transport.close()
        return pending, grown

    pending, grown = asyncio.run(asyncio.wait_for(main(), 30))
    assert pending <= MAX_PENDING_ENGINES, f"{pending} engines for {FLOOD} garbage Initials"
    assert grown < 32 << 20, f"RSS grew by {grown >> 20} MiB"


def test_initial_flood_with_retry_keeps_no_state_and_real_client_connects():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls(), quicfast.Config(require_address_validation=lambda addr: True))
        await flood(transport, FLOOD)
        pending = len(transport._connections)
        await real_client_gets_through(transport.local_addr)
        server_conn = await asyncio.wait_for(listener.accept(), 5)
        transport.close()
        return pending, server_conn

    pending, server_conn = asyncio.run(asyncio.wait_for(main(), 30))
    assert pending == 0


def test_real_client_connects_after_an_initial_flood():
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls())
        await flood(transport, 500)
        await real_client_gets_through(transport.local_addr)
        await asyncio.wait_for(listener.accept(), 5)
        transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))
