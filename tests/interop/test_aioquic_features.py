"""quicfast against aioquic over loopback sockets, feature by feature, in both
directions where aioquic supports the feature: Retry (v1 and v2), session
resumption, 0-RTT (accepted and rejected), key updates mid-transfer (either side
initiating), NAT rebinding and client migration, DATAGRAM frames, NEW_TOKEN."""

import asyncio
import hashlib
import os

import pytest

import quicfast
from tests.helpers.certs import pki_paths
from tests.helpers.rebinder import Rebinder
from tests.helpers.engines import ALPN, client_tls, server_tls

aioquic = pytest.importorskip("aioquic", reason="aioquic (a test dependency) is not installed")
from aioquic.asyncio import QuicConnectionProtocol, connect, serve  # noqa: E402
from aioquic.quic import crypto as aioquic_crypto  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.events import DatagramFrameReceived  # noqa: E402

TIMEOUT = 30

V1, V2 = 0x00000001, 0x6B3343CF
VERSIONS = pytest.mark.parametrize("version", [V1, V2], ids=["v1", "v2"])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- aioquic side -------------------------------------------------------------

def _aioquic_server_config(**kw):
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], **kw)
    config.load_cert_chain(pki_paths().cert_file, pki_paths().key_file)
    return config


def _aioquic_client_config(**kw):
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost", **kw)
    config.load_verify_locations(pki_paths().ca_file)
    return config


class Protocol(QuicConnectionProtocol):
    """aioquic's protocol, keeping a list of its instances and echoing (server)
    or queueing (client) DATAGRAM frames."""

    instances: list = []

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        Protocol.instances.append(self)
        self.datagrams: asyncio.Queue = asyncio.Queue()
        self.received_datagrams: list = []

    def quic_event_received(self, event):
        if isinstance(event, DatagramFrameReceived):
            self.received_datagrams.append(event.data)
            if self._quic.configuration.is_client:
                self.datagrams.put_nowait(event.data)
            else:
                self._quic.send_datagram_frame(event.data)
                self.transmit()
        super().quic_event_received(event)


async def _echo(reader, writer):
    writer.write(await reader.read())
    writer.write_eof()


async def _aioquic_server(config=None, **serve_kw):
    """An aioquic server echoing each stream (and each DATAGRAM)."""
    Protocol.instances = []
    server = await serve("127.0.0.1", 0, configuration=config or _aioquic_server_config(),
                         create_protocol=Protocol,
                         stream_handler=lambda r, w: asyncio.ensure_future(_echo(r, w)), **serve_kw)
    return server, ("127.0.0.1", server._transport.get_extra_info("sockname")[1])


def _aioquic_server_connection():
    """The aioquic server's (only) connection."""
    assert len(Protocol.instances) == 1, Protocol.instances
    return Protocol.instances[0]._quic


class TicketDB:
    """aioquic server-side session ticket storage (serve's handler and fetcher)."""

    def __init__(self, forget=False):
        self.tickets = {}
        self.forget = forget
        self.fetched = []

    def add(self, ticket):
        self.tickets[ticket.ticket] = ticket

    def pop(self, label):
        self.fetched.append(label)
        return None if self.forget else self.tickets.pop(label, None)


@pytest.fixture
def key_updates(monkeypatch):
    """Each aioquic 1-RTT key phase change, as its trigger ('local_update' when
    aioquic initiated it, 'remote_update' when it followed the peer)."""
    seen = []
    original = aioquic_crypto.CryptoPair._update_key

    def update_key(self, trigger):
        seen.append(trigger)
        return original(self, trigger)

    monkeypatch.setattr(aioquic_crypto.CryptoPair, "_update_key", update_key)
    return seen


# -- quicfast side ------------------------------------------------------------

async def _quicfast_server(config=None, early=False, transport=None):
    """A quicfast server echoing every stream and DATAGRAM of every
    connection; returns (transport, listener, accepted connections, task)."""
    transport = transport or await quicfast.Transport.bind("127.0.0.1", 0)
    listen = transport.listen_early if early else transport.listen
    config = config or quicfast.Config()
    listener = listen(server_tls(), config)
    accepted = []

    async def echo_stream(stream):
        try:
            stream.write(await stream.read_all())
            stream.close()
        except quicfast.QuicError:
            pass

    async def echo_datagrams(conn):
        try:
            while True:
                conn.send_datagram(await conn.receive_datagram())
        except quicfast.QuicError:
            pass

    async def handle(conn):
        if config.enable_datagrams:
            asyncio.create_task(echo_datagrams(conn))
        try:
            while True:
                asyncio.create_task(echo_stream(await conn.accept_stream()))
        except quicfast.QuicError:
            pass

    async def accept_loop():
        async for conn in listener:
            accepted.append(conn)
            asyncio.create_task(handle(conn))

    task = asyncio.create_task(accept_loop())
    return transport, listener, accepted, task


