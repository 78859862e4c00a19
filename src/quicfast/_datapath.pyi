"""The transport's per-datagram receive work at C level (RFC 9000 §5.2, §17.3)."""

from typing import Any

from quicfast._udp import UdpSocketState

def deliver_established(udp: UdpSocketState, start: int, routes: dict[bytes, Any], cid_length: int,
                        now: float, touched: set[Any]) -> int: ...
