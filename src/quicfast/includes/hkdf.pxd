# Extern-only declarations of csrc/hkdf.h (HMAC and HKDF-Expand-Label on
# OpenSSL 3).  No .pyx goes with this file; see hkdf.h for the contracts.

from libc.stdint cimport uint8_t


cdef extern from "hkdf.h" nogil:
    int QF_HASH_SHA256
    int QF_HASH_SHA384
    enum: QF_HASH_MAX_LEN

    int qf_hkdf_init()
    int qf_hash_len(int hash)
    int qf_hmac(int hash, const uint8_t* key, size_t keylen, const uint8_t* msg, size_t msglen, uint8_t* out)
    int qf_hkdf_expand_label(int hash, const uint8_t* secret, size_t secretlen,
                             const uint8_t* label, size_t labellen,
                             const uint8_t* context, size_t contextlen,
                             uint8_t* out, size_t outlen)


cdef extern from "openssl/crypto.h" nogil:
    void OPENSSL_cleanse(void* ptr, size_t len)
