"""Type stubs for quicfast.proto.events (compiled): the engine's events."""

from typing import Optional

class _Event: ...

class HandshakeCompleted(_Event):
    alpn_protocol: Optional[str]
    session_resumed: bool
    early_data_accepted: bool
    def __init__(self, alpn_protocol: Optional[str], session_resumed: bool, early_data_accepted: bool) -> None: ...

class HandshakeConfirmed(_Event): ...

class StreamOpened(_Event):
    stream_id: int
    def __init__(self, stream_id: int) -> None: ...

class StreamDataAvailable(_Event):
    stream_id: int
    def __init__(self, stream_id: int) -> None: ...

class StreamReset(_Event):
    stream_id: int
    error_code: int
    final_size: int
    def __init__(self, stream_id: int, error_code: int, final_size: int) -> None: ...

class StopSendingReceived(_Event):
    stream_id: int
    error_code: int
    def __init__(self, stream_id: int, error_code: int) -> None: ...

class StreamsAvailable(_Event):
    unidirectional: bool
    def __init__(self, unidirectional: bool) -> None: ...

class DatagramReceived(_Event):
    data: bytes
    def __init__(self, data: bytes) -> None: ...

class ConnectionIdIssued(_Event):
    connection_id: bytes
    def __init__(self, connection_id: bytes) -> None: ...

class ConnectionIdRetired(_Event):
    connection_id: bytes
    def __init__(self, connection_id: bytes) -> None: ...

class ZeroRTTRejected(_Event): ...

class ConnectionTerminated(_Event):
    error: Exception
    def __init__(self, error: Exception) -> None: ...
