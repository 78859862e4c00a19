"""`Transport`, `Listener` and the listen/dial helpers (quic-go's Transport
API in Python's idiom).

A Transport owns one UDP socket. It reads with one `recvmmsg` (+GRO) per
readable event through `quicfast._udp`, routes each datagram by destination
connection ID to its connection's sans-I/O engine, then lets every touched
connection emit its events once and flushes what they have to send: one
`fill_send_buffer` call builds up to 64 equal-size packets, sent with one
GSO `sendmsg`. Each connection has at most one asyncio timer, re-armed only
when its deadline changes.

A connection that sent or received CONNECTION_CLOSE is over for the
application at once (quic-go's semantics); the transport keeps only its
connection IDs and close datagram until its closing or draining period ends
(RFC 9000 §10.2; see `closed_conn`).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import os
import socket
import threading
from typing import Callable, Optional

from . import errors, qlog
from ._datapath import deliver_established
from ._udp import UdpSocketState
from .closed_conn import ClosedConnection
from .config import Config
from .connection import Connection, EarlyConnection
from .proto.connection import Connection as Engine
from .proto.endpoint import Endpoint
from .proto.packet import pull_header
from .tls import TLSConfig

__all__ = [
    "Transport", "Listener", "EarlyListener",
    "listen", "listen_addr", "listen_early", "listen_addr_early",
    "dial", "dial_addr", "dial_early", "dial_addr_early",
]

MAX_DATAGRAMS_PER_FLUSH = 64
MAX_NON_QUIC_QUEUE = 128
MAX_BATCHES_PER_FLUSH = 8
#: Server handshakes in progress before new clients must first answer a Retry
#: (quic-go's MaxUnvalidatedHandshakes idea): bounds what spoofed Initials cost.
MAX_HALF_OPEN = 256
#: Datagrams one readable callback processes before yielding to the loop.
RECEIVE_BUDGET = 1024
SEND_BUFFER_SIZE = MAX_DATAGRAMS_PER_FLUSH * 1500
#: A timer handle that fires this close to the engine's deadline hands over at once.
TIMER_SLACK = 0.0001


_per_thread = threading.local()


def _send_buffer() -> bytearray:
    """The buffer packets are built in: one per thread, shared by its transports
    (a flush sends synchronously and copies what the socket did not take), so a
    socket per connection costs no 96 KB buffer each."""
    buf = getattr(_per_thread, "send_buffer", None)
    if buf is None:
        buf = _per_thread.send_buffer = bytearray(SEND_BUFFER_SIZE)
    return buf


class Listener:
    """Accepts incoming connections (quic-go Listener). `async for conn in listener`."""

    _early = False

    def __init__(self, transport: "Transport", tls: TLSConfig, config: Config) -> None:
        self._transport = transport
        self.tls = tls
        self.config = config
        self._queue: collections.deque = collections.deque()
        self._waiter = asyncio.Event()
        self._closed = False
        self._close_transport = False

    @property
    def addr(self):
        return self._transport.local_addr

    async def accept(self) -> Connection:
        """Wait for the next connection whose handshake completed.

        :raises ServerClosedError: once the listener is closed and the queue is empty.
        """
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise errors.ServerClosedError()
            self._waiter.clear()
            await self._waiter.wait()

    def __aiter__(self):
        return self

    async def __anext__(self) -> Connection:
        try:
            return await self.accept()
        except errors.ServerClosedError:
            raise StopAsyncIteration

    def _deliver(self, conn: Connection) -> None:
        self._queue.append(conn)
        self._waiter.set()

    def close(self) -> None:
        """Stop accepting. Handshakes in flight are refused with CONNECTION_REFUSED;
        for a listener made by `listen_addr`, the transport and its connections close too."""
        if self._closed:
            return
        self._closed = True
        self._waiter.set()
        self._transport._listener_closed(self)
        if self._close_transport:
            self._transport.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


class EarlyListener(Listener):
    """A listener that hands out connections before their handshake completes (0.5-RTT)."""

    _early = True


class Transport:
    """One UDP socket shared by any number of connections and at most one listener.

    :param sock: a bound UDP socket (use `Transport.bind()` to make one).
    :param connection_id_length: length of the CIDs we issue (4–20 bytes; quic-go's default is 4).
    :param connection_id_generator: callable returning a new CID of that length.
    :param stateless_reset_key: 32-byte key for stateless reset tokens.
    """

    def __init__(self, sock: socket.socket, *, connection_id_length: int = 4,
                 connection_id_generator: Optional[Callable[[], bytes]] = None,
                 stateless_reset_key: Optional[bytes] = None, token_generator_key: Optional[bytes] = None,
                 max_token_age: float = 86400.0, disable_version_negotiation_packets: bool = False,
                 tracer=None) -> None:
        if not 4 <= connection_id_length <= 20 and not (connection_id_generator is None and connection_id_length == 0):
            raise ValueError("connection_id_length must be 0 or 4..20")
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._udp = UdpSocketState(sock)
        #: The same socket state, for receiving: tests replace _udp with a
        #: wrapper that watches or refuses sends, the receive path stays C.
        self._rx_udp = self._udp
        self.connection_id_length = connection_id_length
        self._cid_generator = connection_id_generator or (lambda: os.urandom(connection_id_length))
        self.stateless_reset_key = stateless_reset_key or os.urandom(32)
        self.token_generator_key = token_generator_key or os.urandom(32)
        self.max_token_age = max_token_age
        self.disable_version_negotiation_packets = disable_version_negotiation_packets
        self.tracer = tracer
        self._endpoint_instance: Optional[Endpoint] = None    # made when first needed (servers)
        self._routes: dict[bytes, Connection] = {}
        #: The connection IDs of connections in their closing or draining period.
        self._closed_routes: dict[bytes, ClosedConnection] = {}
        #: Set while close() closes every connection.
        self._closing = False
        #: The task that closes a `dial_addr` socket after its closing period.
        self._closer: Optional[asyncio.Task] = None
        self._connections: set[Connection] = set()
        #: Server connections whose handshake is not done (see MAX_HALF_OPEN).
        self._half_open_count = 0
        self._listener: Optional[Listener] = None
        self._dirty: set[Connection] = set()
        #: (data, addr, segment_size, ecn) the socket would not take yet, or None.
        self._blocked: Optional[tuple] = None
        self._flush_scheduled = False
        #: Set when input opened streams: the flush then waits one more loop pass.
        self._flush_late = False
        self._non_quic: collections.deque = collections.deque(maxlen=MAX_NON_QUIC_QUEUE)
        self._non_quic_waiter = asyncio.Event()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def bind(cls, host: str = "127.0.0.1", port: int = 0, **kw) -> "Transport":
        """A Transport on a new UDP socket bound to (host, port)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        return cls(sock, **kw)

    @property
    def local_addr(self):
        return self._sock.getsockname()

    @property
    def _endpoint(self) -> Endpoint:
        """Retry, version negotiation, tokens and stateless resets: a client-only
        transport never needs them, so they are made on first use."""
        endpoint = self._endpoint_instance
        if endpoint is None:
            endpoint = self._endpoint_instance = Endpoint(
                self.connection_id_length, self.stateless_reset_key, self.token_generator_key,
                self.max_token_age, self.disable_version_negotiation_packets)
        return endpoint

    @property
    def gso_supported(self) -> bool:
        return bool(self._udp.gso_supported)

    @property
    def socket_warning(self) -> Optional[str]:
        """Set when the kernel refused the socket buffer sizes we asked for."""
        return self._udp.warning

    # -- listening and dialing ---------------------------------------------

    def listen(self, tls: TLSConfig, config: Optional[Config] = None) -> Listener:
        """Accept connections on this transport (one listener at a time)."""
        return self._make_listener(Listener, tls, config)

    def listen_early(self, tls: TLSConfig, config: Optional[Config] = None) -> EarlyListener:
        """Like `listen`, but connections are handed out before the handshake completes."""
        return self._make_listener(EarlyListener, tls, config)

    def _make_listener(self, kind, tls, config):
        self._check_open()
        if self._listener is not None:
            raise RuntimeError("this transport already has a listener")
        config = config or Config()
        if config.allow_0rtt != bool(getattr(tls, "allow_early_data", False)):
            # Config.allow_0rtt decides (quic-go's Allow0RTT); the caller's TLSConfig is left as it is.
            tls = copy.copy(tls)
            tls.allow_early_data = config.allow_0rtt
        self._listener = kind(self, tls, config)
        return self._listener

    async def dial(self, addr, tls: TLSConfig, config: Optional[Config] = None, *,
                   server_name: Optional[str] = None, early: bool = False) -> Connection:
        """Connect to `addr`; returns once the handshake completed (or at once
        with `early=True`, for 0-RTT).

        :raises ConnectionClosedError: (a subclass) when the handshake fails.
        """
        self._check_open()
        config = config or Config()
        addr = self._normalize_addr(addr)
        name = server_name or tls.server_name or addr[0]
        ticket = None
        store = getattr(tls, "session_ticket_store", None)
        if store is not None and config.allow_0rtt:
            ticket = store.pop(name, tls.clock())
        token = b""
        if config.token_store is not None:
            token = config.token_store.pop(name) or b""
        odcid = os.urandom(8)
        engine = Engine(is_client=True, config=config, tls_config=tls, host_cid=self._new_cid(),
                        peer_cid=odcid, server_name=name, stateless_reset_key=self.stateless_reset_key,
                        session_ticket=ticket, token=token, now=self._loop.time(), peer_addr=addr,
                        tracer=self._make_tracer(config, True, odcid))
        conn = (EarlyConnection if early else Connection)(self, engine, addr, is_client=True, config=config)
        self._register(conn)
        engine.connect(addr, self._loop.time())
        self._after_input(conn)
        if early:
            return conn
        try:
            await conn.handshake_complete()
        except asyncio.CancelledError:
            conn.close_with_error(0, "dial cancelled")
            raise
        return conn

    async def dial_early(self, addr, tls: TLSConfig, config: Optional[Config] = None, **kw) -> EarlyConnection:
        """Connect and return at once, so 0-RTT data can be sent with a resumption ticket."""
        return await self.dial(addr, tls, config, early=True, **kw)

    async def read_non_quic_packet(self) -> tuple[bytes, tuple]:
        """Wait for a datagram that is not QUIC (first byte's fixed bit clear)."""
        while not self._non_quic:
            self._check_open()
            self._non_quic_waiter.clear()
            await self._non_quic_waiter.wait()
        return self._non_quic.popleft()

    def write_to(self, data: bytes, addr) -> None:
        """Send a raw datagram from this transport's socket."""
        self._check_open()
        self._udp.send(data, self._normalize_addr(addr))

    def close(self) -> None:
        """Close every connection (CONNECTION_CLOSE, no error) and the socket."""
        if self._closed:
            return
        self._closing = True
        for conn in list(self._connections):
            conn.close()
            self._flush_connection(conn)
            conn._on_terminated(errors.TransportClosedError("transport closed"))
        for record in set(self._closed_routes.values()):
            record.expiry.cancel()
        self._closed_routes.clear()
        self._closed = True
        self._non_quic_waiter.set()
        if self._listener is not None:
            self._listener._closed = True
            self._listener._waiter.set()
        self._loop.remove_reader(self._sock.fileno())
        if self._blocked is not None:
            self._loop.remove_writer(self._sock.fileno())
            self._blocked = None
        self._udp.close()

    async def __aenter__(self) -> "Transport":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.TransportClosedError("transport is closed")

    def _normalize_addr(self, addr):
        host, port = addr[0], addr[1]
        if self._sock.family == socket.AF_INET6 and ":" not in host:
            host = "::ffff:" + socket.gethostbyname(host)
            return (host, port, 0, 0)
        if self._sock.family == socket.AF_INET and not host[0].isdigit():
            host = socket.gethostbyname(host)
        return (host, port) if self._sock.family == socket.AF_INET else tuple(addr) + (0, 0)[: 4 - len(addr)]

    def _make_tracer(self, config: Config, is_client: bool, odcid: bytes):
        factory = config.tracer or self.tracer or qlog.tracer_from_env()
        return factory(is_client, odcid) if factory is not None else None

    def _new_cid(self) -> bytes:
        for _ in range(8):
            cid = self._cid_generator()
            if len(cid) != self.connection_id_length:
                raise ValueError("connection_id_generator returned a CID of the wrong length")
            if cid not in self._routes and cid not in self._closed_routes:
                return cid
        raise RuntimeError("connection_id_generator keeps returning CIDs in use")

    def _register(self, conn: Connection) -> None:
        self._connections.add(conn)
        for cid in conn._engine.host_connection_ids:
            self._add_route(cid, conn)

    def _set_half_open(self, conn: Connection, half_open: bool) -> None:
        if conn._half_open != half_open:
            conn._half_open = half_open
            self._half_open_count += 1 if half_open else -1

    def _unroute(self, conn: Connection) -> None:
        routes = self._routes
        for cid in conn._cids:
            if routes.get(cid) is conn:
                del routes[cid]
        conn._cids.clear()

    def _detach(self, conn: Connection) -> None:
        """Forget `conn` without closing it (it migrated to another transport)."""
        self._set_half_open(conn, False)
        self._connections.discard(conn)
        self._dirty.discard(conn)
        conn._host.flush_pending = False
        self._unroute(conn)
        if conn._timer_handle is not None:
            conn._timer_handle.cancel()
            conn._timer_handle = None
        conn._timer_at = None

    def _add_route(self, cid: bytes, conn: Connection) -> None:
        self._routes[cid] = conn
        conn._cids.add(cid)

    def _remove_route(self, cid: bytes) -> None:
        conn = self._routes.pop(cid, None)
        if conn is not None:
            conn._cids.discard(cid)

    def _on_connection_closed(self, conn: Connection) -> None:
        self._set_half_open(conn, False)
        self._connections.discard(conn)
        self._unroute(conn)
        self._dirty.discard(conn)
        conn._host.flush_pending = False
        if conn._close_transport_on_close:
            if self._closed_routes:
                self._closer = self._loop.create_task(self._close_after_closing_period())
            else:
                self._loop.call_soon(self.close)

    async def _close_after_closing_period(self) -> None:
        """Close a `dial_addr` socket once its connection's closing period is
        over, or at once when the loop shuts down first (asyncio.run cancels
        this task), so that the socket is never left open."""
        try:
            while self._closed_routes and not self._closed:
                last = max(record.expiry.when() for record in self._closed_routes.values())
                await asyncio.sleep(last - self._loop.time())
        finally:
            self.close()

    def _retire(self, conn: Connection, close_datagram: Optional[bytes]) -> None:
        """End `conn` for the application and keep only its connection IDs and
        close datagram until its closing or draining period ends."""
        engine = conn._engine
        cids = list(conn._cids)
        self._unroute(conn)
        record = ClosedConnection(cids, close_datagram, engine.peer_addr or conn._remote_addr)
        for cid in cids:
            self._closed_routes[cid] = record
        record.expiry = self._loop.call_at(engine.closing_period_end, self._expire_closed, record)
        engine.end_closing_period()
        conn._process_events()      # ConnectionTerminated: wait_closed() returns

    def _expire_closed(self, record: ClosedConnection) -> None:
        routes = self._closed_routes
        for cid in record.cids:
            if routes.get(cid) is record:
                del routes[cid]

    def _answer_if_closed(self, dcid: bytes, length: int) -> bool:
        """Whether `dcid` is a connection's in its closing or draining period;
        if so, the datagram of `length` bytes is answered as its record says."""
        record = self._closed_routes.get(dcid)
        if record is None:
            return False
        datagram = record.answer(length)
        if datagram is not None:
            try:
                self._udp.send(datagram, record.addr)
            except OSError:
                pass    # as any lost packet: the peer's next one is answered later
        return True

    def _on_handshake_complete(self, conn: Connection) -> None:
        self._set_half_open(conn, False)
        listener = self._listener
        if not conn.is_client and listener is not None and not listener._early:
            if listener._closed:
                conn._engine.close(0x02, "server closed", False)   # CONNECTION_REFUSED
                self._schedule_flush(conn)
            else:
                listener._deliver(conn)

    def _listener_closed(self, listener: Listener) -> None:
        if self._listener is listener:
            self._listener = None
            for conn in list(self._connections):
                if not conn.is_client and not conn._handshake_done.done():
                    conn._engine.close(0x02, "server closed", False)
                    self._schedule_flush(conn)

    def _on_readable(self) -> None:
        udp = self._rx_udp
        routes = self._routes
        cid_length = self.connection_id_length
        now = self._loop.time()
        touched = set()
        handshaking = None
        received = 0
        # Bounded: at most 4 reads and about RECEIVE_BUDGET datagrams (a read of
        # GRO super-packets can hold thousands), then other callbacks run, among
        # them the tasks reading what was just received.
        for _ in range(4):
            try:
                count = udp.recv_batch()
            except OSError:
                break
            if count == 0:
                break
            buf = None
            i = 0
            while True:
                # Datagrams of established connections go to their engines in
                # Cython; the loop body below takes each other one.
                i = deliver_established(udp, i, routes, cid_length, now, touched)
                if i == count:
                    break
                if buf is None:
                    buf = udp.buffer
                offset = udp.offset(i)
                data = buf[offset:offset + udp.length(i)]
                addr = udp.addr(i)
                conn = self._route(data, addr, now)
                if conn is not None:
                    # Decrypted in place in the receive pool: no copy.
                    conn._engine.receive_datagram_inplace(data, addr, now, udp.ecn(i))
                    if conn._half_open and conn._engine.packets_received == 0:
                        self._detach(conn)      # its first Initial did not even decrypt: keep nothing
                    elif conn._handshake_done.done():
                        touched.add(conn)
                    # A handshake flight leaves as soon as the datagrams in a row
                    # for its connection are read, not after the whole batch: the
                    # peer works on it while we go on with the rest.
                    elif handshaking is not conn:
                        if handshaking is not None:
                            self._flush_handshake(handshaking)
                        handshaking = conn
                i += 1
            received += count
            if count < 64 or received >= RECEIVE_BUDGET:
                break
        if handshaking is not None:
            self._flush_handshake(handshaking)
        for conn in touched:
            self._after_input(conn)

    def _flush_handshake(self, conn: Connection) -> None:
        conn._process_events()
        self._flush_connection(conn)
        if conn._handshake_done.done():
            self._after_input(conn)     # the tasks it woke may write: flush again after them

    def _route(self, data, addr, now) -> Optional[Connection]:
        if not data:
            return None
        first = data[0]
        if not first & 0x40 and not first & 0x80:
            self._non_quic.append((bytes(data), addr))
            self._non_quic_waiter.set()
            return None
        if first & 0x80:
            try:
                header = pull_header(data, self.connection_id_length)
            except ValueError:
                return None
            conn = self._routes.get(header.dcid)
            if conn is not None:
                return conn
            if self._answer_if_closed(header.dcid, len(data)):
                return None
            return self._accept_new(data, header, addr, now)
        dcid = bytes(data[1:1 + self.connection_id_length])
        conn = self._routes.get(dcid)
        if conn is None and self._closed_routes and self._answer_if_closed(dcid, len(data)):
            return None
        if conn is None and len(data) >= 21:
            # RFC 9000 §10.3.1: a datagram ending in a peer's reset token is a stateless reset.
            tail = bytes(data[-16:])
            for candidate in self._connections:
                if tail in candidate._engine.peer_reset_tokens:
                    candidate._engine.handle_stateless_reset(tail)
                    self._loop.call_soon(self._after_input, candidate)
                    return None
        if conn is None and self._listener is not None:
            # RFC 9000 §10.3: tell a peer that lost its state, with a stateless reset.
            reset = self._endpoint.on_unknown_short(data, now)
            if reset is not None:
                self._udp.send(reset, addr)
        return conn

    def _accept_new(self, data, header, addr, now) -> Optional[Connection]:
        listener = self._listener
        if listener is None or listener._closed:
            return None
        if header.version not in listener.config.versions:
            reply = self._endpoint.on_unsupported_version(header, listener.config.versions, len(data), now)
            if reply is not None:
                self._udp.send(reply, addr)
            return None
        if header.packet_type != 0 or len(data) < 1200:
            return None   # RFC 9000 §14.1: a client's first datagram is at least 1200 bytes
        validated = self._endpoint.tokens.validate(header.token, addr, now) if header.token else None
        require = listener.config.require_address_validation
        half_open = self._half_open_count
        if validated is None and (half_open >= MAX_HALF_OPEN or (require is not None and require(addr))):
            self._udp.send(self._endpoint.retry(header, addr, now), addr)
            return None
        if validated is not None and validated.retry:
            if validated.retry_scid != header.dcid or half_open >= 4 * MAX_HALF_OPEN:
                return None
            host_cid, odcid, retry_scid = validated.retry_scid, validated.original_dcid, validated.retry_scid
        else:
            host_cid, odcid, retry_scid = self._new_cid(), header.dcid, None
        engine = Engine(is_client=False, config=listener.config, tls_config=listener.tls,
                        host_cid=host_cid, peer_cid=header.scid, original_dcid=odcid, retry_scid=retry_scid,
                        stateless_reset_key=self.stateless_reset_key, version=header.version,
                        now=now, peer_addr=addr, address_validated=validated is not None,
                        tracer=self._make_tracer(listener.config, False, odcid))
        engine.queue_new_token(self._endpoint.new_token(addr, now))
        conn = (EarlyConnection if listener._early else Connection)(self, engine, addr, is_client=False,
                                                                    config=listener.config)
        self._set_half_open(conn, True)
        self._register(conn)
        self._add_route(header.dcid, conn)
        if listener._early:
            listener._deliver(conn)
        return conn

    def _after_input(self, conn: Connection) -> None:
        # Wake the readers now and send a little later: the flush is queued
        # behind the tasks just woken, so their answers leave in the datagrams
        # that carry the ACK (one flush per iteration). When the peer opened
        # streams, the tasks woken now (accept loops) start handler tasks that
        # only run in the next pass: the flush waits for those too.
        conn._process_events()
        host = conn._host
        if host.streams_opened:
            host.streams_opened = False
            self._flush_late = True
        conn._schedule_flush()

    def _schedule_flush(self, conn: Connection) -> None:
        conn._host.flush_pending = True
        self._dirty.add(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        if self._flush_late:
            self._flush_late = False
            self._loop.call_soon(self._flush_dirty)
            return
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            self._flush_connection(conn)

    def _flush_connection(self, conn: Connection) -> None:
        host = conn._host
        host.flush_pending = False
        host.finished_unflushed = 0
        if self._closed:
            return
        if self._blocked is not None:
            # The socket buffer is full: build nothing more until it drains
            # (packets built now would only be lost); _on_writable resumes.
            self._dirty.add(conn)
            conn._process_events()
            self._arm_timer(conn)
            return
        engine = conn._engine
        buf = _send_buffer()
        now = self._loop.time()
        addr = engine.peer_addr or conn._remote_addr   # follows the peer across NAT rebinding
        # A short first datagram (an ACK, the end of a stream) ends a GSO batch
        # early, so keep asking until the engine has nothing left, within a
        # budget per flush so other connections and the reader get their turn.
        first_datagram = 0
        for _ in range(MAX_BATCHES_PER_FLUSH):
            count, segment, total = engine.fill_send_buffer(buf, MAX_DATAGRAMS_PER_FLUSH, now)
            if count == 0:
                break
            first_datagram = segment if count > 1 else total
            view = memoryview(buf)[:total]
            ecn = engine.ecn_mark
            try:
                sent = self._udp.send(view, addr, segment if count > 1 else 0, ecn)
            except BlockingIOError:
                sent = 0
            except OSError:
                break   # e.g. unreachable: recovery treats these packets as lost
            if sent < total:
                # Keep what did not fit (whole datagrams) and wait for room.
                self._blocked = (bytes(view[sent:]), addr, segment if count > 1 else 0, ecn)
                self._dirty.add(conn)
                self._loop.add_writer(self._sock.fileno(), self._on_writable)
                break
        else:
            self._schedule_flush(conn)
        conn._process_events()
        closing = engine.closing_state
        if closing is not None and not self._closing and not conn._closed.done():
            # Every datagram built while closing is the close datagram.
            self._retire(conn, bytes(buf[:first_datagram]) if closing == "closing" and first_datagram else None)
            return
        self._arm_timer(conn)

    def _on_writable(self) -> None:
        if self._closed or self._blocked is None:
            return
        data, addr, segment, ecn = self._blocked
        try:
            sent = self._udp.send(data, addr, segment if len(data) > segment else 0, ecn)
        except BlockingIOError:
            return
        except OSError:
            sent = len(data)
        if sent < len(data):
            self._blocked = (data[sent:], addr, segment, ecn)
            return
        self._blocked = None
        self._loop.remove_writer(self._sock.fileno())
        if self._dirty and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_dirty)

    def _arm_timer(self, conn: Connection) -> None:
        when = conn._engine.get_timer()
        if when == conn._timer_at:
            return
        conn._timer_at = when
        handle = conn._timer_handle
        if when is None:
            if handle is not None:
                handle.cancel()
                conn._timer_handle = None
            return
        if handle is not None:
            if handle.when() <= when:
                # The deadline moved later (it does after most packets): keep the
                # handle; when it fires early, _on_timer sets it for the new time.
                return
            handle.cancel()
        conn._timer_handle = self._loop.call_at(when, self._on_timer, conn)

    def _on_timer(self, conn: Connection) -> None:
        conn._timer_handle = None
        when = conn._timer_at
        if when is None:
            return
        now = self._loop.time()
        if when - now > TIMER_SLACK:
            conn._timer_handle = self._loop.call_at(when, self._on_timer, conn)
            return
        conn._timer_at = None
        conn._engine.handle_timer(now)
        # A timer (pacing, loss detection, ACK delay) wakes no reader that could
        # add to the datagrams: send what it released at once.
        conn._process_events()
        self._flush_connection(conn)


# -- quic-go's package-level helpers ------------------------------------------

def _split_addr(addr) -> tuple[str, int]:
    if isinstance(addr, str):
        host, _, port = addr.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)
    return addr[0], addr[1]


