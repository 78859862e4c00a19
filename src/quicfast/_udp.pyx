# cython: freethreading_compatible = False
"""Batched UDP socket I/O for the quicfast transport (over csrc/udp.c).

:class:`UdpSocketState` takes over a UDP socket and moves datagrams in
batches: one ``recv_batch()`` is one ``recvmmsg`` into a pool allocated once,
with UDP GRO super-packets cut into their datagrams, and one ``send()`` /
``send_batch()`` hands many datagrams to the kernel with UDP GSO
(``UDP_SEGMENT``), or ``sendmmsg`` where GSO is missing.  ECN codepoints and
the destination address of each received datagram come from ancillary data.
The design follows quinn-udp's ``UdpSocketState``.

Call order for a reader::

    n = state.recv_batch()          # when the socket is readable
    for i in range(n):              # Cython: dgram_ptr/len/ecn/addr(i)
        data, addr, ecn = state.datagram(i)

Datagrams stay valid until the next ``recv_batch()``, which reuses the pool;
they are writable, so packets can be decrypted in place.
"""

import os
import socket
import sys

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.errno cimport EAGAIN, EBADF, EINVAL
from libc.string cimport memcmp, memcpy

from quicfast.includes.udp cimport (
    QF_UDP_META_DST,
    QF_UDP_META_TRUNC,
    qf_udp_addr_format,
    qf_udp_addr_parse,
    qf_udp_configure,
    qf_udp_info,
    qf_udp_meta,
    qf_udp_recv,
    qf_udp_rx_free,
    qf_udp_rx_init,
    qf_udp_send,
    qf_udp_send_batch,
)

cdef enum:
    # A GRO super-packet can be up to 64 KiB; smaller slots would truncate it.
    GRO_SLOT_MIN = 65535
    # QF_UDP_HOSTLEN in udp.h.
    HOSTLEN = 64


cdef object _os_error(long err):
    # OSError picks the subclass from errno (EAGAIN -> BlockingIOError).
    return OSError(<int>-err, os.strerror(<int>-err))


cdef object _make_addr(const qf_udp_sockaddr *sa):
    cdef char host[HOSTLEN]
    cdef int port
    cdef unsigned int flowinfo, scope_id
    cdef int fam = qf_udp_addr_format(sa, host, &port, &flowinfo, &scope_id)
    if fam < 0:
        return None
    if fam == socket.AF_INET:
        return (host.decode("ascii"), port)
    return (host.decode("ascii"), port, flowinfo, scope_id)


def _env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


def _buffer_warning(int want, int rcvbuf, int sndbuf):
    short = []
    if rcvbuf < want:
        short.append(("receive", rcvbuf, "rmem_max"))
    if sndbuf < want:
        short.append(("send", sndbuf, "wmem_max"))
    if not short:
        return None
    got = ", ".join(f"{kind} {size // 1024} KiB" for kind, size, _ in short)
    if sys.platform.startswith("linux"):
        how = "; ".join(f"sysctl -w net.core.{key}={want}" for _, _, key in short)
    elif sys.platform == "darwin" or "bsd" in sys.platform:
        how = f"sysctl -w kern.ipc.maxsockbuf={want * 2}"
    else:
        how = "raise the operating system's socket buffer limit"
    return (
        f"quicfast: failed to raise the UDP socket buffers to {want // 1024} KiB "
        f"(got {got}); throughput may suffer. To raise the limit: {how}"
    )


cdef inline int _index(UdpSocketState state, Py_ssize_t i) except -1:
    if i < 0 or i >= state.count:
        raise IndexError("datagram index out of range")
    return <int>i


