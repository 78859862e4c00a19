"""Loopback throughput of quicfast._udp against plain socket calls.

One thread sends a burst of 1200-byte datagrams to a loopback socket, then
receives the whole burst, and repeats.  Send and receive time are measured
separately, so the figures are CPU cost per datagram rather than link speed.
Variants: plain ``sendto``/``recvfrom``; ``_udp`` with GSO and GRO each on or
off (both off is the ``sendmmsg``/``recvmmsg`` fallback); and GSO+GRO with
``datagram(i)`` called for every datagram (the pure-Python access cost).

Usage: python benchmarks/udp/bench_udp.py [--datagrams N] [--burst B] [--repeat R]
"""

import argparse
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))

from quicfast._udp import UdpSocketState  # noqa: E402

SIZE = 1200
ADDR = "127.0.0.1"


def pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((ADDR, 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((ADDR, 0))
    for s in (rx, tx):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    return tx, rx


def wait_readable(sock):
    return bool(select.select([sock], [], [], 0.5)[0])


def run_plain(total, burst):
    tx, rx = pair()
    rx.setblocking(False)
    dst = rx.getsockname()
    payload = b"q" * SIZE
    t_send = t_recv = 0.0
    got = 0
    sent = 0
    with tx, rx:
        while sent < total:
            t0 = time.perf_counter()
            for _ in range(burst):
                tx.sendto(payload, dst)
            t1 = time.perf_counter()
            sent += burst
            want = got + burst
            while got < want:
                try:
                    rx.recvfrom(65536)
                    got += 1
                except BlockingIOError:
                    if not wait_readable(rx):
                        break
            t_recv += time.perf_counter() - t1
            t_send += t1 - t0
    return sent, got, t_send, t_recv


def run_udp(total, burst, gso, gro, touch=False):
    tx, rx = pair()
    stx = UdpSocketState(tx, gso=gso, gro=gro)
    srx = UdpSocketState(rx, gso=gso, gro=gro)
    if gso and not stx.gso_supported or gro and not srx.gro_supported:
        stx.close()
        srx.close()
        return None
    dst = rx.getsockname()
    data = memoryview(b"q" * (SIZE * burst))
    t_send = t_recv = 0.0
    got = 0
    sent = 0
    try:
        while sent < total:
            t0 = time.perf_counter()
            off = 0
            while off < len(data):
                off += stx.send(data[off:], dst, SIZE)
            t1 = time.perf_counter()
            sent += burst
            want = got + burst
            while got < want:
                n = srx.recv_batch()
                if n == 0:
                    if not wait_readable(rx):
                        break
                    continue
                if touch:
                    for i in range(n):
                        srx.datagram(i)
                got += n
            t_recv += time.perf_counter() - t1
            t_send += t1 - t0
    finally:
        stx.close()
        srx.close()
    return sent, got, t_send, t_recv


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datagrams", type=int, default=200_000)
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    variants = [
        ("plain sendto/recvfrom", lambda: run_plain(args.datagrams, args.burst)),
        ("_udp no GSO, no GRO (sendmmsg/recvmmsg)", lambda: run_udp(args.datagrams, args.burst, False, False)),
        ("_udp GSO, no GRO", lambda: run_udp(args.datagrams, args.burst, True, False)),
        ("_udp no GSO, GRO", lambda: run_udp(args.datagrams, args.burst, False, True)),
        ("_udp GSO + GRO", lambda: run_udp(args.datagrams, args.burst, True, True)),
        ("_udp GSO + GRO + datagram(i)", lambda: run_udp(args.datagrams, args.burst, True, True, True)),
    ]
    print(f"{args.datagrams} datagrams of {SIZE} B over {ADDR}, bursts of {args.burst}, best of {args.repeat}")
    print(f"{'variant':42} {'send dg/s':>12} {'recv dg/s':>12} {'both dg/s':>12} {'x plain':>8} {'lost':>6}")
    base = None
    for name, fn in variants:
        best = None
        for _ in range(args.repeat):
            r = fn()
            if r is None:
                break
            if best is None or r[2] + r[3] < best[2] + best[3]:
                best = r
        if best is None:
            print(f"{name:42} {'(kernel lacks the feature)':>40}")
            continue
        sent, got, ts, tr = best
        both = got / (ts + tr)
        base = base or both
        print(f"{name:42} {sent / ts:12,.0f} {got / tr:12,.0f} {both:12,.0f} {both / base:8.2f} {sent - got:6}")


if __name__ == "__main__":
    main()