async def _wait_for(predicate, what, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _echo_via_quicfast(conn, data: bytes) -> bytes:
    stream = conn.open_stream()
    stream.write(data)
    stream.close()
    return await stream.read_all()


async def _echo_via_aioquic(client, data: bytes) -> bytes:
    reader, writer = await client.create_stream()
    writer.write(data)
    writer.write_eof()
    return await reader.read()


# -- Retry (v1 and v2) --------------------------------------------------------

@VERSIONS
def test_retry_quicfast_client_aioquic_server(version):
    async def main():
        server, addr = await _aioquic_server(_aioquic_server_config(supported_versions=[version]), retry=True)
        conn = await quicfast.dial_addr(addr, client_tls(), quicfast.Config(versions=(version,)),
                                        server_name="localhost")
        assert conn.connection_state().version == version
        assert await _echo_via_quicfast(conn, b"after retry" * 1000) == b"after retry" * 1000
        # aioquic created the connection from a validated Retry token.
        assert _aioquic_server_connection()._retry_source_connection_id is not None
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


@VERSIONS
def test_retry_aioquic_client_quicfast_server(version):
    async def main():
        asked = []
        config = quicfast.Config(require_address_validation=lambda a: asked.append(a) or True)
        transport, listener, accepted, task = await _quicfast_server(config)
        Protocol.instances = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(supported_versions=[version]),
                           create_protocol=Protocol) as client:
            assert await _echo_via_aioquic(client, b"retried" * 1000) == b"retried" * 1000
            assert client._quic._retry_count == 1, "aioquic never saw a Retry"
            assert client._quic._version == version
        assert asked, "require_address_validation was not consulted"
        assert accepted and accepted[0].connection_state().version == version
        task.cancel()
        transport.close()

    run(main())


def test_new_token_from_quicfast_lets_aioquic_skip_retry():
    """aioquic stores quicfast's NEW_TOKEN and presents it next time: no Retry."""
    async def main():
        config = quicfast.Config(require_address_validation=lambda a: True)
        transport, listener, accepted, task = await _quicfast_server(config)
        tokens = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(),
                           token_handler=tokens.append) as client:
            assert await _echo_via_aioquic(client, b"first") == b"first"
            await _wait_for(lambda: tokens, "NEW_TOKEN")
        assert client._quic._retry_count == 1
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(token=tokens[-1])) as client:
            assert await _echo_via_aioquic(client, b"second") == b"second"
            assert client._quic._retry_count == 0, "the NEW_TOKEN did not validate the address"
        task.cancel()
        transport.close()

    run(main())


# -- session resumption -------------------------------------------------------

def test_resumption_quicfast_client_aioquic_server():
    async def main():
        db = TicketDB()
        server, addr = await _aioquic_server(session_ticket_handler=db.add, session_ticket_fetcher=db.pop)
        tls = client_tls()
        conn = await quicfast.dial_addr(addr, tls, server_name="localhost")
        assert not conn.connection_state().tls["session_resumed"]
        assert await _echo_via_quicfast(conn, b"one") == b"one"
        await _wait_for(lambda: tls.session_ticket_store._tickets, "a session ticket from aioquic")
        conn.close()
        await conn.wait_closed()
        conn = await quicfast.dial_addr(addr, tls, server_name="localhost")
        assert await _echo_via_quicfast(conn, b"two") == b"two"
        assert conn.connection_state().tls["session_resumed"]
        assert db.fetched, "quicfast did not offer the ticket"
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


def test_resumption_aioquic_client_quicfast_server():
    async def main():
        transport, listener, accepted, task = await _quicfast_server()
        tickets = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(),
                           session_ticket_handler=tickets.append) as client:
            assert await _echo_via_aioquic(client, b"one") == b"one"
            await _wait_for(lambda: tickets, "a session ticket from quicfast")
        config = _aioquic_client_config()
        config.session_ticket = tickets[-1]
        async with connect(*transport.local_addr, configuration=config) as client:
            assert await _echo_via_aioquic(client, b"two") == b"two"
            assert client._quic.tls.session_resumed
        assert accepted[-1].connection_state().tls["session_resumed"]
        task.cancel()
        transport.close()

    run(main())


