/*
 * aead.c: QUIC packet protection on OpenSSL 3 libcrypto (see aead.h).
 *
 * Implements RFC 9001 sections 5.3 and 5.4, and RFC 9000 appendix A.3.
 *
 * Strategy: each qf_aead owns two EVP_CIPHER_CTX (one per direction of the
 * cipher: OpenSSL's AEAD contexts are either encrypting or decrypting), both
 * keyed once in qf_aead_init.  Per packet we only set the nonce (see
 * set_nonce), which resets the AEAD state without re-running the key
 * schedule.  Header protection keeps one context too: AES-ECB
 * encrypts the sample; ChaCha20 takes the sample as its 16-byte IV, whose
 * layout (32-bit little-endian block counter, then the 96-bit nonce) is
 * exactly what RFC 9001 section 5.4.4 asks for.
 */
#include "aead.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/*
 * tag_param points an OSSL_PARAM at a 16-byte tag.  Reading or writing the
 * tag through EVP_CIPHER_CTX_{get,set}_params skips the translation layer
 * behind EVP_CIPHER_CTX_ctrl, about 25 ns per packet on OpenSSL 3.0.
 */
static inline void tag_param(OSSL_PARAM *params, uint8_t *tag) {
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                tag, QF_AEAD_TAG_LEN);
  params[1] = OSSL_PARAM_construct_end();
}

/* A packet never comes near INT_MAX, but EVP takes int lengths. */
#define QF_MAX_EVP_LEN ((size_t)INT_MAX - QF_AEAD_TAG_LEN)

/*
 * The ciphers, fetched once by qf_aead_fetch_ciphers: keying a context with
 * EVP_aes_128_gcm() and friends makes OpenSSL 3 look the implementation up
 * in its provider store on every EVP_CipherInit_ex, about 0.5 us a context.
 * Until they are fetched (or when a fetch failed) those legacy handles serve.
 * Index: 0-2 the AEADs, 3-5 the header protection ciphers, suite order.
 */
static EVP_CIPHER *fetched[6];
static const char *const cipher_names[6] = {
    "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305",
    "AES-128-ECB", "AES-256-ECB", "ChaCha20"};

int qf_aead_fetch_ciphers(void) {
  int i, rv = 0;
  for (i = 0; i < 6; i++) {
    if (fetched[i] == NULL) {
      fetched[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
      rv = fetched[i] == NULL ? QF_ERR_CRYPTO : rv;
    }
  }
  return rv;
}

/*
 * suite_cipher returns the cipher of |suite| (the AEAD, or with |hp| the
 * header protection cipher) and stores its key length in |*keylen|.
 */
static const EVP_CIPHER *suite_cipher(int suite, int hp, size_t *keylen) {
  static const EVP_CIPHER *(*const legacy[6])(void) = {
      EVP_aes_128_gcm, EVP_aes_256_gcm, EVP_chacha20_poly1305,
      EVP_aes_128_ecb, EVP_aes_256_ecb, EVP_chacha20};
  int i;
  switch (suite) {
  case QF_SUITE_AES_128_GCM_SHA256:
    i = 0;
    *keylen = 16;
    break;
  case QF_SUITE_AES_256_GCM_SHA384:
    i = 1;
    *keylen = 32;
    break;
  case QF_SUITE_CHACHA20_POLY1305_SHA256:
    i = 2;
    *keylen = 32;
    break;
  default:
    return NULL;
  }
  i += hp ? 3 : 0;
  return fetched[i] != NULL ? fetched[i] : legacy[i]();
}

/*
 * Setting the nonce.  EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc)
 * is the documented way, but on OpenSSL 3.0 every call first asks the
 * provider for the IV length through its parameter lookup (a chain of
 * OSSL_PARAM_locate and strcmp), then dispatches the init: 100-200 ns per
 * packet, as much as the tag handling.  OpenSSL's GCM also takes a whole
 * nonce as one OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED parameter of length
 * (size_t)-1 ("restore the whole IV", the convention of
 * EVP_CTRL_GCM_SET_IV_FIXED with -1 since OpenSSL 1.0.1), after which the
 * next Update starts a new message under that nonce; when opening, the
 * expected tag rides in the same parameter array.  That convention is
 * OpenSSL's TLS plumbing rather than a documented API, so param_nonce_works
 * checks it against EVP_CipherInit_ex once per suite and process, and
 * EVP_CipherInit_ex stays in use when they disagree.  ChaCha20-Poly1305
 * always uses EVP_CipherInit_ex: its fixed IV means something else.
 */
static inline int set_nonce(EVP_CIPHER_CTX *ctx, int param, int enc,
                            const uint8_t *nonce, uint8_t *tag) {
  OSSL_PARAM params[3];
  size_t n = 0;

  if (!param) {
    return EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) == 1 &&
           (tag == NULL || (tag_param(params, tag),
                            EVP_CIPHER_CTX_set_params(ctx, params) == 1));
  }
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, (void *)nonce, (size_t)-1);
  if (tag != NULL) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                    tag, QF_AEAD_TAG_LEN);
  }
  params[n] = OSSL_PARAM_construct_end();
  return EVP_CIPHER_CTX_set_params(ctx, params) == 1;
}

