/*
 * hkdf.h: HMAC and the TLS 1.3 HKDF functions on OpenSSL 3 libcrypto.
 *
 * Implements RFC 2104 (HMAC), RFC 5869 sections 2.2-2.3 (HKDF-Extract,
 * HKDF-Expand) and RFC 8446 section 7.1 (HKDF-Expand-Label), for SHA-256 and
 * SHA-384, the hashes of the TLS 1.3 cipher suites QUIC uses (RFC 9001
 * section 5).  Plain C: no Python.h.
 *
 * Strategy: the digests are fetched once (qf_hkdf_init) and HMAC is built on
 * EVP_MD_CTX directly, so a derivation costs four hash compressions and no
 * algorithm look-up.  OpenSSL 3's one-shot HMAC() fetches the digest by name
 * on every call, which costs more than the hashing itself for these short
 * inputs.
 */
#ifndef QF_HKDF_H
#define QF_HKDF_H

#include <stddef.h>
#include <stdint.h>

/* Hash codes. */
#define QF_HASH_SHA256 1
#define QF_HASH_SHA384 2

#define QF_HASH_MAX_LEN 48       /* SHA-384 output */
#define QF_HKDF_MAX_LABEL 249    /* "tls13 " + label fits the 255-byte field */
#define QF_HKDF_MAX_CONTEXT 255

/* Error codes (the values of aead.h). */
#define QF_HKDF_ERR_LENGTH (-3) /* a length is out of range */
#define QF_HKDF_ERR_CRYPTO (-4) /* libcrypto failed internally */
#define QF_HKDF_ERR_NOMEM (-5)  /* allocation failed */
#define QF_HKDF_ERR_HASH (-6)   /* unknown hash code */

/*
 * qf_hkdf_init fetches the digests.  Call it once, before any other function
 * here and before any second thread may call them.
 *
 * Returns 0 or QF_HKDF_ERR_CRYPTO.
 */
int qf_hkdf_init(void);

/*
 * qf_hash_len returns the output length of |hash|, or QF_HKDF_ERR_HASH.
 */
int qf_hash_len(int hash);

/*
 * qf_hmac writes HMAC-|hash|(|key|, |msg|) (qf_hash_len(|hash|) bytes) to
 * |out|.  |key| may be of any length.
 *
 * Returns 0, QF_HKDF_ERR_HASH, QF_HKDF_ERR_NOMEM or QF_HKDF_ERR_CRYPTO.
 */
int qf_hmac(int hash, const uint8_t *key, size_t keylen, const uint8_t *msg,
            size_t msglen, uint8_t *out);

/*
 * qf_hkdf_expand_label writes HKDF-Expand-Label(|secret|, "tls13 " ||
 * |label|, |context|, |outlen|) to |out| (RFC 8446 section 7.1).  |label| is
 * given without the "tls13 " prefix.
 *
 * Returns 0, QF_HKDF_ERR_LENGTH (label longer than QF_HKDF_MAX_LABEL, context
 * longer than QF_HKDF_MAX_CONTEXT, or |outlen| over 255 hash lengths or
 * 65535), QF_HKDF_ERR_HASH, QF_HKDF_ERR_NOMEM or QF_HKDF_ERR_CRYPTO.
 */
int qf_hkdf_expand_label(int hash, const uint8_t *secret, size_t secretlen,
                         const uint8_t *label, size_t labellen,
                         const uint8_t *context, size_t contextlen,
                         uint8_t *out, size_t outlen);

#endif /* QF_HKDF_H */
