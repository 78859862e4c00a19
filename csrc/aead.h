/*
 * aead.h: QUIC packet protection on OpenSSL 3 libcrypto.
 *
 * Payload protection with an AEAD (AES-128-GCM, AES-256-GCM,
 * ChaCha20-Poly1305) and header protection (AES-ECB or ChaCha20 masks),
 * sealed and opened in place.  Every cipher context is keyed once, when the
 * object is initialised; per packet only the nonce changes.
 *
 * Implements RFC 9001 section 5.3 (AEAD usage), section 5.4 (header
 * protection) and the packet number reconstruction of RFC 9000 appendix A.3
 * that unprotecting needs.  Plain C: no Python.h, so it can be built into a
 * standalone C test or fuzz binary.
 */
#ifndef QF_AEAD_H
#define QF_AEAD_H

#include <stddef.h>
#include <stdint.h>

/* TLS 1.3 cipher suite codes (RFC 8446 appendix B.4). */
#define QF_SUITE_AES_128_GCM_SHA256 0x1301
#define QF_SUITE_AES_256_GCM_SHA384 0x1302
#define QF_SUITE_CHACHA20_POLY1305_SHA256 0x1303

#define QF_AEAD_TAG_LEN 16   /* every QUIC v1/v2 AEAD has a 16-byte tag */
#define QF_AEAD_NONCE_LEN 12 /* and a 12-byte nonce (RFC 9001 section 5.3) */
#define QF_HP_SAMPLE_LEN 16  /* RFC 9001 section 5.4.2 */
#define QF_HP_SAMPLE_OFFSET 4 /* the sample starts 4 bytes after the pn */

/* Error codes; every function returns 0 (or a length) or one of these. */
#define QF_ERR_AUTH (-1)   /* the AEAD tag did not verify */
#define QF_ERR_SAMPLE (-2) /* the packet is too short for the hp sample */
#define QF_ERR_LENGTH (-3) /* an offset or length argument is out of range */
#define QF_ERR_CRYPTO (-4) /* libcrypto failed internally */
#define QF_ERR_NOMEM (-5)  /* allocation failed */
#define QF_ERR_SUITE (-6)  /* unknown cipher suite or wrong key length */

/* EVP_CIPHER_CTX, forward-declared so users need no OpenSSL headers. */
struct evp_cipher_ctx_st;

/*
 * qf_aead is the payload protection of one direction and one key phase.
 */
typedef struct qf_aead {
  /* seal_ctx is keyed for encryption; only the nonce changes per packet. */
  struct evp_cipher_ctx_st *seal_ctx;
  /* open_ctx is keyed for decryption with the same key. */
  struct evp_cipher_ctx_st *open_ctx;
  /* iv is the static IV that each packet number is XORed into. */
  uint8_t iv[QF_AEAD_NONCE_LEN];
  /* suite is the QF_SUITE_* code. */
  int suite;
  /* param_nonce is 1 when each packet's nonce is passed as one parameter
   * instead of through EVP_CipherInit_ex (AES-GCM; see aead.c). */
  int param_nonce;
} qf_aead;

/*
 * qf_hp is the header protection key of one direction; it survives key
 * updates (RFC 9001 section 6: header protection keys are not updated).
 */
typedef struct qf_hp {
  /* ctx is AES-ECB keyed once, or ChaCha20 keyed once with the IV set from
   * each sample. */
  struct evp_cipher_ctx_st *ctx;
  /* suite is the QF_SUITE_* code. */
  int suite;
} qf_hp;

/*
 * qf_aead_fetch_ciphers fetches the ciphers of every suite once, so keying a
 * context skips OpenSSL 3's provider look-up.  Optional (the other functions
 * work without it); call it once, before a second thread may use them.
 *
 * Returns 0, or QF_ERR_CRYPTO when a cipher is unavailable (its legacy
 * handle is used then).
 */
int qf_aead_fetch_ciphers(void);

/*
 * qf_aead_key_len returns the AEAD key length of |suite|, or QF_ERR_SUITE.
 */
int qf_aead_key_len(int suite);

/*
 * qf_aead_init keys |aead| for |suite| with |key| (|keylen| bytes) and the
 * 12-byte |iv|.  On failure |aead| holds no resources.  Call qf_aead_free
 * when done.
 *
 * Returns 0, QF_ERR_SUITE, QF_ERR_NOMEM or QF_ERR_CRYPTO.
 */
int qf_aead_init(qf_aead *aead, int suite, const uint8_t *key, size_t keylen,
                 const uint8_t *iv);

/*
 * qf_aead_free releases the contexts of |aead|.  Safe on a zeroed or already
 * freed |aead|.
 */
void qf_aead_free(qf_aead *aead);

/*
 * qf_aead_seal encrypts the |payloadlen| bytes at |pkt| + |headerlen| in
 * place, authenticating the |headerlen| bytes at |pkt| as associated data,
 * and writes the 16-byte tag right after the ciphertext.  The nonce is the
 * IV XOR packet number |pn|.  |pkt| must have room for
 * |headerlen| + |payloadlen| + 16 bytes.
 *
 * Returns 0, QF_ERR_LENGTH or QF_ERR_CRYPTO.
 */
int qf_aead_seal(qf_aead *aead, uint8_t *pkt, size_t headerlen,
                 size_t payloadlen, uint64_t pn);