@cython.final
cdef class UdpSocketState:
    """Batched, GSO/GRO-aware I/O on one UDP socket.

    :param sock: a ``SOCK_DGRAM`` socket of family ``AF_INET`` or
        ``AF_INET6``; it is made non-blocking and tuned (buffers, DF, ECN and
        pktinfo reporting, dual-stack when bound to ``::`` or unbound).
    :param max_batch: most messages one ``recv_batch()`` takes.
    :param buffer_size: size of the receive pool and the target for
        ``SO_RCVBUF``/``SO_SNDBUF``.  GRO needs 64 KiB per slot and is left off
        when ``buffer_size // max_batch`` is smaller.
    :param force_fallback: disable both GSO and GRO (as do the environment
        variables ``QUICFAST_NO_GSO=1`` and ``QUICFAST_NO_GRO=1`` separately).
    :param gso: ``False`` disables GSO only.
    :param gro: ``False`` disables GRO only.
    """

    def __cinit__(self):
        self._fd = -1
        self._closed = True

    def __init__(self, sock, int max_batch=64, Py_ssize_t buffer_size=64 * 65536,
                 *, bint force_fallback=False, bint gso=True, bint gro=True):
        cdef qf_udp_info info
        cdef int r
        if max_batch < 1 or buffer_size < max_batch:
            raise ValueError("need max_batch >= 1 and buffer_size >= max_batch")
        if sock.type != socket.SOCK_DGRAM:
            raise ValueError("UdpSocketState needs a SOCK_DGRAM socket")
        want_gso = gso and not force_fallback and not _env_flag("QUICFAST_NO_GSO")
        want_gro = gro and not force_fallback and not _env_flag("QUICFAST_NO_GRO")
        slot = buffer_size // max_batch
        if slot < GRO_SLOT_MIN:
            want_gro = False
        r = qf_udp_configure(sock.fileno(), <size_t>buffer_size, want_gso, want_gro, &info)
        if r < 0:
            raise _os_error(r)
        if self._rx.buf == NULL:
            if qf_udp_rx_init(&self._rx, <size_t>max_batch, <size_t>slot) < 0:
                raise MemoryError()
        self.sock = sock
        self._fd = sock.fileno()
        self._closed = False
        self.family = info.family
        self.gso_supported = info.gso
        self.gro_supported = info.gro
        self.max_gso_segments = info.max_gso_segments
        self.rcvbuf = info.rcvbuf
        self.sndbuf = info.sndbuf
        self.dual_stack = info.dual_stack
        self.warning = _buffer_warning(
            <int>min(buffer_size, 0x3fffffff), info.rcvbuf, info.sndbuf)
        self.count = 0
        self.messages = 0

    def __dealloc__(self):
        qf_udp_rx_free(&self._rx)
        PyMem_Free(self._dgrams)
        PyMem_Free(self._sizes)

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._rx.buf == NULL:
            raise ValueError("receive pool released")
        view.buf = self._rx.buf
        view.obj = self
        view.len = <Py_ssize_t>(self._rx.batch * self._rx.slot_size)
        view.readonly = 0
        view.itemsize = 1
        view.format = NULL
        if flags & 0x4:  # PyBUF_FORMAT
            view.format = <char *>"B"
        view.ndim = 1
        view.shape = &view.len if flags & 0x8 else NULL  # PyBUF_ND
        view.strides = &view.itemsize if flags & 0x10 == 0x10 else NULL  # PyBUF_STRIDES
        view.suboffsets = NULL
        view.internal = NULL
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    cdef int _check_open(self) except -1:
        if self._closed:
            raise OSError(EBADF, "UdpSocketState is closed")
        return 0

    # ------------------------------------------------------------ receive

    def recv_batch(self):
        """Receive one batch with a single ``recvmmsg``.

        :returns: the number of datagrams now readable with ``datagram(i)``,
            ``offset(i)``/``length(i)`` or the ``dgram_*`` methods, ``0`` when
            nothing is queued.  GRO super-packets count as their datagrams;
            datagrams larger than a pool slot are dropped.
        :raises OSError: on a socket error other than ``EAGAIN``.

        Call again until it returns 0 to drain the socket.
        """
        cdef int n, i
        cdef Py_ssize_t count = 0, off, end, stride, cap
        cdef qf_udp_meta *m
        cdef UdpDatagram *grown
        self._check_open()
        with nogil:
            n = qf_udp_recv(self._fd, &self._rx)
        if n < 0:
            self.count = self.messages = 0
            if n == -EAGAIN:
                return 0
            raise _os_error(n)
        for i in range(n):
            m = &self._rx.meta[i]
            if m.flags & QF_UDP_META_TRUNC:
                continue
            off = i * <Py_ssize_t>self._rx.slot_size
            end = off + <Py_ssize_t>m.len
            stride = <Py_ssize_t>m.stride
            if stride <= 0:
                stride = <Py_ssize_t>m.len if m.len else 1
            while True:
                if count == self._dgram_cap:
                    cap = self._dgram_cap * 2 if self._dgram_cap else self._rx.batch * 8
                    grown = <UdpDatagram *>PyMem_Realloc(self._dgrams, cap * sizeof(UdpDatagram))
                    if grown == NULL:
                        raise MemoryError()
                    self._dgrams = grown
                    self._dgram_cap = cap
                self._dgrams[count].offset = off
                self._dgrams[count].length = min(stride, end - off)
                self._dgrams[count].msg = i
                count += 1
                off += stride
                if off >= end:
                    break
        self.count = count
        self.messages = n
        return count

    cdef unsigned char* dgram_ptr(self, int i) noexcept:
        return self._rx.buf + self._dgrams[i].offset

    cdef Py_ssize_t dgram_len(self, int i) noexcept:
        return self._dgrams[i].length

    cdef int dgram_ecn(self, int i) noexcept:
        return self._rx.meta[self._dgrams[i].msg].ecn

    cdef object dgram_addr(self, int i):
        cdef qf_udp_meta *m = &self._rx.meta[self._dgrams[i].msg]
        if (self._src_tuple is not None and m.srclen == self._src_keylen
                and memcmp(&m.src, &self._src_key, m.srclen) == 0):
            return self._src_tuple
        t = _make_addr(&m.src)
        memcpy(&self._src_key, &m.src, m.srclen)
        self._src_keylen = m.srclen
        self._src_tuple = t
        return t

    def datagram(self, Py_ssize_t i):
        """Datagram ``i`` of the last batch as ``(memoryview, addr, ecn)``.

        The memoryview points into the receive pool (no copy) and is only
        valid until the next ``recv_batch()``.  ``addr`` is the sender as the
        socket module reports it; the same tuple object is returned for
        consecutive datagrams from one sender.
        """
        cdef int j = _index(self, i)
        cdef Py_ssize_t off = self._dgrams[j].offset
        return (memoryview(self)[off:off + self._dgrams[j].length],
                self.dgram_addr(j), self.dgram_ecn(j))

    def offset(self, Py_ssize_t i):
        """Start of datagram ``i`` in :attr:`buffer`."""
        return self._dgrams[_index(self, i)].offset

    def length(self, Py_ssize_t i):
        """Length of datagram ``i``."""
        return self._dgrams[_index(self, i)].length

    def ecn(self, Py_ssize_t i):
        """ECN codepoint (0..3) of datagram ``i``."""
        return self.dgram_ecn(_index(self, i))

    def addr(self, Py_ssize_t i):
        """Sender address of datagram ``i`` (cached tuple)."""
        return self.dgram_addr(_index(self, i))

    def local_ip(self, Py_ssize_t i):
        """Destination IP of datagram ``i`` (from pktinfo), or ``None``."""
        cdef qf_udp_meta *m = &self._rx.meta[self._dgrams[_index(self, i)].msg]
        if not m.flags & QF_UDP_META_DST:
            return None
        return _make_addr(&m.dst)[0]

    @property
    def buffer(self):
        """Writable memoryview over the whole receive pool."""
        return memoryview(self)

    # --------------------------------------------------------------- send

    cdef int _resolve(self, object addr) except -1:
        cdef int r
        cdef unsigned int flowinfo = 0, scope_id = 0
        if addr is self._dst_tuple:
            return 0
        if self._dst_tuple is not None and addr == self._dst_tuple:
            self._dst_tuple = addr
            return 0
        host, port = addr[0], addr[1]
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("port must be 0-65535.")
        if len(addr) > 2:
            flowinfo = addr[2]
        if len(addr) > 3:
            scope_id = addr[3]
        if isinstance(host, str) and "%" in host:
            host, _, ifname = host.partition("%")
            scope_id = int(ifname) if ifname.isdigit() else socket.if_nametoindex(ifname)
        hostb = host.encode("idna") if isinstance(host, str) else bytes(host)
        r = qf_udp_addr_parse(self.family, hostb, port, flowinfo, scope_id, &self._dst)
        if r == -EINVAL:
            # Not numeric: resolve the name the way sendto would.
            fam = self.family if self.family == socket.AF_INET else 0
            infos = socket.getaddrinfo(host, port, fam, socket.SOCK_DGRAM)
            for info in infos:
                r = qf_udp_addr_parse(self.family, info[4][0].encode("ascii"), port,
                                      flowinfo, scope_id, &self._dst)
                if r >= 0:
                    break
        if r < 0:
            self._dst_tuple = None
            raise _os_error(r)
        self._dstlen = r
        self._dst_tuple = addr
        return 0

    cdef Py_ssize_t send_ptr(self, const unsigned char *data, size_t length, object addr,
                             size_t segment_size, int ecn) except -1:
        """Send ``length`` bytes at ``data``, as :meth:`send` does (Cython callers)."""
        cdef long r
        cdef int gso = self.gso_supported
        self._check_open()
        self._resolve(addr)
        with nogil:
            r = qf_udp_send(self._fd, &self._dst, self._dstlen, data, length,
                            segment_size, ecn, &gso)
        self.gso_supported = gso
        if r < 0:
            raise _os_error(r)
        return r

    def send(self, data, addr, Py_ssize_t segment_size=0, int ecn=0):
        """Send ``data`` to ``addr`` as datagrams of ``segment_size`` bytes.

        With ``segment_size > 0`` and ``len(data) > segment_size`` the data is
        cut into datagrams of that size (the last may be shorter) and sent with
        one GSO ``sendmsg`` per 64 datagrams, or ``sendmmsg`` without GSO.
        Otherwise ``data`` is one datagram.

        :param ecn: ECN codepoint for every datagram (2 is ECT(0)).
        :returns: bytes sent; fewer than ``len(data)`` (a whole number of
            datagrams) when the socket buffer filled up part-way: send the
            rest when the socket is writable again.
        :raises BlockingIOError: when nothing could be sent.
        :raises OSError: on other socket errors.
        """
        cdef Py_buffer view
        if segment_size < 0 or not 0 <= ecn <= 3:
            raise ValueError("segment_size must be >= 0 and ecn 0..3")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self.send_ptr(<const unsigned char *>view.buf, <size_t>view.len,
                                 addr, <size_t>segment_size, ecn)
        finally:
            PyBuffer_Release(&view)

    def send_batch(self, data, addr, segment_sizes, int ecn=0):
        """Send packets of varying sizes laid out back to back in ``data``.

        ``segment_sizes`` lists the packet sizes in order.  Each maximal run
        of equal sizes, plus one shorter packet ending it, goes out as one
        GSO send, so an odd-sized packet costs one extra syscall, not one per
        packet.  Returns and raises as :meth:`send`.
        """
        cdef Py_buffer view
        cdef Py_ssize_t n = len(segment_sizes), k = 0, total = 0, s
        cdef size_t *grown
        cdef long r
        cdef int gso = self.gso_supported
        if not 0 <= ecn <= 3:
            raise ValueError("ecn must be 0..3")
        self._check_open()
        if n > self._sizes_cap:
            grown = <size_t *>PyMem_Realloc(self._sizes, n * sizeof(size_t))
            if grown == NULL:
                raise MemoryError()
            self._sizes = grown
            self._sizes_cap = n
        for size in segment_sizes:
            s = size
            if s < 0:
                raise ValueError("negative segment size")
            self._sizes[k] = <size_t>s
            total += s
            k += 1
        self._resolve(addr)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if total > view.len:
                raise ValueError("segment_sizes add up to more than len(data)")
            with nogil:
                r = qf_udp_send_batch(self._fd, &self._dst, self._dstlen,
                                      <const unsigned char *>view.buf,
                                      self._sizes, <size_t>n, ecn, &gso)
        finally:
            PyBuffer_Release(&view)
        self.gso_supported = gso
        if r < 0:
            raise _os_error(r)
        return r

    def close(self):
        """Close the socket; the pool is freed once no buffer export remains."""
        if self._closed:
            return
        self._closed = True
        self._fd = -1
        self.count = self.messages = 0
        if self._exports == 0:
            qf_udp_rx_free(&self._rx)
        self.sock.close()
