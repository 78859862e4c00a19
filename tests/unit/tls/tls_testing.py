"""Shared helpers for quicfast.tls tests: a test PKI made with cryptography and
an in-memory client/server pairing. Nothing here reads the wall clock: every
handshake runs at ``NOW`` through ``TLSConfig.clock``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from quicfast.tls import ClientHandshake, Level, ServerHandshake, TLSConfig

VALID_FROM = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
VALID_UNTIL = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
#: the time every test handshake happens at
NOW = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc).timestamp()


@dataclass
class Identity:
    certificate: x509.Certificate
    key: Any
    chain: list[x509.Certificate]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _sign_hash(issuer_key: Any):
    return None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_ca(common_name: str = "quicfast test CA", key: Any = None) -> Identity:
    key = key or ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _sign_hash(key))
    )
    return Identity(certificate, key, [certificate])


def make_leaf(
    ca: Identity,
    key: Any,
    names: tuple[str, ...] = ("localhost",),
    valid_from: datetime.datetime = VALID_FROM,
    valid_until: datetime.datetime = VALID_UNTIL,
) -> Identity:
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, _sign_hash(ca.key))
    )
    return Identity(certificate, key, [certificate])


class Pki:
    """Session-wide certificates for the handshake tests."""

    def __init__(self) -> None:
        self.ca = make_ca()
        self.ca_pem = self.ca.certificate.public_bytes(serialization.Encoding.PEM)
        self.keys = {
            "ec256": ec.generate_private_key(ec.SECP256R1()),
            "ec384": ec.generate_private_key(ec.SECP384R1()),
            "ed25519": ed25519.Ed25519PrivateKey.generate(),
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        }
        self.leaves = {kind: make_leaf(self.ca, key) for kind, key in self.keys.items()}
        self.server = self.leaves["ec256"]
        self.client = make_leaf(self.ca, ec.generate_private_key(ec.SECP256R1()), ("client",))
        self.expired = make_leaf(
            self.ca,
            self.keys["ec256"],
            valid_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
            valid_until=datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc),
        )
        self.ip_leaf = make_leaf(self.ca, self.keys["ec256"], ("127.0.0.1",))
        self.other_ca = make_ca("unrelated CA")
        self.foreign = make_leaf(self.other_ca, self.keys["ec256"])



def client_config(pki: Pki, **overrides) -> TLSConfig:
    config = TLSConfig()
    config.load_verify_locations(cadata=pki.ca_pem)
    config.set_alpn_protocols(["h3"])
    config.clock = lambda: NOW
    config.keylog_filename = None
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def server_config(pki: Pki, identity=None, **overrides) -> TLSConfig:
    identity = identity or pki.server
    config = TLSConfig()
    config.set_certificate_chain(identity.chain, identity.key)
    config.set_alpn_protocols(["h3"])
    config.clock = lambda: NOW
    config.keylog_filename = None
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


class Pair:
    """A client and a server joined in memory, recording secrets."""

    def __init__(self, client: ClientHandshake, server: ServerHandshake) -> None:
        self.client = client
        self.server = server
        self.secrets: dict[tuple[str, Level, bool], bytes] = {}
        self.order: dict[str, list[tuple[Level, bool]]] = {"client": [], "server": []}
        self.tickets = []
        client.on_secret = self._recorder("client")
        server.on_secret = self._recorder("server")
        client.on_session_ticket = self.tickets.append

    def _recorder(self, side: str):
        def record(level, is_write, suite, secret):
            self.secrets[(side, level, is_write)] = secret
            self.order[side].append((level, is_write))

        return record

    def flush(self, sender, receiver) -> bool:
        moved = False
        for level in Level:
            data = bytes(sender.output[level])
            sender.output[level].clear()
            if data:
                receiver.receive(level, data)
                moved = True
        return moved

    def run(self, max_rounds: int = 10, started: bool = False) -> "Pair":
        if not started:
            self.client.start()
        for _ in range(max_rounds):
            moved = self.flush(self.client, self.server)
            moved = self.flush(self.server, self.client) or moved
            if not moved:
                break
        else:
            raise AssertionError("handshake did not settle within bounded rounds")
        return self

    def assert_secrets_match(self) -> None:
        for (side, level, is_write), secret in self.secrets.items():
            other = "server" if side == "client" else "client"
            assert self.secrets[(other, level, not is_write)] == secret, (level, is_write)


def handshake(client_cfg, server_cfg, server_name="localhost", **client_kwargs) -> Pair:
    client = ClientHandshake(client_cfg, server_name, b"client-params", **client_kwargs)
    server = ServerHandshake(server_cfg, b"server-params")
    return Pair(client, server).run()


# --- id-RSASSA-PSS certificates, made with the openssl CLI ------------------------

_LEAF_EXTENSIONS = """\
subjectAltName=DNS:localhost
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
"""

#: ``openssl genpkey`` options per leaf kind: an unrestricted id-RSASSA-PSS
#: key, one whose RSASSA-PSS-params allow only SHA-384, and an rsaEncryption
#: key signed by the same CA for comparison.
OPENSSL_LEAF_KEYS = {
    "pss": ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
    "pss_sha384_only": [
        "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048",
        "-pkeyopt", "rsa_pss_keygen_md:sha384", "-pkeyopt", "rsa_pss_keygen_mgf1_md:sha384",
        "-pkeyopt", "rsa_pss_keygen_saltlen:48",
    ],
    "rsae": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}


@dataclass
class OpensslPki:
    """A CA and leaves written by the openssl CLI (see :func:`make_openssl_pki`)."""

    ca_pem: bytes
    leaves: dict[str, Identity]
    #: a time at which every certificate is valid (openssl 3.0 cannot
    #: backdate ``x509 -req``, so this follows the certificates, not NOW)
    now: float


def make_openssl_pki(openssl: str, directory) -> OpensslPki:
    """Create a P-256 CA and the :data:`OPENSSL_LEAF_KEYS` leaves in ``directory``.

    ``cryptography`` can load id-RSASSA-PSS keys and certificates but cannot
    create a certificate for one, hence the CLI.
    """
    import subprocess

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    (directory / "leaf.ext").write_text(_LEAF_EXTENSIONS)
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=quicfast openssl CA",
        "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
    leaves = {}
    for serial, (kind, options) in enumerate(OPENSSL_LEAF_KEYS.items(), start=2):
        run("genpkey", *options, "-out", f"{kind}.key")
        run("req", "-new", "-key", f"{kind}.key", "-subj", "/CN=localhost", "-out", f"{kind}.csr")
        run("x509", "-req", "-in", f"{kind}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(serial), "-days", "2", "-extfile", "leaf.ext", "-out", f"{kind}.pem")
        certificate = x509.load_pem_x509_certificate((directory / f"{kind}.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / f"{kind}.key").read_bytes(), None)
        leaves[kind] = Identity(certificate, key, [certificate])
    ca_pem = (directory / "ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    latest_start = max(c.not_valid_before_utc for c in [ca, *(i.certificate for i in leaves.values())])
    return OpensslPki(ca_pem, leaves, latest_start.timestamp() + 60)
