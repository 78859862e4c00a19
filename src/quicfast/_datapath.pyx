"""The transport's per-datagram receive work at C level: the datagrams of a
batch that belong to established connections, handed to their engines.

Implements the common case of RFC 9000 §5.2 (a packet is matched to its
connection by its Destination Connection ID) for short headers (§17.3), whose
DCID has the length we chose for our connection IDs. Everything else (long
headers, unknown or retired CIDs, stateless resets, non-QUIC datagrams,
connections still in their handshake) stops the fast path and goes to
`Transport._on_readable`'s Python path, one datagram at a time, in order.

Why Cython: on a busy connection this loop runs for every datagram; in
Python it took about 65 bytecodes, five calls into `_udp` and a memoryview
per datagram. Here the datagram goes from the receive pool to the engine's C
entry point without a Python object of its own (the sender's address tuple is
cached by `_udp` across a batch).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t
from quicfast._udp cimport UdpSocketState
from quicfast.proto.connection cimport Connection as Engine
from quicfast.proto.connection_state cimport to_ns


def deliver_established(UdpSocketState udp, Py_ssize_t start, dict routes, Py_ssize_t cid_length,
                        double now, set touched):
    """Hand datagrams `start`, `start` + 1, ... of `udp`'s last batch to their
    connections' engines while each is a short-header packet whose DCID is in
    `routes` for a connection whose engine has completed its handshake; add
    each such connection to `touched`.

    The engines decrypt in place: the receive pool is changed.

    :returns: the index of the first datagram not handled (``udp.count`` when
        all were), for the caller's general path.
    """
    cdef Py_ssize_t i, count = udp.count, length
    cdef unsigned char* data
    cdef Engine engine
    cdef int64_t now_ns = to_ns(now)
    for i in range(start, count):
        data = udp.dgram_ptr(<int>i)
        length = udp.dgram_len(<int>i)
        # A short header has the form bit clear and the fixed bit set (§17.3).
        if length <= cid_length or data[0] & 0xC0 != 0x40:
            return i
        conn = routes.get(PyBytes_FromStringAndSize(<char*>data + 1, cid_length))
        if conn is None:
            return i
        engine = <Engine?>conn._engine
        if not engine.handshake_complete:
            return i
        engine._receive_inplace(data, length, udp.dgram_addr(<int>i), now_ns, udp.dgram_ecn(<int>i))
        touched.add(conn)
    return count
