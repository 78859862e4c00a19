# Declarations of the engine events (events.pyx), so that the engine can
# create them without a module attribute lookup.

cimport cython

cdef class _Event:
    cdef tuple _fields(self)

@cython.final
cdef class HandshakeCompleted(_Event):
    cdef readonly object alpn_protocol
    cdef readonly bint session_resumed, early_data_accepted

@cython.final
cdef class HandshakeConfirmed(_Event):
    pass

cdef class _StreamIdEvent(_Event):
    cdef readonly object stream_id

@cython.final
cdef class StreamOpened(_StreamIdEvent):
    pass

@cython.final
cdef class StreamDataAvailable(_StreamIdEvent):
    pass

@cython.final
cdef class StreamReset(_Event):
    cdef readonly object stream_id, error_code, final_size

@cython.final
cdef class StopSendingReceived(_Event):
    cdef readonly object stream_id, error_code

@cython.final
cdef class StreamsAvailable(_Event):
    cdef readonly bint unidirectional

@cython.final
cdef class DatagramReceived(_Event):
    cdef readonly bytes data

cdef class _ConnectionIdEvent(_Event):
    cdef readonly bytes connection_id

@cython.final
cdef class ConnectionIdIssued(_ConnectionIdEvent):
    pass

@cython.final
cdef class ConnectionIdRetired(_ConnectionIdEvent):
    pass

@cython.final
cdef class ZeroRTTRejected(_Event):
    pass

@cython.final
cdef class ConnectionTerminated(_Event):
    cdef readonly object error