/*
 * seal_with seals the 16 bytes at |buf| + 16 in place with the 16 bytes at
 * |buf| as associated data and writes the tag at |buf| + 32; returns 1 on
 * success.  Used only by param_nonce_works.
 */
static int seal_with(EVP_CIPHER_CTX *ctx, int param, const uint8_t *nonce,
                     uint8_t *buf) {
  OSSL_PARAM params[2];
  int outl;

  tag_param(params, buf + 32);
  return set_nonce(ctx, param, 1, nonce, NULL) &&
         EVP_EncryptUpdate(ctx, NULL, &outl, buf, 16) == 1 &&
         EVP_EncryptUpdate(ctx, buf + 16, &outl, buf + 16, 16) == 1 &&
         EVP_EncryptFinal_ex(ctx, buf + 48, &outl) == 1 &&
         EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

/*
 * open_with opens what seal_with produced; returns 1 when the tag verifies.
 */
static int open_with(EVP_CIPHER_CTX *ctx, const uint8_t *nonce,
                     const uint8_t *sealed) {
  uint8_t buf[64];
  int outl;

  memcpy(buf, sealed, 48);
  return set_nonce(ctx, 1, 0, nonce, buf + 32) &&
         EVP_DecryptUpdate(ctx, NULL, &outl, buf, 16) == 1 &&
         EVP_DecryptUpdate(ctx, buf + 16, &outl, buf + 16, 16) == 1 &&
         EVP_DecryptFinal_ex(ctx, buf + 48, &outl) == 1;
}

/*
 * param_nonce_works tells whether |seal| and |open| (keyed for the same
 * AES-GCM key) accept the one-parameter nonce: the same ciphertext and tag
 * as EVP_CipherInit_ex for two nonces, in either order after a finished
 * message, and an open that verifies under the right nonce only.  The answer
 * is kept per suite for the process (two threads racing here compute the
 * same answer).  The contexts are left finished; each packet sets a nonce.
 */
static int param_nonce_works(int suite, EVP_CIPHER_CTX *seal,
                             EVP_CIPHER_CTX *open) {
  static int known[2]; /* AES-128, AES-256: 0 unknown, 1 yes, -1 no */
  static const uint8_t n1[QF_AEAD_NONCE_LEN] = {1, 2, 3};
  static const uint8_t n2[QF_AEAD_NONCE_LEN] = {9, 8, 7, [11] = 6};
  uint8_t a[64] = {0}, b[64] = {0}, c[64] = {0}, d[64] = {0};
  int *answer;

  if (suite != QF_SUITE_AES_128_GCM_SHA256 &&
      suite != QF_SUITE_AES_256_GCM_SHA384) {
    return 0;
  }
  answer = &known[suite == QF_SUITE_AES_256_GCM_SHA384];
  if (*answer == 0) {
    memset(a + 16, 0x5a, 16);
    memcpy(b, a, 64);
    memcpy(c, a, 64);
    memcpy(d, a, 64);
    *answer = (seal_with(seal, 0, n1, a) && seal_with(seal, 1, n2, b) &&
               seal_with(seal, 0, n2, c) && seal_with(seal, 1, n1, d) &&
               memcmp(a, d, 48) == 0 && memcmp(b, c, 48) == 0 &&
               memcmp(a, b, 48) != 0 && open_with(open, n1, a) &&
               !open_with(open, n2, a) && open_with(open, n2, b))
                  ? 1
                  : -1;
    ERR_clear_error(); /* the failed open above may have queued an error */
  }
  return *answer == 1;
}

int qf_aead_key_len(int suite) {
  size_t keylen;
  return suite_cipher(suite, 0, &keylen) ? (int)keylen : QF_ERR_SUITE;
}

/*
 * new_keyed_ctx returns a context keyed with |key| for |cipher|, encrypting
 * if |enc| is 1, or NULL.  The AEAD nonce length is QUIC's 12 bytes, which
 * is every suite's default, so nothing else needs setting.
 */
static EVP_CIPHER_CTX *new_keyed_ctx(const EVP_CIPHER *cipher,
                                     const uint8_t *key, int enc) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) {
    return NULL;
  }
  if (EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, enc) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int qf_aead_init(qf_aead *aead, int suite, const uint8_t *key, size_t keylen,
                 const uint8_t *iv) {
  size_t want;
  const EVP_CIPHER *cipher = suite_cipher(suite, 0, &want);

  memset(aead, 0, sizeof(*aead));
  if (cipher == NULL || keylen != want) {
    return QF_ERR_SUITE;
  }
  aead->seal_ctx = new_keyed_ctx(cipher, key, 1);
  aead->open_ctx = new_keyed_ctx(cipher, key, 0);
  if (aead->seal_ctx == NULL || aead->open_ctx == NULL) {
    qf_aead_free(aead);
    return QF_ERR_CRYPTO;
  }
  memcpy(aead->iv, iv, QF_AEAD_NONCE_LEN);
  aead->suite = suite;
  aead->param_nonce =
      param_nonce_works(suite, aead->seal_ctx, aead->open_ctx);
  return 0;
}

