/*
 * hkdf.c: HMAC and HKDF-Expand-Label on OpenSSL 3 libcrypto (see hkdf.h).
 *
 * Implements RFC 2104, RFC 5869 section 2.3 and RFC 8446 section 7.1.
 */
#include "hkdf.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define QF_HASH_MAX_BLOCK 128 /* SHA-384 block */

/* The digests, fetched once by qf_hkdf_init. */
static EVP_MD *sha256_md, *sha384_md;

int qf_hkdf_init(void) {
  if (sha256_md == NULL) {
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  }
  if (sha384_md == NULL) {
    sha384_md = EVP_MD_fetch(NULL, "SHA384", NULL);
  }
  return sha256_md != NULL && sha384_md != NULL ? 0 : QF_HKDF_ERR_CRYPTO;
}

/*
 * hash_md returns the digest of |hash| and stores its output length in
 * |*len| and its block size in |*block|, or returns NULL.
 */
static const EVP_MD *hash_md(int hash, size_t *len, size_t *block) {
  switch (hash) {
  case QF_HASH_SHA256:
    *len = 32;
    *block = 64;
    return sha256_md;
  case QF_HASH_SHA384:
    *len = 48;
    *block = 128;
    return sha384_md;
  default:
    return NULL;
  }
}

int qf_hash_len(int hash) {
  size_t len, block;
  return hash_md(hash, &len, &block) != NULL ? (int)len : QF_HKDF_ERR_HASH;
}

/* digest2 hashes |a| then |b| into |out| with |ctx|; returns 1 on success. */
static int digest2(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *a,
                   size_t alen, const uint8_t *b, size_t blen,
                   uint8_t *out) {
  return EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
         EVP_DigestUpdate(ctx, a, alen) == 1 &&
         (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
         EVP_DigestFinal_ex(ctx, out, NULL) == 1;
}

int qf_hmac(int hash, const uint8_t *key, size_t keylen, const uint8_t *msg,
            size_t msglen, uint8_t *out) {
  uint8_t pad[QF_HASH_MAX_BLOCK];
  uint8_t inner[QF_HASH_MAX_LEN];
  size_t len, block, i;
  const EVP_MD *md = hash_md(hash, &len, &block);
  EVP_MD_CTX *ctx;
  int ok;

  if (md == NULL) {
    return QF_HKDF_ERR_HASH;
  }
  ctx = EVP_MD_CTX_new();
  if (ctx == NULL) {
    return QF_HKDF_ERR_NOMEM;
  }
  memset(pad, 0, block);
  /* RFC 2104 section 2: a key longer than a block is hashed first. */
  if (keylen > block) {
    ok = digest2(ctx, md, key, keylen, NULL, 0, pad);
  } else {
    if (keylen > 0) {
      memcpy(pad, key, keylen);
    }
    ok = 1;
  }
  for (i = 0; i < block; i++) {
    pad[i] ^= 0x36;
  }
  ok = ok && digest2(ctx, md, pad, block, msg, msglen, inner);
  for (i = 0; i < block; i++) {
    pad[i] ^= 0x36 ^ 0x5c;
  }
  ok = ok && digest2(ctx, md, pad, block, inner, len, out);
  EVP_MD_CTX_free(ctx);
  OPENSSL_cleanse(pad, sizeof(pad));
  OPENSSL_cleanse(inner, sizeof(inner));
  return ok ? 0 : QF_HKDF_ERR_CRYPTO;
}

int qf_hkdf_expand_label(int hash, const uint8_t *secret, size_t secretlen,
                         const uint8_t *label, size_t labellen,
                         const uint8_t *context, size_t contextlen,
                         uint8_t *out, size_t outlen) {
  /* T(n-1) || HkdfLabel || n, RFC 5869 section 2.3. */
  uint8_t msg[QF_HASH_MAX_LEN + 2 + 1 + 6 + QF_HKDF_MAX_LABEL + 1 +
              QF_HKDF_MAX_CONTEXT + 1];
  uint8_t block[QF_HASH_MAX_LEN];
  size_t len = (size_t)qf_hash_len(hash), infolen, done, prev = 0, n;
  uint8_t *info;
  int rv = 0;

  if (qf_hash_len(hash) < 0) {
    return QF_HKDF_ERR_HASH;
  }
  if (labellen > QF_HKDF_MAX_LABEL || contextlen > QF_HKDF_MAX_CONTEXT ||
      outlen > 255 * len || outlen > 0xffff) {
    return QF_HKDF_ERR_LENGTH;
  }
  /* HkdfLabel: uint16 length, opaque label<7..255>, opaque context<0..255>. */
  info = msg + len;
  info[0] = (uint8_t)(outlen >> 8);
  info[1] = (uint8_t)outlen;
  info[2] = (uint8_t)(6 + labellen);
  memcpy(info + 3, "tls13 ", 6);
  if (labellen > 0) {
    memcpy(info + 9, label, labellen);
  }
  info[9 + labellen] = (uint8_t)contextlen;
  if (contextlen > 0) {
    memcpy(info + 10 + labellen, context, contextlen);
  }
  infolen = 10 + labellen + contextlen;
  for (done = 0, n = 1; done < outlen && rv == 0; done += len, n++) {
    info[infolen] = (uint8_t)n;
    /* T(1) has no previous block: the message starts at info. */
    rv = qf_hmac(hash, secret, secretlen, info - prev, prev + infolen + 1,
                 block);
    memcpy(out + done, block, outlen - done < len ? outlen - done : len);
    memcpy(msg, block, len);
    prev = len;
  }
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(msg, len);
  return rv;
}
