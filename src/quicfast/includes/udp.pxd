# Extern-only declarations of csrc/udp.h (batched UDP socket I/O).

cdef extern from "udp.h" nogil:
    ctypedef Py_ssize_t qf_udp_fd
    ctypedef int qf_socklen_t

    int QF_UDP_MAX_GSO_SEGMENTS
    int QF_UDP_MAX_PAYLOAD
    int QF_UDP_HOSTLEN
    int QF_UDP_META_TRUNC
    int QF_UDP_META_DST

    ctypedef union qf_udp_sockaddr:
        pass

    ctypedef struct qf_udp_info:
        int family
        int gso
        int gro
        int max_gso_segments
        int rcvbuf
        int sndbuf
        int dual_stack

    ctypedef struct qf_udp_meta:
        size_t len
        size_t stride
        int ecn
        int flags
        qf_socklen_t srclen
        qf_udp_sockaddr src
        qf_udp_sockaddr dst

    ctypedef struct qf_udp_rx:
        size_t batch
        size_t slot_size
        unsigned char *buf
        qf_udp_meta *meta

    int qf_udp_configure(qf_udp_fd fd, size_t bufsize, int want_gso, int want_gro,
                         qf_udp_info *info)
    int qf_udp_rx_init(qf_udp_rx *rx, size_t batch, size_t slot_size)
    void qf_udp_rx_free(qf_udp_rx *rx)
    int qf_udp_recv(qf_udp_fd fd, qf_udp_rx *rx)
    long qf_udp_send(qf_udp_fd fd, const qf_udp_sockaddr *dst, qf_socklen_t dstlen,
                     const unsigned char *data, size_t len, size_t segment_size,
                     int ecn, int *gso)
    long qf_udp_send_batch(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                           qf_socklen_t dstlen, const unsigned char *data,
                           const size_t *sizes, size_t n, int ecn, int *gso)
    int qf_udp_addr_format(const qf_udp_sockaddr *addr, char *host, int *port,
                           unsigned int *flowinfo, unsigned int *scope_id)
    int qf_udp_addr_parse(int family, const char *host, int port,
                          unsigned int flowinfo, unsigned int scope_id,
                          qf_udp_sockaddr *out)