void qf_aead_free(qf_aead *aead) {
  EVP_CIPHER_CTX_free(aead->seal_ctx); /* NULL is a no-op */
  EVP_CIPHER_CTX_free(aead->open_ctx);
  aead->seal_ctx = NULL;
  aead->open_ctx = NULL;
  /* The IV is not secret (the key is, and OpenSSL wipes it), but a freed
   * object should not look usable. */
  memset(aead->iv, 0, sizeof(aead->iv));
}

/*
 * make_nonce writes IV XOR the 62-bit packet number |pn|, left-padded to 12
 * bytes in network byte order, into |nonce| (RFC 9001 section 5.3).
 */
static inline void make_nonce(uint8_t *nonce, const uint8_t *iv,
                              uint64_t pn) {
  int i;
  memcpy(nonce, iv, QF_AEAD_NONCE_LEN);
  for (i = 0; i < 8; i++) {
    nonce[QF_AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)(pn >> (8 * i));
  }
}

int qf_aead_seal(qf_aead *aead, uint8_t *pkt, size_t headerlen,
                 size_t payloadlen, uint64_t pn) {
  EVP_CIPHER_CTX *ctx = aead->seal_ctx;
  uint8_t nonce[QF_AEAD_NONCE_LEN];
  uint8_t *payload = pkt + headerlen;
  OSSL_PARAM params[2];
  int outl;

  if (headerlen > QF_MAX_EVP_LEN || payloadlen > QF_MAX_EVP_LEN) {
    return QF_ERR_LENGTH;
  }
  make_nonce(nonce, aead->iv, pn);
  if (!set_nonce(ctx, aead->param_nonce, 1, nonce, NULL)) {
    return QF_ERR_CRYPTO;
  }
  /* A NULL output buffer makes EVP take these bytes as associated data. */
  if (headerlen > 0 &&
      EVP_EncryptUpdate(ctx, NULL, &outl, pkt, (int)headerlen) != 1) {
    return QF_ERR_CRYPTO;
  }
  /* In place: OpenSSL allows the output to be the input buffer exactly. */
  if (payloadlen > 0 &&
      EVP_EncryptUpdate(ctx, payload, &outl, payload, (int)payloadlen) != 1) {
    return QF_ERR_CRYPTO;
  }
  /* GCM and ChaCha20-Poly1305 are stream modes: Final emits no bytes. */
  tag_param(params, payload + payloadlen);
  if (EVP_EncryptFinal_ex(ctx, payload + payloadlen, &outl) != 1 ||
      EVP_CIPHER_CTX_get_params(ctx, params) != 1) {
    return QF_ERR_CRYPTO;
  }
  return 0;
}

