"""Loss recovery: RTT estimation, sent-packet records, loss detection, PTO (RFC 9002 §5-7, App. A).

All times are integer nanoseconds; `NO_TIMER` means "no deadline".
"""

from collections.abc import Sequence
from typing import Final

from quicfast.proto.congestion import CongestionController, Pacer
from quicfast.proto.congestion import make_congestion_controller as make_congestion_controller

INITIAL: Final[int]
HANDSHAKE: Final[int]
APPLICATION: Final[int]
NO_TIMER: Final[int]
PACKET_STATES: dict[str, int]
FRAME_KINDS: dict[str, int]

# (kind, stream_id, offset, length, fin), as given to LossRecovery.send and
# reported by RecordingFrameHandler (prefixed by space and pn).
_FrameTuple = tuple[int, int, int, int, bool]

class FrameHandler: ...

class RecordingFrameHandler(FrameHandler):
    acked: list[tuple[int, int, int, int, int, int, bool]]
    lost: list[tuple[int, int, int, int, int, int, bool]]
    acks_of_acks: list[tuple[int, int]]
    def __init__(self) -> None: ...

class RttEstimator:
    latest_rtt: int
    smoothed_rtt: int
    rttvar: int
    min_rtt: int
    first_sample_time: int
    has_sample: bool
    def __init__(self) -> None: ...
    def py_update(
        self, latest_rtt: int, ack_delay: int = 0, handshake_confirmed: bool = False, max_ack_delay: int = ...
    ) -> None: ...
    @property
    def pto_base_duration(self) -> int: ...
    @property
    def loss_delay_duration(self) -> int: ...

class SentPacketLog:
    first_pn: int
    end_pn: int
    largest_sent: int
    has_sent: bool
    ack_eliciting_in_flight: int
    bytes_in_flight: int
    def __len__(self) -> int: ...

class LossRecovery:
    rtt: RttEstimator
    cc: CongestionController
    pacer: Pacer
    pto_count: int
    probes_to_send: int
    max_ack_delay: int
    is_client: bool
    handshake_confirmed: bool
    peer_completed_address_validation: bool
    has_handshake_keys: bool
    bytes_in_flight: int
    packets_sent: int
    packets_lost: int
    bytes_sent: int
    bytes_lost: int
    spurious_losses: int
    persistent_congestion_events: int
    pto_events: int
    initial_log: SentPacketLog
    handshake_log: SentPacketLog
    application_log: SentPacketLog
    def __init__(
        self,
        is_client: bool = False,
        congestion: str | CongestionController = "cubic",
        max_datagram_size: int = 1200,
        max_ack_delay: int = ...,
        burst_packets: int = 10,
    ) -> None: ...
    def send(
        self,
        space: int,
        pn: int,
        now: int,
        size: int = 1200,
        ack_eliciting: bool = True,
        in_flight: bool = True,
        frames: Sequence[_FrameTuple] = (),
        largest_acked_sent: int | None = None,
        is_mtu_probe: bool = False,
    ) -> None: ...
    def not_sent(self, space: int, pn: int) -> None: ...
    def ack(
        self,
        space: int,
        ranges: Sequence[range | tuple[int, int]],
        now: int,
        ack_delay: int = 0,
        handler: FrameHandler | None = None,
    ) -> int: ...
    def ecn_ce(self, space: int, time_sent: int, now: int) -> None: ...
    def loss_detection_timer(
        self, now: int, has_handshake_keys: bool = False, amplification_limited: bool = False
    ) -> int: ...
    def timeout(self, now: int, handler: FrameHandler | None = None) -> int: ...
    def discard(self, space: int, now: int) -> None: ...
    def path_change(self) -> None: ...
    def py_pto_duration(self, space: int) -> int: ...
    def py_ack_eliciting_in_flight(self, space: int) -> bool: ...
    def packet_state(self, space: int, pn: int) -> int | None: ...
    def get_loss_time(self, space: int) -> int: ...
    def space_bytes_in_flight(self, space: int) -> int: ...
