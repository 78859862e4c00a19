"""Connection configuration: quic-go's `Config` in Python's idiom.

Field names follow quic-go's (snake_case), durations are seconds as floats,
and defaults match quic-go's where it has one. `TokenStore` and
`LRUTokenStore` keep address-validation tokens per server name (RFC 9000
§8.1.3) for the client.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Optional

__all__ = ["Config", "TokenStore", "LRUTokenStore", "DEFAULT_VERSIONS"]

VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF
DEFAULT_VERSIONS = (VERSION_1, VERSION_2)


class TokenStore:
    """Where a client keeps NEW_TOKEN tokens, keyed by server name."""

    def pop(self, key: str) -> Optional[bytes]:
        raise NotImplementedError

    def put(self, key: str, token: bytes) -> None:
        raise NotImplementedError


class LRUTokenStore(TokenStore):
    """Keeps up to `tokens_per_origin` tokens for each of the
    `max_origins` most recently used server names (quic-go's NewLRUTokenStore)."""

    def __init__(self, max_origins: int = 100, tokens_per_origin: int = 4) -> None:
        if max_origins < 1 or tokens_per_origin < 1:
            raise ValueError("max_origins and tokens_per_origin must be at least 1")
        self._max_origins = max_origins
        self._per_origin = tokens_per_origin
        self._tokens: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()

    def put(self, key: str, token: bytes) -> None:
        queue = self._tokens.pop(key, None) or collections.deque(maxlen=self._per_origin)
        queue.append(token)
        self._tokens[key] = queue
        while len(self._tokens) > self._max_origins:
            self._tokens.popitem(last=False)

    def pop(self, key: str) -> Optional[bytes]:
        queue = self._tokens.get(key)
        if not queue:
            return None
        token = queue.pop()
        if not queue:
            del self._tokens[key]
        else:
            self._tokens.move_to_end(key)
        return token


@dataclasses.dataclass
class Config:
    """Per-connection QUIC settings (quic-go `quic.Config`).

    Windows are in bytes; durations in seconds.
    """

    #: QUIC versions offered (client: first is used) or accepted (server), in preference order.
    versions: tuple = DEFAULT_VERSIONS
    #: Overall time allowed for the handshake (quic-go HandshakeIdleTimeout is 5 s; 10 s total).
    handshake_idle_timeout: float = 5.0
    #: Idle timeout offered to the peer; the smaller of both sides' applies (RFC 9000 §10.1).
    max_idle_timeout: float = 30.0
    #: Server side: return True to make a client prove its address with a Retry first.
    require_address_validation: Optional[Callable[[tuple], bool]] = None
    #: Client side: where NEW_TOKEN tokens are kept for later connections.
    token_store: Optional[TokenStore] = None
    #: Flow-control windows: the initial values and the auto-tuning maxima.
    initial_stream_receive_window: int = 512 * 1024
    max_stream_receive_window: int = 6 * 1024 * 1024
    initial_connection_receive_window: int = 768 * 1024
    max_connection_receive_window: int = 15 * 1024 * 1024
    #: Called before the connection window grows past its current value; return False to refuse.
    allow_connection_window_increase: Optional[Callable[[object, int], bool]] = None
    #: Send backpressure (bytes written and not yet acknowledged): a stream's
    #: drain() waits while the stream holds more than stream_send_high_water,
    #: or while all streams of the connection together hold more than
    #: connection_send_high_water. write() never blocks, so each writer can
    #: overshoot a mark by the one write it made before drain().
    stream_send_high_water: int = 4 * 1024 * 1024
    connection_send_high_water: int = 16 * 1024 * 1024
    #: Streams the peer may open concurrently (quic-go defaults: 100 each).
    max_incoming_streams: int = 100
    max_incoming_uni_streams: int = 100
    #: Send a PING this often while idle (0 disables).
    keep_alive_period: float = 0.0
    #: Initial UDP payload size, and the largest DPLPMTUD may probe to.
    initial_packet_size: int = 1252
    max_packet_size: int = 1452
    disable_path_mtu_discovery: bool = False
    #: Accept (server) or attempt (client) 0-RTT.
    allow_0rtt: bool = False
    #: RFC 9221 DATAGRAM frames.
    enable_datagrams: bool = False
    max_datagram_frame_size: int = 65535
    #: Congestion controller: "cubic" (default) or "newreno".
    congestion_control: str = "cubic"
    #: How many connection IDs we let the peer keep for us (>= 2).
    active_connection_id_limit: int = 4
    #: ACK policy: our max_ack_delay (s), and ack-eliciting packets before an immediate ACK.
    max_ack_delay: float = 0.025
    ack_eliciting_threshold: int = 2
    #: Start a 1-RTT key update after this many packets sent in one key phase
    #: (quic-go's KeyUpdateInterval); 0 leaves updates to the AEAD limits alone.
    key_update_interval: int = 100_000
    #: qlog tracer factory: called as tracer(is_client, odcid) -> connection tracer or None.
    tracer: Optional[Callable] = None

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("versions must not be empty")
        for v in self.versions:
            if v not in DEFAULT_VERSIONS:
                raise ValueError(f"unsupported QUIC version 0x{v:08x}")
        if self.active_connection_id_limit < 2:
            raise ValueError("active_connection_id_limit must be at least 2 (RFC 9000 §18.2)")
        if not 1200 <= self.initial_packet_size <= self.max_packet_size <= 65527:
            raise ValueError("need 1200 <= initial_packet_size <= max_packet_size <= 65527")
        if self.initial_stream_receive_window > self.max_stream_receive_window:
            self.max_stream_receive_window = self.initial_stream_receive_window
        if self.initial_connection_receive_window > self.max_connection_receive_window:
            self.max_connection_receive_window = self.initial_connection_receive_window
        if self.congestion_control not in ("cubic", "newreno", "reno"):
            raise ValueError('congestion_control must be "cubic" or "newreno"')
        if self.key_update_interval < 0:
            raise ValueError("key_update_interval must not be negative")
        if self.max_incoming_streams < 0 or self.max_incoming_uni_streams < 0:
            raise ValueError("stream limits must not be negative")
        if self.stream_send_high_water < 0 or self.connection_send_high_water < 0:
            raise ValueError("send high-water marks must not be negative")
