"""QUIC packet headers and packet numbers (RFC 8999, RFC 9000 §17, RFC 9369 §3.2)."""

from collections.abc import Callable, Iterable
from typing import Final

from typing_extensions import Buffer

QUIC_VERSION_1: Final[int]
QUIC_VERSION_2: Final[int]
SUPPORTED_VERSIONS: tuple[int, int]

class HeaderInfo:
    is_long: bool
    version: int
    packet_type: int
    dcid: bytes
    scid: bytes
    token: bytes
    pn_offset: int
    packet_length: int
    def __init__(
        self,
        *,
        is_long: bool = ...,
        version: int = ...,
        packet_type: int = ...,
        dcid: bytes = ...,
        scid: bytes = ...,
        token: bytes = ...,
        pn_offset: int = ...,
        packet_length: int = ...,
    ) -> None: ...

def pull_header(data: Buffer, short_dcid_len: int = 8) -> HeaderInfo: ...
def decode_pn(truncated: int, pn_len: int, largest_received: int) -> int: ...
def encode_pn_length(pn: int, largest_acked: int | None = None) -> int: ...
def encode_version_negotiation(dcid: bytes, scid: bytes, versions: Iterable[int]) -> bytes: ...
def parse_version_negotiation(data: Buffer) -> list[int]: ...
def encode_retry(
    version: int,
    dcid: bytes,
    scid: bytes,
    original_dcid: bytes,
    token: bytes,
    tag_function: Callable[[bytes, int], bytes],
) -> bytes: ...
