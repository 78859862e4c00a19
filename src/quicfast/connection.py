"""`Connection`: one QUIC connection in the asyncio API (quic-go's
Connection / EarlyConnection in Python's idiom).

It wraps a sans-I/O engine (`quicfast.proto.connection.Connection`) that
its `Transport` feeds with datagrams and timer expiries; here engine events
become stream objects, accept queues, futures and exceptions.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import TYPE_CHECKING, Any, Coroutine, Optional, Union

from . import errors
from .config import Config
from .proto import events
from .stream import ReceiveStream, SendStream, Stream, StreamHost

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["Connection", "EarlyConnection", "ConnectionState"]

_DEFAULT_CONFIG = Config()

#: Received DATAGRAM payloads kept for receive_datagram(); beyond that the
#: oldest is dropped (counted in stats()). Room for one readable callback's
#: worth (transport.RECEIVE_BUDGET plus one GRO read) when the reader keeps up.
MAX_QUEUED_DATAGRAMS = 4096
#: drain_datagrams() returns once at most this many DATAGRAM frames wait to be
#: sent (the engine holds up to 256 and drops the oldest beyond that).
DATAGRAM_LOW_WATER = 32


def _wake_all(waiters: list) -> None:
    """Resolve every future in `waiters` (those not cancelled meanwhile) and empty it."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


@dataclasses.dataclass(frozen=True)
class ConnectionState:
    """What `Connection.connection_state()` reports (quic-go ConnectionState)."""

    #: tls holds the TLS details: cipher_suite, group, server_name, peer_certificates, session_resumed.
    tls: dict
    alpn_protocol: Optional[str]
    supports_datagrams: bool
    used_0rtt: bool
    version: int
    gso: bool