def _owning_listener(transport: Transport, tls: TLSConfig, config: Optional[Config], early: bool):
    """A listener whose close() also closes `transport` and its connections."""
    listener = (transport.listen_early if early else transport.listen)(tls, config)
    listener._close_transport = True
    return listener


async def _dial_owning(addr, tls: TLSConfig, config: Optional[Config], **kw):
    """Dial from a new socket that closes with the connection (or at once on failure)."""
    host, port = _split_addr(addr)
    transport = await Transport.bind("::" if ":" in host else "0.0.0.0", 0)
    try:
        conn = await transport.dial((host, port), tls, config, **kw)
    except BaseException:
        transport.close()
        raise
    conn._close_transport_on_close = True
    return conn


async def listen(sock: socket.socket, tls: TLSConfig, config: Optional[Config] = None) -> Listener:
    """Listen on an existing UDP socket; closing the listener closes its transport."""
    return _owning_listener(Transport(sock), tls, config, early=False)


async def listen_addr(addr, tls: TLSConfig, config: Optional[Config] = None) -> Listener:
    """Listen on `addr` ("host:port" or a tuple); closing the listener closes its connections."""
    return _owning_listener(await Transport.bind(*_split_addr(addr)), tls, config, early=False)


async def listen_early(sock: socket.socket, tls: TLSConfig, config: Optional[Config] = None) -> EarlyListener:
    """Like `listen`, handing out connections before their handshake completes (0.5-RTT, 0-RTT)."""
    return _owning_listener(Transport(sock), tls, config, early=True)