/*
 * restore_ciphertext re-encrypts the |len| plaintext bytes at |data| under
 * |nonce|, which gives back the ciphertext they came from: both AEADs here
 * encrypt with a keystream that does not depend on the associated data.
 */
static int restore_ciphertext(qf_aead *aead, uint8_t *data, size_t len,
                              const uint8_t *nonce) {
  int outl;
  if (!set_nonce(aead->seal_ctx, aead->param_nonce, 1, nonce, NULL) ||
      (len > 0 &&
       EVP_EncryptUpdate(aead->seal_ctx, data, &outl, data, (int)len) != 1)) {
    return QF_ERR_CRYPTO;
  }
  return 0;
}

long qf_aead_open(qf_aead *aead, uint8_t *pkt, size_t headerlen,
                  size_t ciphertextlen, uint64_t pn) {
  EVP_CIPHER_CTX *ctx = aead->open_ctx;
  uint8_t nonce[QF_AEAD_NONCE_LEN];
  uint8_t *payload = pkt + headerlen;
  size_t len;
  int outl;

  if (ciphertextlen < QF_AEAD_TAG_LEN) {
    return QF_ERR_AUTH; /* too short to carry a tag: cannot authenticate */
  }
  if (headerlen > QF_MAX_EVP_LEN || ciphertextlen > QF_MAX_EVP_LEN) {
    return QF_ERR_LENGTH;
  }
  len = ciphertextlen - QF_AEAD_TAG_LEN;
  make_nonce(nonce, aead->iv, pn);
  /* The expected tag is set with the nonce: decrypting in place rewrites
   * only the |len| bytes before it. */
  if (!set_nonce(ctx, aead->param_nonce, 0, nonce, payload + len) ||
      (headerlen > 0 &&
       EVP_DecryptUpdate(ctx, NULL, &outl, pkt, (int)headerlen) != 1) ||
      (len > 0 && EVP_DecryptUpdate(ctx, payload, &outl, payload,
                                    (int)len) != 1)) {
    return QF_ERR_CRYPTO;
  }
  if (EVP_DecryptFinal_ex(ctx, payload + len, &outl) != 1) {
    /* Forged or corrupted: the plaintext is not released.  Undo the
     * decryption so the caller may try another key (RFC 9001 section
     * 6.3) or drop the packet with its bytes intact. */
    if (restore_ciphertext(aead, payload, len, nonce) != 0) {
      return QF_ERR_CRYPTO;
    }
    return QF_ERR_AUTH;
  }
  return (long)len;
}