/*
 * qf_aead_open verifies and decrypts the |ciphertextlen| bytes (tag
 * included) at |pkt| + |headerlen| in place, with the |headerlen| bytes at
 * |pkt| as associated data.  When authentication fails the ciphertext is
 * restored, so |pkt| is left exactly as it was and can be tried with
 * another key.
 *
 * Returns the plaintext length (|ciphertextlen| - 16), QF_ERR_AUTH (also for
 * a ciphertext shorter than the tag), QF_ERR_LENGTH or QF_ERR_CRYPTO.
 */
long qf_aead_open(qf_aead *aead, uint8_t *pkt, size_t headerlen,
                  size_t ciphertextlen, uint64_t pn);

/*
 * qf_hp_init keys |hp| for |suite| with the header protection |key|
 * (|keylen| bytes: 16 for AES-128, 32 for AES-256 and ChaCha20).
 *
 * Returns 0, QF_ERR_SUITE, QF_ERR_NOMEM or QF_ERR_CRYPTO.
 */
int qf_hp_init(qf_hp *hp, int suite, const uint8_t *key, size_t keylen);

/*
 * qf_hp_free releases the context of |hp|.  Safe on a zeroed |hp|.
 */
void qf_hp_free(qf_hp *hp);

/*
 * qf_hp_mask writes the 5-byte header protection mask for the 16-byte
 * |sample| into |mask| (RFC 9001 sections 5.4.3 and 5.4.4).
 *
 * Returns 0 or QF_ERR_CRYPTO.
 */
int qf_hp_mask(qf_hp *hp, uint8_t *mask, const uint8_t *sample);

/*
 * qf_hp_apply masks the first byte (its low 4 bits in a long header, 5 bits
 * in a short one) and the |pnlen| packet number bytes at |pkt| + |pnoffset|
 * in place, sampling 16 bytes at |pkt| + |pnoffset| + 4.  The caller
 * guarantees that those 16 bytes exist and are already ciphertext.
 *
 * Returns 0, QF_ERR_LENGTH (|pnlen| not 1..4) or QF_ERR_CRYPTO.
 */
int qf_hp_apply(qf_hp *hp, uint8_t *pkt, size_t pnoffset, int pnlen);

/*
 * qf_hp_remove unmasks the first byte and the packet number of the
 * |pktlen|-byte packet at |pkt| in place.  If |mask| is not NULL the 5-byte
 * mask is copied there, so the caller can re-apply it.
 *
 * Returns the packet number length 1..4, QF_ERR_SAMPLE when
 * |pnoffset| + 4 + 16 > |pktlen|, or QF_ERR_CRYPTO.
 */
int qf_hp_remove(qf_hp *hp, uint8_t *pkt, size_t pktlen, size_t pnoffset,
                 uint8_t *mask);

/*
 * qf_packet_protect seals the packet at |pkt| (header of |headerlen| bytes
 * whose |pnlen|-byte packet number sits at |pnoffset|, then |payloadlen|
 * bytes of plaintext) and applies header protection, all in place.
 *
 * Returns the protected length |headerlen| + |payloadlen| + 16,
 * QF_ERR_SAMPLE (packet too short to sample: pad the payload), QF_ERR_LENGTH
 * or QF_ERR_CRYPTO.
 */
long qf_packet_protect(qf_aead *aead, qf_hp *hp, uint8_t *pkt,
                       size_t headerlen, size_t pnoffset, int pnlen,
                       size_t payloadlen, uint64_t pn);

/*
 * qf_packet_protect_batch protects |count| packets laid out in |buf|, packet
 * i starting at |buf| + |offsets|[i]; the other arrays hold each packet's
 * qf_packet_protect arguments (|pnoffsets| relative to the packet start).
 * Meant for a GSO batch: one call, no per-packet crossing into Python.
 *
 * Returns 0, or the first error of qf_packet_protect; packets before the
 * failing one are protected, the rest are untouched.
 */
int qf_packet_protect_batch(qf_aead *aead, qf_hp *hp, uint8_t *buf,
                            size_t count, const size_t *offsets,
                            const size_t *headerlens, const size_t *pnoffsets,
                            const int *pnlens, const size_t *payloadlens,
                            const uint64_t *pns);

/*
 * qf_packet_unprotect removes header protection from the |pktlen|-byte
 * packet at |pkt| (packet number field at |pnoffset|), reconstructs the
 * packet number against |largestpn| (RFC 9000 appendix A.3) and opens the
 * payload in place.  The payload runs to the end of |pktlen|, so pass the
 * Length field's extent for a long header packet.  On success |*ppn| is the
 * full packet number and |*pheaderlen| the header length.  When
 * authentication fails the header protection is re-applied, leaving |pkt|
 * exactly as it was.
 *
 * Returns the plaintext length, QF_ERR_AUTH, QF_ERR_SAMPLE, QF_ERR_LENGTH or
 * QF_ERR_CRYPTO.
 */
long qf_packet_unprotect(qf_aead *aead, qf_hp *hp, uint8_t *pkt,
                         size_t pktlen, size_t pnoffset, uint64_t largestpn,
                         uint64_t *ppn, size_t *pheaderlen);

#endif /* QF_AEAD_H */