async def listen_addr_early(addr, tls: TLSConfig, config: Optional[Config] = None) -> EarlyListener:
    """Like `listen_addr`, handing out connections before their handshake completes."""
    return _owning_listener(await Transport.bind(*_split_addr(addr)), tls, config, early=True)


async def dial(sock: socket.socket, addr, tls: TLSConfig, config: Optional[Config] = None, **kw) -> Connection:
    """Dial from an existing UDP socket (the transport stays open after the connection closes)."""
    return await Transport(sock).dial(addr, tls, config, **kw)


async def dial_addr(addr, tls: TLSConfig, config: Optional[Config] = None, **kw) -> Connection:
    """Dial `addr` from a new socket that closes with the connection."""
    return await _dial_owning(addr, tls, config, **kw)


async def dial_early(sock: socket.socket, addr, tls: TLSConfig, config: Optional[Config] = None, **kw) -> EarlyConnection:
    """Like `dial`, returning at once so 0-RTT data can be sent with a session ticket."""
    return await Transport(sock).dial_early(addr, tls, config, **kw)


async def dial_addr_early(addr, tls: TLSConfig, config: Optional[Config] = None, **kw) -> EarlyConnection:
    """Like `dial_addr`, returning at once so 0-RTT data can be sent with a session ticket."""
    return await _dial_owning(addr, tls, config, early=True, **kw)