# -- 0-RTT --------------------------------------------------------------------

async def _quicfast_ticket_from(addr, tls):
    conn = await quicfast.dial_addr(addr, tls, quicfast.Config(allow_0rtt=True), server_name="localhost")
    await _wait_for(lambda: tls.session_ticket_store._tickets, "a session ticket")
    conn.close()
    await conn.wait_closed()


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "rejected"])
def test_zero_rtt_quicfast_client_aioquic_server(accepted):
    async def main():
        db = TicketDB()
        server, addr = await _aioquic_server(session_ticket_handler=db.add, session_ticket_fetcher=db.pop)
        tls = client_tls()
        await _quicfast_ticket_from(addr, tls)
        db.forget = not accepted          # a forgotten ticket means a full handshake
        Protocol.instances = []
        conn = await quicfast.dial_addr_early(addr, tls, quicfast.Config(allow_0rtt=True), server_name="localhost")
        stream = conn.open_stream()
        stream.write(b"early bytes" * 100)       # before the handshake: 0-RTT
        stream.close()
        assert await stream.read_all() == b"early bytes" * 100
        await conn.handshake_complete()
        state = conn.connection_state()
        assert state.used_0rtt is accepted
        assert conn.zero_rtt_rejected is (not accepted)
        assert state.tls["session_resumed"] is accepted
        assert _aioquic_server_connection().tls.early_data_accepted is accepted
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "rejected"])
def test_zero_rtt_aioquic_client_quicfast_server(accepted):
    async def main():
        transport, listener, accepted_conns, task = await _quicfast_server(
            quicfast.Config(allow_0rtt=True), early=True)
        tickets = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(),
                           session_ticket_handler=tickets.append) as client:
            assert await _echo_via_aioquic(client, b"one") == b"one"
            await _wait_for(lambda: tickets, "a session ticket from quicfast")
        if not accepted:
            # A new listener on the same transport that refuses early data.
            listener.close()
            task.cancel()
            transport._listener = None
            _, listener, accepted_conns, task = await _quicfast_server(
                quicfast.Config(allow_0rtt=False), early=True, transport=transport)
        config = _aioquic_client_config()
        config.session_ticket = tickets[-1]
        async with connect(*transport.local_addr, configuration=config, wait_connected=False) as client:
            reader, writer = await client.create_stream()
            writer.write(b"early bytes" * 100)    # goes out in 0-RTT packets
            writer.write_eof()
            assert await reader.read() == b"early bytes" * 100
            # (aioquic's wait_connected() hangs once the handshake is over unless
            # it was awaited before, so poll its state instead.)
            await _wait_for(lambda: client._quic._handshake_complete, "aioquic's handshake")
            assert client._quic.tls.early_data_accepted is accepted
            if accepted:
                assert accepted_conns[-1].connection_state().used_0rtt
        task.cancel()
        transport.close()

    run(main())


# -- key update (RFC 9001 §6) mid-transfer -------------------------------------

KEY_UPDATE_SIZE = 16 << 20


async def _keep_updating(update, done: asyncio.Event) -> int:
    """Call `update` every 20 ms until `done`; returns how many took effect."""
    count = 0
    while not done.is_set():
        await asyncio.sleep(0.02)
        try:
            update()
            count += 1
        except quicfast.QuicError:
            pass        # the previous update is not acknowledged yet
    return count


def _quicfast_updater(conn):
    def update():
        conn._engine.request_key_update()
        conn._schedule_flush()
    return update


@pytest.mark.parametrize("initiator", ["quicfast", "aioquic"])
def test_key_update_quicfast_client_aioquic_server(initiator, key_updates):
    async def main():
        server, addr = await _aioquic_server()
        conn = await quicfast.dial_addr(addr, client_tls(), server_name="localhost")
        await _wait_for(lambda: conn._engine.is_handshake_confirmed, "HANDSHAKE_DONE")
        update = (_quicfast_updater(conn) if initiator == "quicfast"
                  else Protocol.instances[0].request_key_update)
        done = asyncio.Event()
        updater = asyncio.create_task(_keep_updating(update, done))
        payload = os.urandom(KEY_UPDATE_SIZE)
        stream = conn.open_stream()
        for i in range(0, len(payload), 1 << 20):
            stream.write(payload[i:i + (1 << 20)])
            await stream.drain()
        stream.close()
        received = await stream.read_all()
        done.set()
        initiated = await updater
        assert sha(received) == sha(payload)
        assert initiated >= 2, "the transfer ended before two key updates"
        expected = "remote_update" if initiator == "quicfast" else "local_update"
        assert key_updates.count(expected) >= 2, key_updates
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


