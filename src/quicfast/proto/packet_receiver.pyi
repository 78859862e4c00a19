"""Type stubs for quicfast.proto.packet_receiver (compiled): the receiving half of the engine."""

from typing import Any

from typing_extensions import Buffer

from quicfast.proto.packet_builder import PacketBuilder

class PacketReceiver(PacketBuilder):
    def receive_datagram(self, data: Buffer, addr: Any, now: float, ecn: int = 0) -> None: ...
    def receive_datagram_inplace(self, data: Buffer, addr: Any, now: float, ecn: int = 0) -> None: ...
    def receive_segments(self, buf: Buffer, total: int, segment_size: int, addr: Any, now: float, ecn: int = 0) -> None: ...
