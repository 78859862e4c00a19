# Extern-only declarations of csrc/aead.h (QUIC packet protection on
# OpenSSL 3).  No .pyx goes with this file; see aead.h for the contracts.

from libc.stdint cimport uint8_t, uint64_t


cdef extern from "aead.h" nogil:
    int QF_SUITE_AES_128_GCM_SHA256
    int QF_SUITE_AES_256_GCM_SHA384
    int QF_SUITE_CHACHA20_POLY1305_SHA256

    int QF_AEAD_TAG_LEN
    int QF_AEAD_NONCE_LEN
    int QF_HP_SAMPLE_LEN
    int QF_HP_SAMPLE_OFFSET

    int QF_ERR_AUTH
    int QF_ERR_SAMPLE
    int QF_ERR_LENGTH
    int QF_ERR_CRYPTO
    int QF_ERR_NOMEM
    int QF_ERR_SUITE

    # Embedded by value in the Cython classes; fields are private to C.
    ctypedef struct qf_aead:
        pass

    ctypedef struct qf_hp:
        pass

    int qf_aead_fetch_ciphers()
    int qf_aead_key_len(int suite)
    int qf_aead_init(qf_aead* aead, int suite, const uint8_t* key, size_t keylen, const uint8_t* iv)
    void qf_aead_free(qf_aead* aead)
    int qf_aead_seal(qf_aead* aead, uint8_t* pkt, size_t headerlen, size_t payloadlen, uint64_t pn)
    long qf_aead_open(qf_aead* aead, uint8_t* pkt, size_t headerlen, size_t ciphertextlen, uint64_t pn)

    int qf_hp_init(qf_hp* hp, int suite, const uint8_t* key, size_t keylen)
    void qf_hp_free(qf_hp* hp)
    int qf_hp_mask(qf_hp* hp, uint8_t* mask, const uint8_t* sample)
    int qf_hp_apply(qf_hp* hp, uint8_t* pkt, size_t pnoffset, int pnlen)
    int qf_hp_remove(qf_hp* hp, uint8_t* pkt, size_t pktlen, size_t pnoffset, uint8_t* mask)

    long qf_packet_protect(qf_aead* aead, qf_hp* hp, uint8_t* pkt, size_t headerlen,
                           size_t pnoffset, int pnlen, size_t payloadlen, uint64_t pn)
    int qf_packet_protect_batch(qf_aead* aead, qf_hp* hp, uint8_t* buf, size_t count,
                                const size_t* offsets, const size_t* headerlens,
                                const size_t* pnoffsets, const int* pnlens,
                                const size_t* payloadlens, const uint64_t* pns)
    long qf_packet_unprotect(qf_aead* aead, qf_hp* hp, uint8_t* pkt, size_t pktlen,
                             size_t pnoffset, uint64_t largestpn, uint64_t* ppn, size_t* pheaderlen)
