# QUIC packet protection for the engine: AEAD payload protection, header
# protection, and both together for one direction (RFC 9001 sections 5-6).
# The engine cimports this file; the C work is in csrc/aead.c.

from libc.stdint cimport uint8_t, uint64_t

from quicfast.includes.aead cimport qf_aead, qf_hp


cdef enum:
    AEAD_TAG_SIZE = 16  # every QUIC v1/v2 AEAD has a 16-byte tag
    SAMPLE_SIZE = 16    # header protection sample, RFC 9001 section 5.4.2


# Negative results of the cdef methods below (the QF_ERR_* codes of aead.h).
cdef enum:
    CRYPTO_ERR_AUTH = -1    # the AEAD tag did not verify (a normal event)
    CRYPTO_ERR_SAMPLE = -2  # packet too short for the header protection sample
    CRYPTO_ERR_LENGTH = -3  # an offset or length argument is out of range
    CRYPTO_ERR_CRYPTO = -4  # libcrypto failed internally


cdef class Aead:
    # ctx is the C AEAD state, keyed once in __init__ and freed in __dealloc__.
    cdef qf_aead ctx
    # cipher_suite is the TLS cipher suite code (0x1301, 0x1302 or 0x1303).
    cdef readonly int cipher_suite

    cdef Py_ssize_t seal(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t payload_len, uint64_t pn) noexcept nogil
    cdef Py_ssize_t open(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t ciphertext_len, uint64_t pn) noexcept nogil


cdef class HeaderProtection:
    # ctx is the C header protection state, keyed once.
    cdef qf_hp ctx
    # cipher_suite is the TLS cipher suite code.
    cdef readonly int cipher_suite

    cdef int apply(self, uint8_t* packet, Py_ssize_t pn_offset, int pn_len) noexcept nogil
    cdef int remove(self, uint8_t* packet, Py_ssize_t packet_len, Py_ssize_t pn_offset) noexcept nogil


cdef class PacketProtection:
    # aead is the payload protection of the current key phase.
    cdef public Aead aead
    # hp is the header protection; it is shared by every key phase.
    cdef public HeaderProtection hp
    # cipher_suite is the TLS cipher suite code.
    cdef readonly int cipher_suite
    # version is the QUIC version whose HKDF labels derived the keys.
    cdef readonly unsigned int version

    cdef Py_ssize_t protect(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t pn_offset, int pn_len, Py_ssize_t payload_len, uint64_t pn) noexcept nogil
    cdef int protect_batch(self, uint8_t* buf, Py_ssize_t count, Py_ssize_t* offsets, Py_ssize_t* header_lens, Py_ssize_t* pn_offsets, int* pn_lens, Py_ssize_t* payload_lens, uint64_t* pns) noexcept nogil
    cdef Py_ssize_t unprotect(self, uint8_t* packet, Py_ssize_t packet_len, Py_ssize_t pn_offset, uint64_t largest_pn, uint64_t* pn_out, Py_ssize_t* header_len_out) noexcept nogil
