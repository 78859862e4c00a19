# The engine's public class, Connection (connection.pyx): the API the asyncio
# shell drives. Declared here so that the shell's stream objects
# (quicfast/stream.pyx) reach the per-stream calls at C level; every other
# caller goes through the Python methods, which call these.

from libc.stdint cimport uint64_t, int64_t
from quicfast.proto.packet_receiver cimport PacketReceiver


cdef class Connection(PacketReceiver):
    # Per-stream calls of the shell: open_stream, read_stream,
    # send_stream_data and stream_send_buffered without their Python
    # argument parsing and tuples.
    cdef bytes _read_stream(self, uint64_t stream_id, Py_ssize_t max_bytes, bint* fin)
    cdef int _send_stream_data(self, uint64_t stream_id, object data, bint end_stream) except -1
    cdef uint64_t _stream_send_buffered(self, uint64_t stream_id) noexcept
    cdef int64_t _open_stream(self, bint is_unidirectional, bint past_limit) except -1
    cdef bint _may_open_stream_past_limit(self, bint is_unidirectional)

    cdef void _queue_readable_events(self)
    cdef bint _can_open_stream(self, bint is_unidirectional)
    cdef void _drain_tls_output(self)
    cdef int64_t _negotiated_idle_timeout(self)
    cdef int _apply_peer_params(self, bytes data) except -1
    cdef int64_t _next_timer(self)
    cdef void _schedule_probes(self, int space_id, int64_t now)
