"""Type stubs for quicfast.proto.packet_builder (compiled): the sending half of the engine."""

from typing import Any

from typing_extensions import Buffer

from quicfast.proto.connection_state import ConnectionState

class PacketBuilder(ConnectionState):
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]: ...
    def fill_send_buffer(self, buf: Buffer, max_datagrams: int, now: float) -> tuple[int, int, int]: ...
