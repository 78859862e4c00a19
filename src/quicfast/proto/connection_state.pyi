"""Type stubs for quicfast.proto.connection_state (compiled): the state the engine's layers share."""

from quicfast.proto.recovery import FrameHandler

class Stream:
    """One stream's send and receive halves (RFC 9000 §3)."""

    stream_id: int

class PacketSpace:
    """Per packet-number-space state: keys, ACK tracking and the CRYPTO stream."""

class ConnectionState(FrameHandler):
    """Attributes and helpers shared by the engine's layers (never instantiated alone)."""
