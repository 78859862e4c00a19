# QUIC frame type codes (RFC 9000 §19, RFC 9221 §4, draft-ietf-quic-ack-frequency)
# and which packet types may carry each (RFC 9000 §12.4, Table 3). Declarations
# only: the packet builder writes these codes and the packet receiver checks them.

from libc.stdint cimport uint64_t
from quicfast.proto.packet cimport PACKET_INITIAL, PACKET_ZERO_RTT, PACKET_HANDSHAKE, PACKET_ONE_RTT

cdef enum:
    F_PADDING = 0x00
    F_PING = 0x01
    F_ACK = 0x02
    F_ACK_ECN = 0x03
    F_RESET_STREAM = 0x04
    F_STOP_SENDING = 0x05
    F_CRYPTO = 0x06
    F_NEW_TOKEN = 0x07
    F_STREAM = 0x08
    F_STREAM_END = 0x0F
    F_MAX_DATA = 0x10
    F_MAX_STREAM_DATA = 0x11
    F_MAX_STREAMS_BIDI = 0x12
    F_MAX_STREAMS_UNI = 0x13
    F_DATA_BLOCKED = 0x14
    F_STREAM_DATA_BLOCKED = 0x15
    F_STREAMS_BLOCKED_BIDI = 0x16
    F_STREAMS_BLOCKED_UNI = 0x17
    F_NEW_CONNECTION_ID = 0x18
    F_RETIRE_CONNECTION_ID = 0x19
    F_PATH_CHALLENGE = 0x1A
    F_PATH_RESPONSE = 0x1B
    F_CONNECTION_CLOSE = 0x1C
    F_CONNECTION_CLOSE_APP = 0x1D
    F_HANDSHAKE_DONE = 0x1E
    F_IMMEDIATE_ACK = 0x1F
    F_DATAGRAM = 0x30
    F_DATAGRAM_LEN = 0x31
    F_ACK_FREQUENCY = 0xAF

# Which packet types may carry each frame (RFC 9000 Table 3), as bitmasks of
# (1 << PacketType).
cdef enum:
    IH01 = (1 << PACKET_INITIAL) | (1 << PACKET_HANDSHAKE) | (1 << PACKET_ZERO_RTT) | (1 << PACKET_ONE_RTT)
    IH_1 = (1 << PACKET_INITIAL) | (1 << PACKET_HANDSHAKE) | (1 << PACKET_ONE_RTT)
    __01 = (1 << PACKET_ZERO_RTT) | (1 << PACKET_ONE_RTT)
    ___1 = (1 << PACKET_ONE_RTT)

cdef inline int frame_allowed_mask(uint64_t ftype) noexcept nogil:
    if ftype == F_PADDING or ftype == F_PING or ftype == F_CONNECTION_CLOSE:
        return IH01
    if ftype == F_ACK or ftype == F_ACK_ECN or ftype == F_CRYPTO:
        return IH_1
    if ftype == F_NEW_TOKEN or ftype == F_HANDSHAKE_DONE or ftype == F_PATH_RESPONSE:
        return ___1
    return __01   # IMMEDIATE_ACK and ACK_FREQUENCY too (draft-ietf-quic-ack-frequency)
