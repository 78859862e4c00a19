"""Echo server and client over quicfast.

    python examples/echo.py server --port 4433 --cert cert.pem --key key.pem
    python examples/echo.py client --port 4433 --ca ca.pem "hello"
"""

import argparse
import asyncio

import quicfast

ALPN = "echo"


async def run_server(args):
    tls = quicfast.TLSConfig()
    tls.load_cert_chain(args.cert, args.key)
    tls.set_alpn_protocols([ALPN])
    listener = await quicfast.listen_addr((args.host, args.port), tls)
    print(f"echo server listening on {listener.addr}", flush=True)

    async def handle(conn):
        try:
            while True:
                stream = await conn.accept_stream()
                stream.write(await stream.read_all())
                stream.close()
        except quicfast.ConnectionClosedError:
            pass

    async for conn in listener:
        asyncio.create_task(handle(conn))


async def run_client(args):
    tls = quicfast.TLSConfig()
    if args.ca:
        tls.load_verify_locations(cafile=args.ca)
    tls.set_alpn_protocols([ALPN])
    conn = await quicfast.dial_addr((args.host, args.port), tls, server_name=args.server_name)
    stream = conn.open_stream()
    stream.write(args.message.encode())
    stream.close()
    print((await stream.read_all()).decode())
    conn.close()
    await conn.wait_closed()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("message", nargs="?", default="hello over QUIC")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--server-name", default="localhost")
    args = parser.parse_args()
    asyncio.run(run_server(args) if args.role == "server" else run_client(args))


if __name__ == "__main__":
    main()
