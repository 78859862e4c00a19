# cython: boundscheck=False, wraparound=False
"""QUIC packet protection: keys from secrets, AEAD, header protection, key update.

Implements RFC 9001 section 5 (packet protection: 5.1 key derivation, 5.2
Initial secrets, 5.3 AEAD usage, 5.4 header protection, 5.8 Retry integrity),
section 6 (key update), the AEAD limits of section 6.6, and the version 2
salt, labels and Retry keys of RFC 9369 section 3.3.  Stateless reset tokens
(RFC 9000 section 10.3.2) are derived here as well.

Strategy: the per-packet work is C (csrc/aead.c) on contexts keyed once, and
every packet is sealed and opened in place in the caller's buffer.  The
engine calls the ``cdef`` methods declared in crypto.pxd without the GIL;
the Python methods (``seal_into``, ``open_into``, ``protect_packet``,
``unprotect_packet``, ``protect_segments``) wrap them for tests,
benchmarks and setup code.  Key derivation is C as well (csrc/hkdf.c:
HMAC on digests fetched once; the TLS key schedule uses it too), and
``PacketProtection.from_secret`` keys its contexts from the derived bytes
without making Python objects of them.

Every in-place method mutates its buffer argument.  A packet that fails
authentication is left exactly as it was given, so it can be retried with
another key.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport UINT64_MAX, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from quicfast.includes.aead cimport (
    QF_ERR_AUTH,
    QF_ERR_SAMPLE,
    qf_aead_fetch_ciphers,
    qf_aead_free,
    qf_aead_init,
    qf_aead_open,
    qf_aead_seal,
    qf_hp_apply,
    qf_hp_free,
    qf_hp_init,
    qf_hp_mask,
    qf_hp_remove,
    qf_packet_protect,
    qf_packet_protect_batch,
    qf_packet_unprotect,
)
from quicfast.includes.hkdf cimport (
    OPENSSL_cleanse,
    QF_HASH_MAX_LEN,
    QF_HASH_SHA256,
    QF_HASH_SHA384,
    qf_hash_len,
    qf_hkdf_expand_label,
    qf_hkdf_init,
    qf_hmac,
)

__all__ = [
    "CIPHER_SUITES",
    "AES_128_GCM_SHA256",
    "AES_256_GCM_SHA384",
    "CHACHA20_POLY1305_SHA256",
    "VERSION_1",
    "VERSION_2",
    "AEAD_TAG_SIZE",
    "SAMPLE_SIZE",
    "CryptoError",
    "Aead",
    "HeaderProtection",
    "PacketProtection",
    "hmac_digest",
    "hkdf_extract",
    "hkdf_expand_label",
    "initial_secrets",
    "initial_packet_protections",
    "derive_packet_keys",
    "next_secret",
    "retry_integrity_tag",
    "stateless_reset_token",
    "confidentiality_limit",
    "integrity_limit",
]

# TLS 1.3 cipher suite codes (RFC 8446 appendix B.4).
AES_128_GCM_SHA256 = 0x1301
AES_256_GCM_SHA384 = 0x1302
CHACHA20_POLY1305_SHA256 = 0x1303

# QUIC versions whose packet protection this module knows.
VERSION_1 = 0x00000001  # RFC 9000
VERSION_2 = 0x6B3343CF  # RFC 9369 section 3.1

# Public copies of the .pxd enum for Python code.
globals()["AEAD_TAG_SIZE"] = AEAD_TAG_SIZE
globals()["SAMPLE_SIZE"] = SAMPLE_SIZE

# cipher suite -> (hash name, AEAD key length, header protection key length)
CIPHER_SUITES = {
    AES_128_GCM_SHA256: ("sha256", 16, 16),
    AES_256_GCM_SHA384: ("sha384", 32, 32),
    CHACHA20_POLY1305_SHA256: ("sha256", 32, 32),
}

# initial_salt, RFC 9001 section 5.2 and RFC 9369 section 3.3.1.
_INITIAL_SALT = {
    VERSION_1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    VERSION_2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
}

# Label prefix of "<prefix> key/iv/hp/ku", RFC 9001 section 5.1 and RFC 9369
# section 3.3.2.
_LABEL_PREFIX = {VERSION_1: b"quic", VERSION_2: b"quicv2"}

# Retry Integrity Tag AES-128-GCM key and nonce, RFC 9001 section 5.8 and
# RFC 9369 section 3.3.3.
_RETRY_KEY_NONCE = {
    VERSION_1: (
        bytes.fromhex("be0c690b9f66575a1d766b54e368c84e"),
        bytes.fromhex("461599d35d632bf2239825bb"),
    ),
    VERSION_2: (
        bytes.fromhex("8fb4b01b56ac48e260fbcbcead7ccc92"),
        bytes.fromhex("d86969bc2d7c6d9990efb04a"),
    ),
}
_retry_aeads = {}


class CryptoError(ValueError):
    """A packet could not be unprotected: its AEAD tag did not verify, or it
    is too short to hold the header protection sample.

    Raised only by the Python wrappers; the ``cdef`` methods return a
    negative code instead, since a forged packet is a normal event.
    """


def _hash_name(int cipher_suite):
    try:
        return CIPHER_SUITES[cipher_suite][0]
    except KeyError:
        raise ValueError(f"unsupported cipher suite 0x{cipher_suite:04x}") from None


# --------------------------------------------------------------------------
# Key derivation (RFC 5869, RFC 8446 section 7.1, RFC 9001 section 5), in C
# (csrc/hkdf.c); the TLS key schedule uses these functions too.
# --------------------------------------------------------------------------

if qf_hkdf_init() != 0:
    raise ImportError("quicfast: OpenSSL has no SHA-256/SHA-384")
# A cipher OpenSSL lacks fails later, when a context is keyed with it.
qf_aead_fetch_ciphers()

# "<prefix> key", "<prefix> iv", "<prefix> hp", "<prefix> ku" by QUIC version.
_PACKET_LABELS = {
    version: (prefix + b" key", prefix + b" iv", prefix + b" hp", prefix + b" ku")
    for version, prefix in _LABEL_PREFIX.items()
}


cdef tuple _packet_labels(unsigned int version):
    try:
        return _PACKET_LABELS[version]
    except KeyError:
        raise ValueError(f"unsupported QUIC version 0x{version:08x}") from None


cdef int _hash_code(str hash_name) except -1:
    if hash_name == "sha256":
        return QF_HASH_SHA256
    if hash_name == "sha384":
        return QF_HASH_SHA384
    raise ValueError(f"unsupported hash {hash_name!r}")


cdef int _suite_hash(int cipher_suite, int* key_len) except -1:
    """The QF_HASH_* code of ``cipher_suite``; its AEAD (and header
    protection) key length goes to ``key_len``."""
    if cipher_suite == AES_128_GCM_SHA256:
        key_len[0] = 16
        return QF_HASH_SHA256
    if cipher_suite == AES_256_GCM_SHA384:
        key_len[0] = 32
        return QF_HASH_SHA384
    if cipher_suite == CHACHA20_POLY1305_SHA256:
        key_len[0] = 32
        return QF_HASH_SHA256
    raise ValueError(f"unsupported cipher suite 0x{cipher_suite:04x}")


cdef int _expand(int hash, const uint8_t* secret, size_t secret_len, bytes label, const uint8_t* context,
                 size_t context_len, uint8_t* out, size_t length) except -1:
    cdef int rv = qf_hkdf_expand_label(hash, secret, secret_len, label, len(label), context, context_len,
                                       out, length)
    if rv != 0:
        raise ValueError(f"HKDF-Expand-Label failed ({rv}): label or context too long, or length out of range")
    return 0


def hmac_digest(str hash_name, bytes key, bytes message):
    """HMAC (RFC 2104) with SHA-256 or SHA-384: the same bytes as
    :func:`hmac.digest`, without a digest look-up per call."""
    cdef uint8_t out[QF_HASH_MAX_LEN]
    cdef int hash = _hash_code(hash_name)
    if qf_hmac(hash, key, len(key), message, len(message), out) != 0:
        raise ValueError("HMAC failed")
    return out[:qf_hash_len(hash)]


def hkdf_extract(str hash_name, bytes salt, bytes ikm):
    """HKDF-Extract (RFC 5869 section 2.2): HMAC-Hash(salt, ikm); an empty
    ``salt`` is the zero-filled one of the RFC.

    :param hash_name: ``"sha256"`` or ``"sha384"``.
    """
    return hmac_digest(hash_name, salt, ikm)


def hkdf_expand_label(str hash_name, bytes secret, bytes label, bytes context, Py_ssize_t length):
    """HKDF-Expand-Label (RFC 8446 section 7.1): HKDF-Expand with the
    ``HkdfLabel`` structure; ``label`` is given without the ``"tls13 "`` prefix.

    :raises ValueError: when ``label`` is over 249 bytes, ``context`` over
        255, or ``length`` over 255 hash lengths.
    """
    if length < 0:
        raise ValueError("length must not be negative")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, length)
    _expand(_hash_code(hash_name), secret, len(secret), label, context, len(context), <uint8_t*>PyBytes_AS_STRING(out),
            <size_t>length)
    return out


def initial_secrets(bytes dcid, unsigned int version=VERSION_1):
    """Return ``(client_secret, server_secret)`` for Initial packets, derived
    from the client's first Destination Connection ID (RFC 9001 section 5.2,
    RFC 9369 section 3.3.1).
    """
    cdef uint8_t secrets[64]
    _initial_secrets(dcid, version, secrets)
    return secrets[:32], secrets[32:64]


cdef int _initial_secrets(bytes dcid, unsigned int version, uint8_t* out) except -1:
    """The client's then the server's Initial secret (32 bytes each) to ``out``."""
    cdef uint8_t initial_secret[32]
    try:
        salt = _INITIAL_SALT[version]
    except KeyError:
        raise ValueError(f"unsupported QUIC version 0x{version:08x}") from None
    if qf_hmac(QF_HASH_SHA256, salt, len(salt), dcid, len(dcid), initial_secret) != 0:
        raise ValueError("HMAC failed")
    _expand(QF_HASH_SHA256, initial_secret, 32, b"client in", NULL, 0, out, 32)
    _expand(QF_HASH_SHA256, initial_secret, 32, b"server in", NULL, 0, out + 32, 32)
    OPENSSL_cleanse(initial_secret, 32)
    return 0


def derive_packet_keys(int cipher_suite, bytes secret, unsigned int version=VERSION_1):
    """Return ``(key, iv, hp_key)`` for a traffic secret (RFC 9001 section 5.1),
    with the labels of ``version``.
    """
    cdef int key_len
    cdef int hash = _suite_hash(cipher_suite, &key_len)
    labels = _packet_labels(version)
    cdef uint8_t keys[76]
    _expand(hash, secret, len(secret), labels[0], NULL, 0, keys, key_len)
    _expand(hash, secret, len(secret), labels[1], NULL, 0, keys + 32, 12)
    _expand(hash, secret, len(secret), labels[2], NULL, 0, keys + 44, key_len)
    result = (keys[:key_len], keys[32:44], keys[44:44 + key_len])
    OPENSSL_cleanse(keys, sizeof(keys))
    return result


cdef PacketProtection _protection_from_secret(int cipher_suite, const uint8_t* secret, size_t secret_len,
                                              unsigned int version, HeaderProtection hp):
    """Key a :class:`PacketProtection` from a traffic secret (RFC 9001
    section 5.1) without Python objects for the keys; with ``hp`` given
    (a key update), share it instead of deriving a header protection key."""
    cdef int key_len
    cdef int hash = _suite_hash(cipher_suite, &key_len)
    labels = _packet_labels(version)
    cdef uint8_t keys[76]
    cdef Aead aead = Aead.__new__(Aead)
    cdef PacketProtection pp = PacketProtection.__new__(PacketProtection)
    cdef int rv
    _expand(hash, secret, secret_len, labels[0], NULL, 0, keys, key_len)
    _expand(hash, secret, secret_len, labels[1], NULL, 0, keys + 32, 12)
    rv = qf_aead_init(&aead.ctx, cipher_suite, keys, key_len, keys + 32)
    if rv == 0 and hp is None:
        _expand(hash, secret, secret_len, labels[2], NULL, 0, keys + 44, key_len)
        hp = HeaderProtection.__new__(HeaderProtection)
        rv = qf_hp_init(&hp.ctx, cipher_suite, keys + 44, key_len)
        hp.cipher_suite = cipher_suite
    OPENSSL_cleanse(keys, sizeof(keys))
    if rv != 0:
        raise MemoryError("cannot create an OpenSSL cipher context")
    aead.cipher_suite = cipher_suite
    pp.aead = aead
    pp.hp = hp
    pp.cipher_suite = cipher_suite
    pp.version = version
    return pp


def next_secret(int cipher_suite, bytes secret, unsigned int version=VERSION_1):
    """Return the traffic secret of the next key phase (RFC 9001 section 6.1,
    label ``"quic ku"``, or ``"quicv2 ku"`` for version 2).
    """
    cdef int key_len
    cdef int hash = _suite_hash(cipher_suite, &key_len)
    labels = _packet_labels(version)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, len(secret))
    _expand(hash, secret, len(secret), labels[3], NULL, 0, <uint8_t*>PyBytes_AS_STRING(out), len(secret))
    return out


def retry_integrity_tag(bytes pseudo_packet, unsigned int version=VERSION_1):
    """Return the 16-byte Retry Integrity Tag over ``pseudo_packet``: the
    original Destination Connection ID length and value, followed by the Retry
    packet without its tag (RFC 9001 section 5.8, RFC 9369 section 3.3.3).
    Compare tags with :func:`hmac.compare_digest`.
    """
    cdef Aead aead = _retry_aeads.get(version)
    if aead is None:
        try:
            key, nonce = _RETRY_KEY_NONCE[version]
        except KeyError:
            raise ValueError(f"unsupported QUIC version 0x{version:08x}") from None
        aead = _retry_aeads[version] = Aead(AES_128_GCM_SHA256, key, nonce)
    buf = bytearray(pseudo_packet)
    buf += bytes(AEAD_TAG_SIZE)
    # Packet number 0 makes the nonce the fixed nonce itself.
    aead.seal_into(buf, len(pseudo_packet), 0, 0)
    return bytes(buf[len(pseudo_packet):])


def stateless_reset_token(bytes static_key, bytes cid):
    """Return the 16-byte stateless reset token for connection ID ``cid``:
    HMAC-SHA256(static_key, cid) truncated to 16 bytes.

    RFC 9000 section 10.3.2 suggests a keyed hash of the connection ID under
    a static key that survives restarts; HMAC is a PRF, so the token is
    unpredictable without ``static_key`` (use 32 random bytes) and the same
    for the same ``cid`` on every server sharing the key.
    """
    cdef uint8_t out[32]
    if len(static_key) < 16:
        raise ValueError("static_key must be at least 16 bytes")
    if qf_hmac(QF_HASH_SHA256, static_key, len(static_key), cid, len(cid), out) != 0:
        raise ValueError("HMAC failed")
    return out[:16]


def confidentiality_limit(int cipher_suite):
    """Packets one key may protect before a key update is required
    (RFC 9001 section 6.6): 2**23 for AES-GCM; ChaCha20-Poly1305's limit
    exceeds the packet number space, so 2**62.
    """
    _hash_name(cipher_suite)
    return 2**62 if cipher_suite == CHACHA20_POLY1305_SHA256 else 2**23


def integrity_limit(int cipher_suite):
    """Packets failing authentication under one key after which the
    connection must close (RFC 9001 section 6.6): 2**52 for AES-GCM, 2**36
    for ChaCha20-Poly1305.
    """
    _hash_name(cipher_suite)
    return 2**36 if cipher_suite == CHACHA20_POLY1305_SHA256 else 2**52


# --------------------------------------------------------------------------
# Buffer helpers for the Python wrappers
# --------------------------------------------------------------------------

cdef inline uint8_t* _writable(object obj, Py_buffer* view, Py_ssize_t need) except NULL:
    """Get a writable contiguous view of ``obj`` holding at least ``need`` bytes."""
    PyObject_GetBuffer(obj, view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    if need > view.len:
        PyBuffer_Release(view)
        raise ValueError(f"buffer holds {view.len} bytes, {need} needed")
    return <uint8_t*>view.buf


cdef inline void _check_lengths(Py_ssize_t a, Py_ssize_t b) except *:
    if a < 0 or b < 0:
        raise ValueError("offsets and lengths must not be negative")


cdef inline bytes _as_key(object data, Py_ssize_t expected, str what):
    key = bytes(data)
    if len(key) != expected:
        raise ValueError(f"{what} must be {expected} bytes, got {len(key)}")
    return key


# --------------------------------------------------------------------------
# Payload protection
# --------------------------------------------------------------------------

cdef class Aead:
    """AEAD payload protection for one direction and one key phase
    (RFC 9001 section 5.3), keyed once.

    :param cipher_suite: TLS code: 0x1301 AES-128-GCM, 0x1302 AES-256-GCM,
        0x1303 ChaCha20-Poly1305.
    :param key: the packet protection key (16 or 32 bytes).
    :param iv: the 12-byte IV; each nonce is ``iv`` XOR the packet number.
    """

    def __init__(self, int cipher_suite, key, iv):
        _hash_name(cipher_suite)
        cdef bytes k = _as_key(key, CIPHER_SUITES[cipher_suite][1], "key")
        cdef bytes v = _as_key(iv, 12, "iv")
        qf_aead_free(&self.ctx)
        if qf_aead_init(&self.ctx, cipher_suite, k, len(k), v) != 0:
            raise MemoryError("cannot create an OpenSSL cipher context")
        self.cipher_suite = cipher_suite

    def __dealloc__(self):
        qf_aead_free(&self.ctx)

    cdef Py_ssize_t seal(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t payload_len, uint64_t pn) noexcept nogil:
        """Encrypt ``packet[header_len:header_len+payload_len]`` in place, with
        ``packet[:header_len]`` as associated data, and write the tag after it.
        Returns ``header_len + payload_len + 16``, or a negative CRYPTO_ERR_*.
        """
        cdef int rv = qf_aead_seal(&self.ctx, packet, <size_t>header_len, <size_t>payload_len, pn)
        if rv != 0:
            return rv
        return header_len + payload_len + AEAD_TAG_SIZE

    cdef Py_ssize_t open(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t ciphertext_len, uint64_t pn) noexcept nogil:
        """Verify and decrypt the ``ciphertext_len`` bytes (tag included) after
        the header in place.  Returns the plaintext length, or -1
        (CRYPTO_ERR_AUTH) if authentication fails, leaving ``packet`` unchanged.
        """
        return qf_aead_open(&self.ctx, packet, <size_t>header_len, <size_t>ciphertext_len, pn)

    def seal_into(self, buffer, Py_ssize_t header_len, Py_ssize_t payload_len, uint64_t pn):
        """Seal in place; ``buffer`` (writable, mutated) needs room for the tag.

        :returns: the sealed length ``header_len + payload_len + 16``.
        """
        cdef Py_buffer view
        _check_lengths(header_len, payload_len)
        cdef uint8_t* p = _writable(buffer, &view, header_len + payload_len + AEAD_TAG_SIZE)
        cdef Py_ssize_t rv = self.seal(p, header_len, payload_len, pn)
        PyBuffer_Release(&view)
        if rv < 0:
            raise ValueError(f"seal failed ({rv})")
        return rv

    def open_into(self, buffer, Py_ssize_t header_len, Py_ssize_t ciphertext_len, uint64_t pn):
        """Open in place (``buffer`` is mutated on success only).

        :returns: the plaintext length ``ciphertext_len - 16``.
        :raises CryptoError: when authentication fails.
        """
        cdef Py_buffer view
        _check_lengths(header_len, ciphertext_len)
        cdef uint8_t* p = _writable(buffer, &view, header_len + ciphertext_len)
        cdef Py_ssize_t rv = self.open(p, header_len, ciphertext_len, pn)
        PyBuffer_Release(&view)
        if rv == QF_ERR_AUTH:
            raise CryptoError("packet authentication failed")
        if rv < 0:
            raise ValueError(f"open failed ({rv})")
        return rv


# --------------------------------------------------------------------------
# Header protection
# --------------------------------------------------------------------------

cdef class HeaderProtection:
    """Header protection for one direction (RFC 9001 section 5.4): AES-ECB
    for the AES suites, ChaCha20 for ChaCha20-Poly1305.  Not updated by key
    updates, so one object serves every key phase.

    :param cipher_suite: TLS cipher suite code.
    :param hp_key: the header protection key (16 or 32 bytes).
    """

    def __init__(self, int cipher_suite, hp_key):
        _hash_name(cipher_suite)
        cdef bytes k = _as_key(hp_key, CIPHER_SUITES[cipher_suite][2], "hp_key")
        qf_hp_free(&self.ctx)
        if qf_hp_init(&self.ctx, cipher_suite, k, len(k)) != 0:
            raise MemoryError("cannot create an OpenSSL cipher context")
        self.cipher_suite = cipher_suite

    def __dealloc__(self):
        qf_hp_free(&self.ctx)

    cdef int apply(self, uint8_t* packet, Py_ssize_t pn_offset, int pn_len) noexcept nogil:
        """Mask the first byte and the ``pn_len`` packet number bytes in place,
        sampling at ``pn_offset + 4``; the caller guarantees the 16 sample
        bytes exist.  Returns 0 or a negative CRYPTO_ERR_*.
        """
        return qf_hp_apply(&self.ctx, packet, <size_t>pn_offset, pn_len)

    cdef int remove(self, uint8_t* packet, Py_ssize_t packet_len, Py_ssize_t pn_offset) noexcept nogil:
        """Unmask in place.  Returns the packet number length 1..4, or -1 if
        ``pn_offset + 4 + 16 > packet_len`` (other failures: CRYPTO_ERR_CRYPTO).
        """
        if pn_offset < 0:
            return -1
        cdef int rv = qf_hp_remove(&self.ctx, packet, <size_t>packet_len, <size_t>pn_offset, NULL)
        return -1 if rv == QF_ERR_SAMPLE else rv

    def mask(self, sample):
        """Return the 5-byte mask for a 16-byte ``sample``."""
        cdef bytes s = _as_key(sample, SAMPLE_SIZE, "sample")
        cdef uint8_t out[5]
        if qf_hp_mask(&self.ctx, out, s) != 0:
            raise ValueError("header protection failed")
        return (<char*>out)[:5]

    def apply_into(self, buffer, Py_ssize_t pn_offset, int pn_len):
        """Apply header protection in place (``buffer`` is mutated)."""
        cdef Py_buffer view
        _check_lengths(pn_offset, pn_len)
        cdef uint8_t* p = _writable(buffer, &view, pn_offset + 4 + SAMPLE_SIZE)
        cdef int rv = self.apply(p, pn_offset, pn_len)
        PyBuffer_Release(&view)
        if rv != 0:
            raise ValueError(f"header protection failed ({rv})")

    def remove_from(self, buffer, Py_ssize_t packet_len, Py_ssize_t pn_offset):
        """Remove header protection in place (``buffer`` is mutated).

        :returns: the packet number length, 1 to 4.
        :raises CryptoError: when the packet is too short to sample.
        """
        cdef Py_buffer view
        _check_lengths(packet_len, pn_offset)
        cdef uint8_t* p = _writable(buffer, &view, packet_len)
        cdef int rv = self.remove(p, packet_len, pn_offset)
        PyBuffer_Release(&view)
        if rv == -1:
            raise CryptoError("packet too short for the header protection sample")
        if rv < 0:
            raise ValueError(f"header protection failed ({rv})")
        return rv


# --------------------------------------------------------------------------
# Both together
# --------------------------------------------------------------------------

cdef class PacketProtection:
    """Packet protection for one direction: an :class:`Aead` for the current
    key phase plus the :class:`HeaderProtection` shared by all phases.

    Build it with :meth:`from_secret`; on a key update call
    :meth:`next_phase` and keep the old object until the old phase's
    packets stop arriving (RFC 9001 section 6.1).
    """

    def __init__(self, Aead aead not None, HeaderProtection hp not None, unsigned int version=VERSION_1):
        if aead.cipher_suite != hp.cipher_suite:
            raise ValueError("aead and hp use different cipher suites")
        _packet_labels(version)
        self.aead = aead
        self.hp = hp
        self.cipher_suite = aead.cipher_suite
        self.version = version

    @classmethod
    def from_secret(cls, int cipher_suite, bytes secret, unsigned int version=VERSION_1):
        """Derive key, IV and header protection key from a traffic secret
        (RFC 9001 section 5.1) and key them."""
        return _protection_from_secret(cipher_suite, secret, len(secret), version, None)

    def next_phase(self, bytes secret):
        """Key update (RFC 9001 section 6): from this phase's ``secret``,
        return ``(new_secret, PacketProtection)`` for the next phase, sharing
        this object's :class:`HeaderProtection`.
        """
        new = next_secret(self.cipher_suite, secret, self.version)
        return new, _protection_from_secret(self.cipher_suite, new, len(new), self.version, self.hp)

    cdef Py_ssize_t protect(self, uint8_t* packet, Py_ssize_t header_len, Py_ssize_t pn_offset, int pn_len, Py_ssize_t payload_len, uint64_t pn) noexcept nogil:
        """Seal then apply header protection, in place.  The packet number is
        the last header field (``pn_offset + pn_len == header_len``).  Returns
        the protected length, or CRYPTO_ERR_SAMPLE when the payload is too
        short to sample (pad it), or another negative CRYPTO_ERR_*.
        """
        if self.aead is None or self.hp is None:  # public attributes: Python may clear them
            return CRYPTO_ERR_CRYPTO
        if header_len < 0 or pn_offset < 0 or payload_len < 0:
            return CRYPTO_ERR_LENGTH
        return qf_packet_protect(&self.aead.ctx, &self.hp.ctx, packet, <size_t>header_len,
                                 <size_t>pn_offset, pn_len, <size_t>payload_len, pn)

    cdef int protect_batch(self, uint8_t* buf, Py_ssize_t count, Py_ssize_t* offsets, Py_ssize_t* header_lens, Py_ssize_t* pn_offsets, int* pn_lens, Py_ssize_t* payload_lens, uint64_t* pns) noexcept nogil:
        """Protect ``count`` packets in ``buf`` (packet i at ``buf + offsets[i]``,
        ``pn_offsets`` relative to each packet) in one C call.  Returns 0 or the
        first negative CRYPTO_ERR_*; the offsets and lengths must not be negative.
        """
        if self.aead is None or self.hp is None:
            return CRYPTO_ERR_CRYPTO
        if count < 0:
            return CRYPTO_ERR_LENGTH
        return qf_packet_protect_batch(&self.aead.ctx, &self.hp.ctx, buf, <size_t>count,
                                       <const size_t*>offsets, <const size_t*>header_lens,
                                       <const size_t*>pn_offsets, pn_lens,
                                       <const size_t*>payload_lens, pns)

    cdef Py_ssize_t unprotect(self, uint8_t* packet, Py_ssize_t packet_len, Py_ssize_t pn_offset, uint64_t largest_pn, uint64_t* pn_out, Py_ssize_t* header_len_out) noexcept nogil:
        """Remove header protection, decode the packet number against
        ``largest_pn`` (UINT64_MAX when none yet) and open, in place.  The
        payload runs to ``packet_len``.  Returns the plaintext length (the
        plaintext starts at ``*header_len_out``), CRYPTO_ERR_AUTH (packet left
        unchanged), CRYPTO_ERR_SAMPLE or another negative CRYPTO_ERR_*.
        """
        cdef size_t header_len = 0
        if self.aead is None or self.hp is None:
            return CRYPTO_ERR_CRYPTO
        if packet_len < 0 or pn_offset < 0:
            return CRYPTO_ERR_LENGTH
        cdef long rv = qf_packet_unprotect(&self.aead.ctx, &self.hp.ctx, packet, <size_t>packet_len,
                                           <size_t>pn_offset, largest_pn, pn_out, &header_len)
        header_len_out[0] = <Py_ssize_t>header_len
        return rv

    def protect_packet(self, buffer, Py_ssize_t header_len, Py_ssize_t pn_offset, int pn_len, Py_ssize_t payload_len, uint64_t pn):
        """Protect one packet in place (``buffer`` is mutated and needs room
        for the 16-byte tag).

        :returns: the protected length.
        """
        cdef Py_buffer view
        _check_lengths(header_len, payload_len)
        cdef uint8_t* p = _writable(buffer, &view, header_len + payload_len + AEAD_TAG_SIZE)
        cdef Py_ssize_t rv = self.protect(p, header_len, pn_offset, pn_len, payload_len, pn)
        PyBuffer_Release(&view)
        if rv == QF_ERR_SAMPLE:
            raise ValueError("payload too short for the header protection sample: pad it")
        if rv < 0:
            raise ValueError(f"protect failed ({rv})")
        return rv

    def unprotect_packet(self, buffer, Py_ssize_t packet_len, Py_ssize_t pn_offset, long long largest_pn):
        """Unprotect one packet in place (``buffer`` is mutated on success only).

        :param largest_pn: largest packet number received in this space, or
            -1 before the first one.
        :returns: ``(pn, header_len, plaintext_len)``; the plaintext is
            ``buffer[header_len:header_len + plaintext_len]``.
        :raises CryptoError: when authentication fails or the packet is too
            short for the header protection sample.
        """
        cdef Py_buffer view
        cdef uint64_t largest = UINT64_MAX if largest_pn < 0 else <uint64_t>largest_pn
        cdef uint64_t pn = 0
        cdef Py_ssize_t header_len = 0
        _check_lengths(packet_len, pn_offset)
        cdef uint8_t* p = _writable(buffer, &view, packet_len)
        cdef Py_ssize_t rv = self.unprotect(p, packet_len, pn_offset, largest, &pn, &header_len)
        PyBuffer_Release(&view)
        if rv == QF_ERR_AUTH:
            raise CryptoError("packet authentication failed")
        if rv == QF_ERR_SAMPLE:
            raise CryptoError("packet too short for the header protection sample")
        if rv < 0:
            raise ValueError(f"unprotect failed ({rv})")
        return pn, header_len, rv

    def protect_segments(self, buffer, Py_ssize_t count, Py_ssize_t segment_size, Py_ssize_t header_len,
                         Py_ssize_t pn_offset, int pn_len, Py_ssize_t payload_len, uint64_t first_pn):
        """Protect ``count`` equal-layout packets (a GSO batch) with one
        :meth:`protect_batch` call: packet i starts at ``i * segment_size`` and
        has packet number ``first_pn + i``.  ``buffer`` is mutated.

        :returns: the protected length of each packet.
        """
        cdef Py_buffer view
        cdef Py_ssize_t i, total = header_len + payload_len + AEAD_TAG_SIZE
        _check_lengths(count, segment_size)
        _check_lengths(header_len, payload_len)
        if count and segment_size < total:
            raise ValueError("segment_size is smaller than a protected packet")
        cdef Py_ssize_t* arrays = <Py_ssize_t*>malloc(4 * count * sizeof(Py_ssize_t) + 1)
        cdef int* pn_lens = <int*>malloc(count * sizeof(int) + 1)
        cdef uint64_t* pns = <uint64_t*>malloc(count * sizeof(uint64_t) + 1)
        if arrays == NULL or pn_lens == NULL or pns == NULL:
            free(arrays); free(pn_lens); free(pns)
            raise MemoryError()
        for i in range(count):
            arrays[i] = i * segment_size
            arrays[count + i] = header_len
            arrays[2 * count + i] = pn_offset
            arrays[3 * count + i] = payload_len
            pn_lens[i] = pn_len
            pns[i] = first_pn + <uint64_t>i
        cdef uint8_t* p
        try:
            p = _writable(buffer, &view, (count - 1) * segment_size + total if count else 0)
            rv = self.protect_batch(p, count, arrays, arrays + count, arrays + 2 * count, pn_lens, arrays + 3 * count, pns)
            PyBuffer_Release(&view)
        finally:
            free(arrays); free(pn_lens); free(pns)
        if rv == QF_ERR_SAMPLE:
            raise ValueError("payload too short for the header protection sample: pad it")
        if rv < 0:
            raise ValueError(f"protect failed ({rv})")
        return total


def initial_packet_protections(bytes dcid, unsigned int version=VERSION_1, bint is_client=True):
    """Return ``(send, receive)`` :class:`PacketProtection` for Initial
    packets (AES-128-GCM, RFC 9001 section 5.2), from the client's first
    Destination Connection ID, as seen by the client or the server.
    """
    cdef uint8_t secrets[64]
    _initial_secrets(dcid, version, secrets)
    c = _protection_from_secret(AES_128_GCM_SHA256, secrets, 32, version, None)
    s = _protection_from_secret(AES_128_GCM_SHA256, secrets + 32, 32, version, None)
    OPENSSL_cleanse(secrets, sizeof(secrets))
    return (c, s) if is_client else (s, c)
