"""Batched UDP socket I/O (recvmmsg + GRO, sendmsg + GSO, ECN, pktinfo)."""

import socket
from collections.abc import Sequence
from typing import Union

Buffer = Union[bytes, bytearray, memoryview]
Address = Union[tuple[str, int], tuple[str, int, int, int]]

class UdpSocketState:
    sock: socket.socket
    family: int
    gso_supported: bool
    gro_supported: bool
    max_gso_segments: int
    rcvbuf: int
    sndbuf: int
    dual_stack: bool
    warning: str | None
    count: int
    messages: int
    def __init__(
        self,
        sock: socket.socket,
        max_batch: int = 64,
        buffer_size: int = 64 * 65536,
        *,
        force_fallback: bool = False,
        gso: bool = True,
        gro: bool = True,
    ) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def recv_batch(self) -> int: ...
    def datagram(self, i: int) -> tuple[memoryview, Address, int]: ...
    def offset(self, i: int) -> int: ...
    def length(self, i: int) -> int: ...
    def ecn(self, i: int) -> int: ...
    def addr(self, i: int) -> Address: ...
    def local_ip(self, i: int) -> str | None: ...
    @property
    def buffer(self) -> memoryview: ...
    def send(self, data: Buffer, addr: Address, segment_size: int = 0, ecn: int = 0) -> int: ...
    def send_batch(self, data: Buffer, addr: Address, segment_sizes: Sequence[int], ecn: int = 0) -> int: ...
    def close(self) -> None: ...
