"""QUIC packet headers and packet numbers.

Implements RFC 8999 (version-independent invariants), RFC 9000 §17 (long and
short headers, Version Negotiation, Retry), §17.1 / Appendix A.2–A.3 (packet
number encoding and decoding) and RFC 9369 §3.2 (QUIC v2's long-header type
bits).

Strategy: `parse_header` walks the unprotected part of one packet in a
datagram without copying, recording offsets into a `PacketHeader` struct; the
packet number and the low first-byte bits stay protected until the crypto
layer removes header protection. It returns -1 for anything malformed, which
the receive path treats as "drop the rest of the datagram" (RFC 9000 §12.2).
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from quicfast.proto.buffer cimport Reader, reader_varint

import os

SUPPORTED_VERSIONS = (VERSION_1, VERSION_2)
QUIC_VERSION_1 = VERSION_1
QUIC_VERSION_2 = VERSION_2


cdef int long_type_bits(uint32_t version, int packet_type) noexcept nogil:
    """Wire encoding of a long-header packet type (bits 4-5 of the first byte)."""
    if version == VERSION_2:
        # RFC 9369 §3.2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
        return (packet_type + 1) & 3
    return packet_type


cdef inline int _type_from_bits(uint32_t version, int bits) noexcept nogil:
    if version == VERSION_2:
        return (bits + 3) & 3
    return bits


cdef int parse_header(const uint8_t* data, Py_ssize_t length, int short_dcid_len, PacketHeader* out) noexcept nogil:
    """Parse the header of the packet at `data` (the rest of the datagram is
    `length` bytes). Short headers need the locally chosen CID length.

    Returns 0, or -1 when the packet is malformed or truncated.
    """
    cdef Reader r
    cdef uint64_t value
    if length < 1:
        return -1
    out.first_byte = data[0]
    out.token_offset = 0
    out.token_len = 0
    out.scid_offset = 0
    out.scid_len = 0
    if not (data[0] & 0x80):
        # Short header: 1 byte, then DCID of the length we issued.
        out.is_long = False
        out.version = 0
        out.packet_type = PACKET_ONE_RTT
        if length < 1 + short_dcid_len:
            return -1
        out.dcid_offset = 1
        out.dcid_len = short_dcid_len
        out.pn_offset = 1 + short_dcid_len
        out.packet_length = length
        return 0
    out.is_long = True
    if length < 7:
        return -1
    out.version = (<uint32_t>data[1] << 24) | (<uint32_t>data[2] << 16) | (<uint32_t>data[3] << 8) | data[4]
    out.dcid_len = data[5]
    out.dcid_offset = 6
    cdef Py_ssize_t pos = 6 + out.dcid_len
    if pos >= length:
        return -1
    out.scid_len = data[pos]
    out.scid_offset = pos + 1
    pos += 1 + out.scid_len
    if pos > length:
        return -1
    if out.version == 0:
        out.packet_type = PACKET_VERSION_NEGOTIATION
        out.pn_offset = pos
        out.packet_length = length
        return 0
    if out.version != VERSION_1 and out.version != VERSION_2:
        # Unknown version: only the invariant fields are meaningful.
        out.packet_type = -1
        out.pn_offset = pos
        out.packet_length = length
        return 0
    if out.dcid_len > MAX_CID_LENGTH or out.scid_len > MAX_CID_LENGTH:
        return -1
    out.packet_type = _type_from_bits(out.version, (data[0] >> 4) & 3)
    if out.packet_type == PACKET_RETRY:
        # Everything up to the 16-byte integrity tag is the token.
        if length - pos < 16:
            return -1
        out.token_offset = pos
        out.token_len = length - pos - 16
        out.pn_offset = pos
        out.packet_length = length
        return 0
    r.data = data
    r.pos = pos
    r.end = length
    if out.packet_type == PACKET_INITIAL:
        if reader_varint(&r, &value) < 0 or value > <uint64_t>(r.end - r.pos):
            return -1
        out.token_offset = r.pos
        out.token_len = <Py_ssize_t>value
        r.pos += <Py_ssize_t>value
    if reader_varint(&r, &value) < 0 or value > <uint64_t>(r.end - r.pos):
        return -1
    out.pn_offset = r.pos
    out.packet_length = r.pos + <Py_ssize_t>value
    return 0


# Python-visible helpers (slow path: endpoint decisions, tests).

class HeaderInfo:
    """Parsed invariant header fields of one packet (slow path, for tests/tools)."""

    __slots__ = ("is_long", "version", "packet_type", "dcid", "scid", "token", "pn_offset", "packet_length")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def __repr__(self):
        return "HeaderInfo(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def pull_header(const uint8_t[:] data, int short_dcid_len=8):
    """Parse the first packet's header in `data`; ValueError when malformed."""
    cdef PacketHeader h
    cdef Py_ssize_t n = data.shape[0]
    if n == 0 or parse_header(&data[0], n, short_dcid_len, &h) < 0:
        raise ValueError("malformed QUIC packet header")
    raw = bytes(data)
    return HeaderInfo(
        is_long=bool(h.is_long), version=h.version, packet_type=h.packet_type,
        dcid=raw[h.dcid_offset:h.dcid_offset + h.dcid_len],
        scid=raw[h.scid_offset:h.scid_offset + h.scid_len],
        token=raw[h.token_offset:h.token_offset + h.token_len],
        pn_offset=h.pn_offset, packet_length=h.packet_length)