int qf_hp_init(qf_hp *hp, int suite, const uint8_t *key, size_t keylen) {
  size_t want;
  const EVP_CIPHER *cipher = suite_cipher(suite, 1, &want);

  memset(hp, 0, sizeof(*hp));
  if (cipher == NULL || keylen != want) {
    return QF_ERR_SUITE;
  }
  hp->ctx = new_keyed_ctx(cipher, key, 1);
  if (hp->ctx == NULL) {
    return QF_ERR_CRYPTO;
  }
  /* ECB on exactly one block: no padding. */
  EVP_CIPHER_CTX_set_padding(hp->ctx, 0);
  hp->suite = suite;
  return 0;
}

void qf_hp_free(qf_hp *hp) {
  EVP_CIPHER_CTX_free(hp->ctx);
  hp->ctx = NULL;
}

int qf_hp_mask(qf_hp *hp, uint8_t *mask, const uint8_t *sample) {
  static const uint8_t zeros[5];
  uint8_t block[QF_HP_SAMPLE_LEN];
  int outl;

  if (hp->suite == QF_SUITE_CHACHA20_POLY1305_SHA256) {
    /* RFC 9001 section 5.4.4: counter = sample[0..3] little-endian,
     * nonce = sample[4..15]; the mask is the keystream over 5 zero bytes. */
    if (EVP_EncryptInit_ex(hp->ctx, NULL, NULL, NULL, sample) != 1 ||
        EVP_EncryptUpdate(hp->ctx, mask, &outl, zeros, 5) != 1) {
      return QF_ERR_CRYPTO;
    }
    return 0;
  }
  /* RFC 9001 section 5.4.3: mask = AES-ECB(hp_key, sample). */
  if (EVP_EncryptUpdate(hp->ctx, block, &outl, sample, QF_HP_SAMPLE_LEN) !=
      1) {
    return QF_ERR_CRYPTO;
  }
  memcpy(mask, block, 5);
  return 0;
}

/*
 * first_byte_bits returns the bits of the first byte that header protection
 * covers: 4 in a long header, 5 in a short one (RFC 9001 section 5.4.1).
 * The header form bit itself is never masked, so this works both ways.
 */
static inline uint8_t first_byte_bits(uint8_t first) {
  return (first & 0x80) ? 0x0f : 0x1f;
}

static inline void xor_mask(uint8_t *pkt, size_t pnoffset, int pnlen,
                            const uint8_t *mask) {
  int i;
  pkt[0] ^= mask[0] & first_byte_bits(pkt[0]);
  for (i = 0; i < pnlen; i++) {
    pkt[pnoffset + i] ^= mask[1 + i];
  }
}

int qf_hp_apply(qf_hp *hp, uint8_t *pkt, size_t pnoffset, int pnlen) {
  uint8_t mask[5];

  if (pnlen < 1 || pnlen > 4) {
    return QF_ERR_LENGTH;
  }
  if (qf_hp_mask(hp, mask, pkt + pnoffset + QF_HP_SAMPLE_OFFSET) != 0) {
    return QF_ERR_CRYPTO;
  }
  xor_mask(pkt, pnoffset, pnlen, mask);
  return 0;
}

int qf_hp_remove(qf_hp *hp, uint8_t *pkt, size_t pktlen, size_t pnoffset,
                 uint8_t *mask) {
  uint8_t m[5];
  int pnlen, i;

  /* Written so that no sum can overflow for any |pnoffset|. */
  if (pktlen < QF_HP_SAMPLE_OFFSET + QF_HP_SAMPLE_LEN ||
      pnoffset > pktlen - QF_HP_SAMPLE_OFFSET - QF_HP_SAMPLE_LEN) {
    return QF_ERR_SAMPLE;
  }
  if (qf_hp_mask(hp, m, pkt + pnoffset + QF_HP_SAMPLE_OFFSET) != 0) {
    return QF_ERR_CRYPTO;
  }
  pkt[0] ^= m[0] & first_byte_bits(pkt[0]);
  pnlen = (pkt[0] & 0x03) + 1; /* Packet Number Length, RFC 9000 17.2 */
  for (i = 0; i < pnlen; i++) {
    pkt[pnoffset + i] ^= m[1 + i];
  }
  if (mask != NULL) {
    memcpy(mask, m, 5);
  }
  return pnlen;
}

