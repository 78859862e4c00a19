# Declarations of quicfast._udp for Cython callers (the transport cimports
# UdpSocketState and reads datagrams through the dgram_* methods).

cimport cython

from quicfast.includes.udp cimport qf_socklen_t, qf_udp_fd, qf_udp_rx, qf_udp_sockaddr


cdef struct UdpDatagram:
    # offset is where the datagram starts in the receive pool.
    Py_ssize_t offset
    # length is the datagram's size in bytes.
    Py_ssize_t length
    # msg is the pool slot (received message) the datagram was cut from.
    Py_ssize_t msg


@cython.final
cdef class UdpSocketState:
    # sock is the socket.socket being driven (closed by close()).
    cdef readonly object sock
    # family is socket.AF_INET or socket.AF_INET6.
    cdef readonly int family
    # gso_supported is whether sends use UDP_SEGMENT; cleared at run time on EIO.
    cdef readonly bint gso_supported
    # gro_supported is whether UDP_GRO is on for receives.
    cdef readonly bint gro_supported
    # max_gso_segments is the most datagrams one GSO send carries (1 without GSO).
    cdef readonly int max_gso_segments
    # rcvbuf is SO_RCVBUF after raising, as getsockopt reports it.
    cdef readonly int rcvbuf
    # sndbuf is SO_SNDBUF after raising, as getsockopt reports it.
    cdef readonly int sndbuf
    # dual_stack is whether an AF_INET6 socket also carries IPv4 (IPV6_V6ONLY off).
    cdef readonly bint dual_stack
    # warning is None, or how to raise the kernel's socket buffer limit.
    cdef readonly object warning
    # count is the number of datagrams the last recv_batch made available.
    cdef readonly Py_ssize_t count
    # messages is the number of messages (GRO super-packets count once) it received.
    cdef readonly Py_ssize_t messages

    # _fd is the socket's descriptor, -1 after close().
    cdef qf_udp_fd _fd
    # _closed is set by close().
    cdef bint _closed
    # _rx is the receive pool, allocated once.
    cdef qf_udp_rx _rx
    # _dgrams is count datagram descriptors into _rx; _dgram_cap is its capacity.
    cdef UdpDatagram *_dgrams
    cdef Py_ssize_t _dgram_cap
    # _exports is the number of live buffer exports of the pool.
    cdef Py_ssize_t _exports
    # _src_key/_src_keylen/_src_tuple cache the last source address as a tuple.
    cdef qf_udp_sockaddr _src_key
    cdef qf_socklen_t _src_keylen
    cdef object _src_tuple
    # _dst/_dstlen/_dst_tuple cache the last destination resolved by send.
    cdef qf_udp_sockaddr _dst
    cdef qf_socklen_t _dstlen
    cdef object _dst_tuple
    # _sizes is scratch space for send_batch's sizes; _sizes_cap its capacity.
    cdef size_t *_sizes
    cdef Py_ssize_t _sizes_cap

    cdef unsigned char* dgram_ptr(self, int i) noexcept
    cdef Py_ssize_t dgram_len(self, int i) noexcept
    cdef int dgram_ecn(self, int i) noexcept
    cdef object dgram_addr(self, int i)
    cdef Py_ssize_t send_ptr(self, const unsigned char *data, size_t length, object addr,
                             size_t segment_size, int ecn) except -1
    cdef int _resolve(self, object addr) except -1
    cdef int _check_open(self) except -1
