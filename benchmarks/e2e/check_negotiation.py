"""What each peer of bench_e2e.py negotiates with itself, with the very
configurations the benchmark uses: key-exchange group, cipher suite, how many
key shares the client generated, and whether the server sent a session ticket
or a NEW_TOKEN. One handshake per peer, in one process, on 127.0.0.1.

    PYTHONPATH=src:. python benchmarks/e2e/check_negotiation.py

aiopquic (Python >= 3.12, picoquic in C) is not inspected here.
"""

from __future__ import annotations

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", ".."), os.path.join(HERE, "..", "..", "src")]

from benchmarks.e2e.bench_e2e import _aioquic_like_config, _quicfast_server_tls, _quicfast_tls  # noqa: E402


async def quicfast_pair(pki) -> dict:
    import quicfast
    server_tls = _quicfast_server_tls(pki)
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(server_tls)
    client_tls = _quicfast_tls(pki)
    conn = await quicfast.dial_addr(transport.local_addr, client_tls)
    server_conn = await listener.accept()
    await asyncio.sleep(0.05)      # let the server's post-handshake messages arrive
    state = conn.connection_state().tls
    result = {
        "group": getattr(state["group"], "name", state["group"]),
        "cipher_suite": getattr(state["cipher_suite"], "name", state["cipher_suite"]),
        "client_key_shares": min(client_tls.key_share_count, len(client_tls.groups)),
        "session_ticket_sent": server_tls.session_tickets,
        "new_token_sent": True,    # the transport always queues one (RFC 9000 §8.1.3), as quic-go does
    }
    conn.close()
    server_conn.close()
    transport.close()
    return result


async def aioquic_like_pair(impl: str, pki) -> dict:
    if impl == "aioquic":
        from aioquic.asyncio import connect, serve
    else:
        from qh3.asyncio import connect, serve
    server = await serve("127.0.0.1", 0, configuration=_aioquic_like_config(impl, pki, is_client=False))
    port = server._transport.get_extra_info("sockname")[1]
    async with connect("127.0.0.1", port, configuration=_aioquic_like_config(impl, pki, is_client=True)) as client:
        await asyncio.sleep(0.05)
        client_tls = client._quic.tls
        # The key pairs the client generated for its key_share extension.
        shares = sum(len(v) if isinstance(v, list) else 1 for k, v in vars(client_tls).items()
                     if v and "private_key" in k and k != "certificate_private_key")
        (proto,) = set(server._protocols.values())
        tls = proto._quic.tls
        groups = {"_x25519_kyber_768_private_key": "X25519MLKEM768", "_x25519_private_key": "X25519",
                  "_x448_private_key": "X448", "_ec_p256_private_key": "SECP256R1",
                  "_ec_p384_private_key": "SECP384R1"}
        group = next((name for attr, name in groups.items() if getattr(tls, attr, None) is not None), None)
        if group is None and getattr(tls, "_ec_private_keys", None):
            group = tls._ec_private_keys[0].curve.name.upper()
        result = {
            "group": group,
            "cipher_suite": tls.key_schedule.cipher_suite.name,
            "client_key_shares": shares,
            "session_ticket_sent": getattr(tls, "_new_session_ticket", None) is not None,
            "new_token_sent": False,   # neither library sends NEW_TOKEN
        }
    server.close()
    return result


async def main() -> None:
    from tests.helpers.certs import pki_paths
    paths = pki_paths()
    pki = {"ca": paths.ca_file, "cert": paths.cert_file, "key": paths.key_file}
    rows = {"quicfast": await quicfast_pair(pki)}
    for impl in ("qh3", "aioquic"):
        try:
            rows[impl] = await aioquic_like_pair(impl, pki)
        except ImportError as exc:
            rows[impl] = {"group": f"not installed: {exc}"}
    keys = ("group", "cipher_suite", "client_key_shares", "session_ticket_sent", "new_token_sent")
    print("| peer | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for impl, row in rows.items():
        print(f"| {impl} | " + " | ".join(str(row.get(k, "-")) for k in keys) + " |")


if __name__ == "__main__":
    asyncio.run(main())
