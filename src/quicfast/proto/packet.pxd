# QUIC packet headers (RFC 9000 §17, invariants RFC 8999, QUIC v2 RFC 9369 §3.2)
# and packet number encoding (RFC 9000 §17.1, Appendix A.2/A.3).

from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef enum PacketType:
    PACKET_INITIAL = 0
    PACKET_ZERO_RTT = 1
    PACKET_HANDSHAKE = 2
    PACKET_RETRY = 3
    PACKET_ONE_RTT = 4
    PACKET_VERSION_NEGOTIATION = 5

cdef enum:
    MAX_CID_LENGTH = 20
    VERSION_1 = 0x00000001
    VERSION_2 = 0x6B3343CF
    MIN_INITIAL_DATAGRAM_SIZE = 1200   # RFC 9000 §14.1

cdef struct PacketHeader:
    # first_byte is the (still header-protected) first byte.
    uint8_t first_byte
    # is_long is true for long-header packets.
    bint is_long
    # version is the long header's version (0 for Version Negotiation; unset for short).
    uint32_t version
    # packet_type is a PacketType, already mapped from the version's encoding.
    int packet_type
    # dcid_offset/dcid_len locate the destination connection ID in the datagram.
    Py_ssize_t dcid_offset
    int dcid_len
    # scid_offset/scid_len locate the source connection ID (long headers only).
    Py_ssize_t scid_offset
    int scid_len
    # token_offset/token_len locate an Initial's token (or a Retry's token).
    Py_ssize_t token_offset
    Py_ssize_t token_len
    # pn_offset is where the (protected) packet number starts, from the packet start.
    Py_ssize_t pn_offset
    # packet_length is the length of this packet within the datagram (coalescing).
    Py_ssize_t packet_length

cdef int parse_header(const uint8_t* data, Py_ssize_t length, int short_dcid_len, PacketHeader* out) noexcept nogil

cdef inline uint64_t decode_packet_number(uint64_t truncated, int pn_len, uint64_t expected) noexcept nogil:
    """RFC 9000 Appendix A.3: recover the full packet number from its
    `pn_len`-byte truncation, given `expected` = largest received + 1."""
    cdef uint64_t win = (<uint64_t>1) << (8 * pn_len)
    cdef uint64_t hwin = win >> 1
    cdef uint64_t mask = win - 1
    cdef uint64_t candidate = (expected & ~mask) | truncated
    if candidate + hwin <= expected and candidate < ((<uint64_t>1) << 62) - win:
        return candidate + win
    if candidate > expected + hwin and candidate >= win:
        return candidate - win
    return candidate

cdef inline int packet_number_length(uint64_t pn, uint64_t largest_acked, bint any_acked) noexcept nogil:
    """RFC 9000 §17.1 / Appendix A.2: bytes needed so the receiver can
    decode `pn`: twice the number of unacknowledged packets must fit."""
    cdef uint64_t unacked = pn - largest_acked if any_acked else pn + 1
    if unacked < 0x80:
        return 1
    if unacked < 0x8000:
        return 2
    if unacked < 0x800000:
        return 3
    return 4

cdef int long_type_bits(uint32_t version, int packet_type) noexcept nogil