long qf_packet_protect(qf_aead *aead, qf_hp *hp, uint8_t *pkt,
                       size_t headerlen, size_t pnoffset, int pnlen,
                       size_t payloadlen, uint64_t pn) {
  int rv;

  if (pnlen < 1 || pnlen > 4 || pnoffset + (size_t)pnlen != headerlen) {
    return QF_ERR_LENGTH;
  }
  /* The sample must lie inside the packet: pnoffset + 4 + 16 <= total.
   * RFC 9001 section 5.4.2 has the sender pad to guarantee it. */
  if (headerlen + payloadlen < pnoffset + QF_HP_SAMPLE_OFFSET) {
    return QF_ERR_SAMPLE;
  }
  rv = qf_aead_seal(aead, pkt, headerlen, payloadlen, pn);
  if (rv != 0) {
    return rv;
  }
  rv = qf_hp_apply(hp, pkt, pnoffset, pnlen);
  if (rv != 0) {
    return rv;
  }
  return (long)(headerlen + payloadlen + QF_AEAD_TAG_LEN);
}

int qf_packet_protect_batch(qf_aead *aead, qf_hp *hp, uint8_t *buf,
                            size_t count, const size_t *offsets,
                            const size_t *headerlens, const size_t *pnoffsets,
                            const int *pnlens, const size_t *payloadlens,
                            const uint64_t *pns) {
  size_t i;
  long rv;

  for (i = 0; i < count; i++) {
    rv = qf_packet_protect(aead, hp, buf + offsets[i], headerlens[i],
                           pnoffsets[i], pnlens[i], payloadlens[i], pns[i]);
    if (rv < 0) {
      return (int)rv;
    }
  }
  return 0;
}

/*
 * decode_pn reconstructs a full packet number from the |nbits|-bit
 * |truncated| value nearest to |largest| + 1 (RFC 9000 appendix A.3).
 * |largest| is UINT64_MAX when no packet has been processed yet, so that
 * the expected packet number wraps to 0.
 */
static uint64_t decode_pn(uint64_t largest, uint64_t truncated, int nbits) {
  uint64_t expected = largest + 1;
  uint64_t win = (uint64_t)1 << nbits;
  uint64_t hwin = win / 2;
  uint64_t candidate = (expected & ~(win - 1)) | truncated;

  if (candidate + hwin <= expected &&
      candidate < ((uint64_t)1 << 62) - win) {
    return candidate + win;
  }
  if (candidate > expected + hwin && candidate >= win) {
    return candidate - win;
  }
  return candidate;
}

long qf_packet_unprotect(qf_aead *aead, qf_hp *hp, uint8_t *pkt,
                         size_t pktlen, size_t pnoffset, uint64_t largestpn,
                         uint64_t *ppn, size_t *pheaderlen) {
  uint8_t mask[5];
  uint64_t truncated = 0;
  size_t headerlen;
  uint64_t pn;
  long rv;
  int pnlen, i;

  pnlen = qf_hp_remove(hp, pkt, pktlen, pnoffset, mask);
  if (pnlen < 0) {
    return pnlen;
  }
  for (i = 0; i < pnlen; i++) {
    truncated = (truncated << 8) | pkt[pnoffset + i];
  }
  pn = decode_pn(largestpn, truncated, pnlen * 8);
  headerlen = pnoffset + (size_t)pnlen;
  /* qf_hp_remove checked pktlen >= pnoffset + 20 >= headerlen + 16. */
  rv = qf_aead_open(aead, pkt, headerlen, pktlen - headerlen, pn);
  if (rv < 0) {
    xor_mask(pkt, pnoffset, pnlen, mask); /* leave |pkt| as it came */
    return rv;
  }
  *ppn = pn;
  *pheaderlen = headerlen;
  return rv;
}
