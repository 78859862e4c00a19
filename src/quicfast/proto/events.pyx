# cython: language_level=3
"""Events the engine reports to its driver (`Connection.next_event()`).

Each event is a small immutable extension type (read-only attributes,
equality and repr by value), so that creating one costs about as much as a
tuple: on the short-stream path the engine makes two per stream per side.
Stream data is not carried in the events: `StreamDataAvailable` is reported
once per stream per input batch and the driver pulls the bytes with
`Connection.read_stream()`, so the bulk path creates no object per packet.
"""

cimport cython


cdef class _Event:
    """Value semantics shared by every event: equal when the type and the
    fields are equal, and a repr that names them."""

    cdef tuple _fields(self):
        return ()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == (<_Event>other)._fields()

    def __hash__(self):
        return hash((type(self), self._fields()))

    def __repr__(self):
        names = getattr(type(self), "__match_args__", ())
        inner = ", ".join("%s=%r" % (name, value) for name, value in zip(names, self._fields()))
        return "%s(%s)" % (type(self).__name__, inner)


@cython.final
cdef class HandshakeCompleted(_Event):
    """The TLS handshake finished (client: Finished sent; server: Finished received).

    `alpn_protocol` is the negotiated ALPN or None, `session_resumed` is True
    when a session ticket was used, `early_data_accepted` when the server
    accepted 0-RTT data.
    """

    __match_args__ = ("alpn_protocol", "session_resumed", "early_data_accepted")

    def __cinit__(self, alpn_protocol, bint session_resumed, bint early_data_accepted):
        self.alpn_protocol = alpn_protocol
        self.session_resumed = session_resumed
        self.early_data_accepted = early_data_accepted

    cdef tuple _fields(self):
        return (self.alpn_protocol, self.session_resumed, self.early_data_accepted)


@cython.final
cdef class HandshakeConfirmed(_Event):
    """The handshake is confirmed (RFC 9001 §4.1.2): HANDSHAKE_DONE received or sent."""


cdef class _StreamIdEvent(_Event):
    """An event about one stream, `stream_id`."""

    __match_args__ = ("stream_id",)

    def __cinit__(self, stream_id):
        self.stream_id = stream_id

    cdef tuple _fields(self):
        return (self.stream_id,)


@cython.final
@cython.no_gc       # holds only ints or bytes: never part of a cycle
cdef class StreamOpened(_StreamIdEvent):
    """The peer opened `stream_id` (fired once, before any data event for it)."""


@cython.final
@cython.no_gc       # holds only ints or bytes: never part of a cycle
cdef class StreamDataAvailable(_StreamIdEvent):
    """Bytes or the end of `stream_id` can be read with `read_stream()`.
    Fired at most once per stream per `receive_datagram` call."""


@cython.final
cdef class StreamReset(_Event):
    """The peer reset its sending side of `stream_id` (RESET_STREAM) with
    `error_code`; `final_size` is the stream's final size."""

    __match_args__ = ("stream_id", "error_code", "final_size")

    def __cinit__(self, stream_id, error_code, final_size):
        self.stream_id = stream_id
        self.error_code = error_code
        self.final_size = final_size

    cdef tuple _fields(self):
        return (self.stream_id, self.error_code, self.final_size)


@cython.final
cdef class StopSendingReceived(_Event):
    """The peer asked us to stop sending on `stream_id` (STOP_SENDING); the
    engine has already answered with RESET_STREAM carrying the same code."""

    __match_args__ = ("stream_id", "error_code")

    def __cinit__(self, stream_id, error_code):
        self.stream_id = stream_id
        self.error_code = error_code

    cdef tuple _fields(self):
        return (self.stream_id, self.error_code)


@cython.final
cdef class StreamsAvailable(_Event):
    """The peer raised its stream limit (MAX_STREAMS): more streams can be opened."""

    __match_args__ = ("unidirectional",)

    def __cinit__(self, bint unidirectional):
        self.unidirectional = unidirectional

    cdef tuple _fields(self):
        return (self.unidirectional,)


@cython.final
@cython.no_gc       # holds only ints or bytes: never part of a cycle
cdef class DatagramReceived(_Event):
    """A DATAGRAM frame (RFC 9221) arrived, carrying `data`."""

    __match_args__ = ("data",)

    def __cinit__(self, bytes data):
        self.data = data

    cdef tuple _fields(self):
        return (self.data,)


cdef class _ConnectionIdEvent(_Event):
    """An event about one of our connection IDs, `connection_id`."""

    __match_args__ = ("connection_id",)

    def __cinit__(self, bytes connection_id):
        self.connection_id = connection_id

    cdef tuple _fields(self):
        return (self.connection_id,)


@cython.final
cdef class ConnectionIdIssued(_ConnectionIdEvent):
    """We issued `connection_id`: packets to it belong to this connection."""


@cython.final
cdef class ConnectionIdRetired(_ConnectionIdEvent):
    """`connection_id` no longer routes to this connection."""


@cython.final
cdef class ZeroRTTRejected(_Event):
    """The server rejected our 0-RTT data; the engine will resend stream data as 1-RTT."""


@cython.final
cdef class ConnectionTerminated(_Event):
    """The connection is over: closed by either side, idle, reset or failed.

    `error` is the exception describing the cause (a `quicfast.errors` class).
    """

    __match_args__ = ("error",)

    def __cinit__(self, error):
        self.error = error

    cdef tuple _fields(self):
        return (self.error,)