def decode_pn(uint64_t truncated, int pn_len, uint64_t largest_received):
    """RFC 9000 A.3 decoding (Python wrapper, `pn_len` in bytes)."""
    return decode_packet_number(truncated, pn_len, largest_received + 1)


def encode_pn_length(uint64_t pn, largest_acked=None):
    """RFC 9000 A.2: bytes needed to encode `pn` given the largest acknowledged."""
    if largest_acked is None:
        return packet_number_length(pn, 0, False)
    return packet_number_length(pn, largest_acked, True)


def encode_version_negotiation(bytes dcid, bytes scid, versions) -> bytes:
    """A Version Negotiation packet (RFC 9000 §17.2.1) answering a packet whose
    SCID was `scid` and DCID was `dcid` (the IDs are echoed swapped), listing
    `versions` plus one reserved 0x?a?a?a?a version to exercise the peer."""
    first = 0x80 | (os.urandom(1)[0] & 0x7F)
    grease = (int.from_bytes(os.urandom(4), "big") & 0xF0F0F0F0) | 0x0A0A0A0A
    out = bytearray([first, 0, 0, 0, 0, len(scid)]) + scid + bytes([len(dcid)]) + dcid
    for v in list(versions) + [grease]:
        out += v.to_bytes(4, "big")
    return bytes(out)


def parse_version_negotiation(const uint8_t[:] data):
    """Versions listed in a Version Negotiation packet; ValueError if malformed."""
    cdef PacketHeader h
    if data.shape[0] == 0 or parse_header(&data[0], data.shape[0], 0, &h) < 0 or h.packet_type != PACKET_VERSION_NEGOTIATION:
        raise ValueError("not a Version Negotiation packet")
    body = bytes(data[h.pn_offset:])
    if not body or len(body) % 4:
        raise ValueError("malformed Version Negotiation version list")
    return [int.from_bytes(body[i:i + 4], "big") for i in range(0, len(body), 4)]


def encode_retry(uint32_t version, bytes dcid, bytes scid, bytes original_dcid, bytes token, tag_function) -> bytes:
    """A Retry packet (RFC 9000 §17.2.5) with its integrity tag (RFC 9001 §5.8),
    `tag_function(pseudo_packet, version)` computing the tag."""
    first = 0xC0 | (long_type_bits(version, PACKET_RETRY) << 4) | (os.urandom(1)[0] & 0x0F)
    header = bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid + token
    pseudo = bytes([len(original_dcid)]) + original_dcid + header
    return header + tag_function(pseudo, version)