@pytest.mark.parametrize("initiator", ["quicfast", "aioquic"])
def test_key_update_aioquic_client_quicfast_server(initiator, key_updates):
    async def main():
        transport, listener, accepted, task = await _quicfast_server()
        Protocol.instances = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(),
                           create_protocol=Protocol) as client:
            await _wait_for(lambda: accepted and accepted[0]._engine.is_handshake_confirmed
                            and client._quic._handshake_confirmed, "confirmed handshakes")
            update = _quicfast_updater(accepted[0]) if initiator == "quicfast" else client.request_key_update
            done = asyncio.Event()
            updater = asyncio.create_task(_keep_updating(update, done))
            payload = os.urandom(KEY_UPDATE_SIZE)
            received = await _echo_via_aioquic(client, payload)
            done.set()
            initiated = await updater
            assert sha(received) == sha(payload)
        assert initiated >= 2, "the transfer ended before two key updates"
        expected = "remote_update" if initiator == "quicfast" else "local_update"
        assert key_updates.count(expected) >= 2, key_updates
        task.cancel()
        transport.close()

    run(main())


# -- NAT rebinding and migration -----------------------------------------------

REBIND_PAYLOAD = bytes(range(256)) * 16384      # 4 MiB


@pytest.mark.parametrize("new_cid", [False, True], ids=["same_cid", "new_cid"])
def test_nat_rebinding_aioquic_client_quicfast_server(new_cid):
    async def main():
        transport, listener, accepted, task = await _quicfast_server()
        relay = Rebinder(transport.local_addr)
        async with connect(*relay.addr, configuration=_aioquic_client_config()) as client:
            await _wait_for(lambda: client._quic._handshake_confirmed, "HANDSHAKE_DONE")
            first_addr = accepted[0].remote_addr
            reader, writer = await client.create_stream()
            writer.write(REBIND_PAYLOAD[:1 << 20])
            await asyncio.sleep(0.05)
            relay.rebind()
            if new_cid:
                client.change_connection_id()
            writer.write(REBIND_PAYLOAD[1 << 20:])
            writer.write_eof()
            assert sha(await reader.read()) == sha(REBIND_PAYLOAD)
            # The echo reached the client through the new binding.
            assert accepted[0].remote_addr != first_addr
            assert accepted[0].remote_addr[1] == relay.back.getsockname()[1]
        relay.close()
        task.cancel()
        transport.close()

    run(main())


def test_nat_rebinding_quicfast_client_aioquic_server():
    async def main():
        server, addr = await _aioquic_server()
        relay = Rebinder(addr)
        conn = await quicfast.dial_addr(relay.addr, client_tls(), server_name="localhost")
        await _wait_for(lambda: conn._engine.is_handshake_confirmed, "HANDSHAKE_DONE")
        stream = conn.open_stream()
        stream.write(REBIND_PAYLOAD[:1 << 20])
        await stream.drain()
        relay.rebind()
        stream.write(REBIND_PAYLOAD[1 << 20:])
        stream.close()
        assert sha(await stream.read_all()) == sha(REBIND_PAYLOAD)
        assert _aioquic_server_connection()._network_paths[0].addr[1] == relay.back.getsockname()[1]
        conn.close()
        await conn.wait_closed()
        relay.close()
        server.close()

    run(main())


def test_active_migration_quicfast_client_aioquic_server():
    async def main():
        server, addr = await _aioquic_server()
        first = await quicfast.Transport.bind("127.0.0.1", 0)
        second = await quicfast.Transport.bind("127.0.0.1", 0)
        conn = await first.dial(addr, client_tls(), server_name="localhost")
        await _wait_for(lambda: conn._engine.is_handshake_confirmed, "HANDSHAKE_DONE")
        await asyncio.sleep(0.05)          # NEW_CONNECTION_ID frames
        stream = conn.open_stream()
        stream.write(REBIND_PAYLOAD[:1 << 20])
        await stream.drain()
        conn.migrate(second)
        stream.write(REBIND_PAYLOAD[1 << 20:])
        stream.close()
        assert sha(await stream.read_all()) == sha(REBIND_PAYLOAD)
        path = _aioquic_server_connection()._network_paths[0]
        assert path.addr[1] == second.local_addr[1] and path.is_validated
        conn.close()
        await conn.wait_closed()
        for t in (first, second):
            t.close()
        server.close()

    run(main())


