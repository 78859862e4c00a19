"""Build quicfast and aioquic sans-I/O engines for in-memory tests."""

from __future__ import annotations

import os

from quicfast.config import Config
from quicfast.proto.connection import Connection
from quicfast.proto.packet import pull_header
from quicfast.tls import TLSConfig
from tests.helpers.certs import pki_paths

ALPN = "quicfast-test"
CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 4433)


def client_tls(**kw) -> TLSConfig:
    tls = TLSConfig()
    tls.load_verify_locations(cafile=pki_paths().ca_file)
    tls.set_alpn_protocols([ALPN])
    for k, v in kw.items():
        setattr(tls, k, v)
    return tls


def server_tls() -> TLSConfig:
    tls = TLSConfig()
    tls.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
    tls.set_alpn_protocols([ALPN])
    return tls


def quicfast_client(config: Config | None = None, **kw) -> Connection:
    """A client engine; `host_cid=b""` gives one that uses zero-length CIDs."""
    return Connection(is_client=True, config=config or Config(), tls_config=kw.pop("tls", None) or client_tls(),
                      host_cid=kw.pop("host_cid", None) if "host_cid" in kw else os.urandom(8),
                      peer_cid=os.urandom(8), server_name="localhost", **kw)


def quicfast_server_for(first_datagram: bytes, config: Config | None = None) -> Connection:
    """A server engine for the client whose first Initial is `first_datagram`."""
    header = pull_header(first_datagram)
    return Connection(is_client=False, config=config or Config(), tls_config=server_tls(),
                      host_cid=os.urandom(8), peer_cid=header.scid, original_dcid=header.dcid,
                      peer_addr=CLIENT_ADDR, version=header.version)


def drain_events(conn) -> list:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out