class Connection:
    """A QUIC connection. Obtained from `Transport.dial()` or `Listener.accept()`."""

    def __init__(self, transport: "Transport", engine, remote_addr, is_client: bool,
                 config: Optional[Config] = None) -> None:
        self._transport = transport
        self._engine = engine
        self._remote_addr = remote_addr
        self.is_client = is_client
        config = config or _DEFAULT_CONFIG
        self._loop = loop = asyncio.get_running_loop()
        self._handshake_done: asyncio.Future = loop.create_future()
        self._closed: asyncio.Future = loop.create_future()
        #: Streams the application may still hear about, by id; a stream is
        #: forgotten once its reading and its writing are both over.
        self._streams: dict[int, Union[Stream, ReceiveStream, SendStream]] = {}
        # Futures of the tasks waiting in receive_datagram(s)() and
        # drain_datagrams(): made only when someone has to wait.
        self._datagram_waiters: list = []
        self._datagram_drain_waiters: list = []
        self._datagrams: collections.deque = collections.deque(maxlen=MAX_QUEUED_DATAGRAMS)
        #: received DATAGRAM payloads dropped because MAX_QUEUED_DATAGRAMS were unread
        self._datagrams_dropped_on_receive = 0
        self._drain_watchers: set = set()
        # Send backpressure: per stream (Stream.high_water) and across the
        # streams (the engine counts the connection's unacknowledged bytes).
        self._connection_high_water = config.connection_send_high_water
        #: The streams' side of the connection (opening, accepting, their
        #: events and flush requests), in Cython: see quicfast.stream.
        self._host = StreamHost(self, engine, self._streams, loop, self._closed, config.stream_send_high_water)
        #: The connection IDs the transport routes to this connection.
        self._cids: set = set()
        self._timer_handle: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._close_transport_on_close = False
        #: _half_open is True for a server connection whose handshake is not done.
        self._half_open = False
        self._on_closed_callbacks: list = []
        #: True when the server rejected our 0-RTT data (it was resent as 1-RTT).
        self.zero_rtt_rejected = False

    # -- what the application calls -------------------------------------

    @property
    def local_addr(self):
        return self._transport.local_addr

    @property
    def remote_addr(self):
        """The peer's current address (it changes when the peer migrates or is rebound)."""
        return self._engine.peer_addr or self._remote_addr

    async def handshake_complete(self) -> None:
        """Wait until the TLS handshake has completed (quic-go HandshakeComplete)."""
        await asyncio.shield(self._handshake_done)

    def accept_stream(self) -> Coroutine[Any, Any, Stream]:
        """Wait for the peer to open a bidirectional stream (a coroutine:
        ``stream = await conn.accept_stream()``).

        After handing out 16 streams back to back (`quicfast.stream.ACCEPT_BURST`)
        it lets the event loop run once, so that the handlers an accept loop
        spawned for a burst of new streams start before it takes the rest.
        """
        return self._host.accept(False)

    def accept_uni_stream(self) -> Coroutine[Any, Any, ReceiveStream]:
        """Wait for the peer to open a unidirectional stream (a coroutine)."""
        return self._host.accept(True)

    def open_stream(self) -> Stream:
        """Open a bidirectional stream now.

        :raises StreamLimitReachedError: when the peer's limit is reached (see `open_stream_sync`).
        """
        return self._host.open(False, Stream)

    def open_uni_stream(self) -> SendStream:
        """Open a unidirectional (send-only) stream now."""
        return self._host.open(True, SendStream)

    def open_stream_sync(self) -> Coroutine[Any, Any, Stream]:
        """Open a bidirectional stream, waiting for the peer's credit if
        needed (a coroutine: ``stream = await conn.open_stream_sync()``).

        At the peer's stream limit the stream is still opened at once while
        no more streams than that limit already wait beyond it: it can be
        written to, and its frames go out when the peer's MAX_STREAMS covers
        it (aioquic queues such streams too). Past that bound, this waits.
        """
        return self._host.open_sync(False, Stream)

    def open_uni_stream_sync(self) -> Coroutine[Any, Any, SendStream]:
        """Open a unidirectional stream, waiting for the peer's credit if
        needed (past the limit as `open_stream_sync` does; a coroutine)."""
        return self._host.open_sync(True, SendStream)

    def can_open_stream(self, unidirectional: bool = False) -> bool:
        """Whether `open_stream()` would succeed now."""
        return self._engine.can_open_stream(unidirectional)

    def send_datagram(self, data: bytes) -> None:
        """Send an unreliable DATAGRAM (RFC 9221).

        :raises DatagramTooLargeError: when `data` cannot fit one packet.
        :raises DatagramNotSupportedError: when the peer did not enable datagrams.
        """
        self._raise_if_closed()
        self._engine.send_datagram_frame(data)
        self._schedule_flush()

    @property
    def datagrams_queued(self) -> int:
        """DATAGRAM frames accepted by `send_datagram` and not sent yet."""
        return self._engine.datagrams_queued

    async def drain_datagrams(self) -> None:
        """Wait until at most `DATAGRAM_LOW_WATER` (32) DATAGRAM frames wait to
        be sent: the datagram counterpart of a stream's `drain()`.

        `send_datagram` never blocks; past 256 queued frames the oldest is
        dropped (counted in ``stats()["datagrams_dropped"]``). A sender that
        calls this after each burst loses nothing to that queue.

        :raises ConnectionClosedError: (or the close cause) if the connection closes.
        """
        while self._engine.datagrams_queued > DATAGRAM_LOW_WATER:
            self._raise_if_closed()
            await self._host.wait(self._datagram_drain_waiters)

    async def receive_datagrams(self) -> list[bytes]:
        """Wait for DATAGRAM payloads and return every one received so far,
        oldest first (at least one): `receive_datagram` for a whole batch."""
        while not self._datagrams:
            self._raise_if_closed()
            await self._host.wait(self._datagram_waiters)
        batch = list(self._datagrams)
        self._datagrams.clear()
        return batch

    async def receive_datagram(self) -> bytes:
        """Wait for the next DATAGRAM frame's payload."""
        while True:
            if self._datagrams:
                return self._datagrams.popleft()
            self._raise_if_closed()
            await self._host.wait(self._datagram_waiters)

    def close_with_error(self, error_code: int = 0, reason: str = "") -> None:
        """Close the connection with an application error code (CONNECTION_CLOSE)."""
        if self._closed.done():
            return
        self._engine.close(error_code, reason, True)
        self._schedule_flush()

    def close(self) -> None:
        """Close with application error code 0."""
        self.close_with_error(0, "")

    async def wait_closed(self) -> BaseException:
        """Wait until the connection is over; returns the exception saying why.

        It is over once our CONNECTION_CLOSE has been sent or the peer's
        received, as in quic-go; the transport keeps the closing or draining
        period (RFC 9000 §10.2) without the connection."""
        return await asyncio.shield(self._closed)

    def connection_state(self) -> ConnectionState:
        tls = self._engine.tls
        return ConnectionState(
            tls={
                "cipher_suite": getattr(tls, "cipher_suite", None),
                "group": getattr(tls, "group", None),
                "server_name": getattr(tls, "server_name", None),
                "peer_certificates": list(getattr(tls, "peer_certificates", None) or []),
                "session_resumed": bool(getattr(tls, "session_resumed", False)),
            },
            alpn_protocol=self._engine.alpn_protocol,
            supports_datagrams=self._engine.datagrams_supported,
            used_0rtt=self._engine.early_data_accepted,
            version=self._engine.version,
            gso=self._transport.gso_supported,
        )

    def export_keying_material(self, label: bytes | str, context: bytes = b"", length: int = 32) -> bytes:
        """Keying material from the TLS exporter (RFC 8446 §7.5; quic-go's
        ``ConnectionState().TLS.ExportKeyingMaterial``): both ends get the same
        bytes for the same `label`, `context` and `length`.

        :raises RuntimeError: before the handshake has produced its secrets.
        :raises ValueError: for a label that is not ASCII or too long, or a bad length.
        """
        return self._engine.tls.export_keying_material(label, context, length)

    def migrate(self, transport: "Transport") -> None:
        """Client: move this connection to `transport` (a socket on another
        local address), as quic-go's AddPath/Switch do in one step: a fresh
        connection ID, a path validation, congestion state reset."""
        self._raise_if_closed()
        if transport is self._transport:
            return
        old = self._transport
        self._engine.migrate()
        old._detach(self)
        self._transport = transport
        transport._register(self)
        self._schedule_flush()

    def stats(self) -> dict:
        """RTT, congestion window, bytes and packets sent/lost (quic-go ConnectionStats),
        and the DATAGRAM frames dropped before sending (``datagrams_dropped``) or
        because the application left MAX_QUEUED_DATAGRAMS (4,096) unread
        (``datagrams_dropped_on_receive``)."""
        stats = self._engine.stats()
        stats["datagrams_dropped_on_receive"] = self._datagrams_dropped_on_receive
        return stats

    @property
    def close_error(self) -> Optional[BaseException]:
        """Why the connection closed, or None while it is open."""
        return self._closed.result() if self._closed.done() else None

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        try:
            await asyncio.wait_for(self.wait_closed(), 2.0)
        except asyncio.TimeoutError:
            pass

    # -- what the transport calls --------------------------------------

    def _raise_if_closed(self) -> None:
        if self._closed.done():
            raise errors.fresh_copy(self._closed.result())

    def _schedule_flush(self) -> None:
        """Have the transport flush this connection once this loop iteration."""
        host = self._host
        if not host.flush_pending:
            host.flush_pending = True
            self._transport._schedule_flush(self)

    def _watch_drain(self, stream) -> None:
        self._drain_watchers.add(stream)

    # -- send backpressure across streams ----------------------------------

    def _send_below_high_water(self) -> bool:
        """Whether the connection holds at most its high-water mark unacknowledged."""
        return self._engine.send_buffered <= self._connection_high_water

    @property
    def send_buffered(self) -> int:
        """Bytes written to this connection's streams and not yet acknowledged."""
        return self._engine.send_buffered

    # -- engine events -------------------------------------------------------

    def _process_events(self) -> None:
        streams = self._streams
        # The stream events go to the streams in Cython; the rest come back
        # here. Handling them may queue more (the outer loop picks those up).
        while others := self._host.deliver_events():
            for event in others:
                kind = type(event)
                if kind is events.DatagramReceived:
                    if len(self._datagrams) == MAX_QUEUED_DATAGRAMS:
                        self._datagrams_dropped_on_receive += 1   # the deque drops the oldest
                    self._datagrams.append(event.data)
                    if self._datagram_waiters:
                        _wake_all(self._datagram_waiters)
                elif kind is events.HandshakeCompleted:
                    if not self._handshake_done.done():
                        self._handshake_done.set_result(None)
                    self._transport._on_handshake_complete(self)
                elif kind is events.StreamReset:
                    stream = streams.get(event.stream_id)
                    if isinstance(stream, ReceiveStream):
                        stream._fail_read(errors.StreamError(event.stream_id, event.error_code, remote=True, kind="reset"))
                elif kind is events.StopSendingReceived:
                    stream = streams.get(event.stream_id)
                    if isinstance(stream, SendStream):
                        stream._fail_write(errors.StreamError(event.stream_id, event.error_code, remote=True, kind="stop_sending"))
                elif kind is events.ConnectionIdIssued:
                    self._transport._add_route(event.connection_id, self)
                elif kind is events.ConnectionIdRetired:
                    self._transport._remove_route(event.connection_id)
                elif kind is events.ZeroRTTRejected:
                    self.zero_rtt_rejected = True
                elif kind is events.ConnectionTerminated:
                    self._on_terminated(event.error)
        if self._datagram_drain_waiters and self._engine.datagrams_queued <= DATAGRAM_LOW_WATER:
            _wake_all(self._datagram_drain_waiters)
        if self._drain_watchers:
            # Input may have acknowledged data.
            for stream in list(self._drain_watchers):
                if stream._drained():
                    self._drain_watchers.discard(stream)
                    stream._wake_drain()

    def _on_terminated(self, error: BaseException) -> None:
        if self._closed.done():
            return
        self._closed.set_result(error)
        if not self._handshake_done.done():
            self._handshake_done.set_exception(error)
            self._handshake_done.exception()  # mark retrieved: dial() re-raises it
        self._host.on_terminated(error)
        for stream in list(self._drain_watchers):
            stream._fail_read(error)
            stream._fail_write(error)
        self._drain_watchers.clear()
        _wake_all(self._datagram_waiters)
        _wake_all(self._datagram_drain_waiters)
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        self._timer_at = None
        self._transport._on_connection_closed(self)
        for callback in self._on_closed_callbacks:
            callback(self)


class EarlyConnection(Connection):
    """A connection usable before its handshake completes (0-RTT / 0.5-RTT):
    `await handshake_complete()` before relying on the peer's identity."""