# -- DATAGRAM frames (RFC 9221) -------------------------------------------------

async def _round_trip(send, receive, data: bytes) -> bytes:
    """Send a datagram until its echo comes back (datagrams may be lost)."""
    for _ in range(5):
        send(data)
        try:
            return await asyncio.wait_for(receive(), 1.0)
        except asyncio.TimeoutError:
            continue
    raise AssertionError(f"no echo for a {len(data)}-byte datagram")


def test_datagrams_quicfast_client_aioquic_server():
    async def main():
        server, addr = await _aioquic_server(_aioquic_server_config(max_datagram_frame_size=65536))
        conn = await quicfast.dial_addr(addr, client_tls(), quicfast.Config(enable_datagrams=True),
                                        server_name="localhost")
        assert conn.connection_state().supports_datagrams
        largest = conn._engine.max_datagram_payload
        assert largest >= 1000
        for size in (0, 1, 100, 1000):
            data = os.urandom(size)
            assert await _round_trip(conn.send_datagram, conn.receive_datagram, data) == data
        with pytest.raises(quicfast.DatagramTooLargeError):   # (the path MTU may have grown since)
            conn.send_datagram(bytes(conn._engine.max_datagram_payload + 1))
        # A burst: most of them come back, intact.
        sent = {os.urandom(64) for _ in range(100)}
        for data in sent:
            conn.send_datagram(data)
        echoed = set()
        try:
            while len(echoed) < len(sent):
                echoed.add(await asyncio.wait_for(conn.receive_datagram(), 1.0))
        except asyncio.TimeoutError:
            pass
        assert echoed <= sent and len(echoed) >= 90
        assert await _echo_via_quicfast(conn, b"streams too") == b"streams too"
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


def test_largest_datagram_quicfast_client_aioquic_server():
    async def main():
        server, addr = await _aioquic_server(_aioquic_server_config(max_datagram_frame_size=65536))
        # Without DPLPMTUD the packet size stays put (a grown path would hide the bug).
        config = quicfast.Config(enable_datagrams=True, disable_path_mtu_discovery=True)
        conn = await quicfast.dial_addr(addr, client_tls(), config, server_name="localhost")
        received = Protocol.instances[0].received_datagrams
        # send_datagram accepts it, so it must go out (aioquic's 1200-byte
        # packets are too small to echo it: check what aioquic received).
        data = os.urandom(conn._engine.max_datagram_payload)
        conn.send_datagram(data)
        await _wait_for(lambda: data in received, "the largest datagram at aioquic", timeout=2)
        # And a small one after it is not held up.
        conn.send_datagram(b"after")
        await _wait_for(lambda: b"after" in received, "a datagram after the largest", timeout=2)
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())


def test_datagrams_aioquic_client_quicfast_server():
    async def main():
        transport, listener, accepted, task = await _quicfast_server(quicfast.Config(enable_datagrams=True))
        Protocol.instances = []
        async with connect(*transport.local_addr, configuration=_aioquic_client_config(max_datagram_frame_size=65536),
                           create_protocol=Protocol) as client:
            def send(data):
                client._quic.send_datagram_frame(data)
                client.transmit()

            for size in (0, 1, 100, 1000, 1100):
                data = os.urandom(size)
                assert await _round_trip(send, client.datagrams.get, data) == data
            assert accepted[0].connection_state().supports_datagrams
            assert await _echo_via_aioquic(client, b"streams too") == b"streams too"
        task.cancel()
        transport.close()

    run(main())


def test_datagrams_refused_by_aioquic_server():
    async def main():
        server, addr = await _aioquic_server()        # no max_datagram_frame_size
        conn = await quicfast.dial_addr(addr, client_tls(), quicfast.Config(enable_datagrams=True),
                                        server_name="localhost")
        assert not conn.connection_state().supports_datagrams
        with pytest.raises(quicfast.DatagramNotSupportedError):
            conn.send_datagram(b"nobody listens")
        assert await _echo_via_quicfast(conn, b"still fine") == b"still fine"
        conn.close()
        await conn.wait_closed()
        server.close()

    run(main())
