/*
 * udp.h -- batched UDP socket I/O for quicfast (no Python.h).
 *
 * One receive call fills a preallocated pool with up to |batch| messages
 * (recvmmsg, each possibly a UDP_GRO super-packet) and reports per message
 * its length, GRO segment size, ECN codepoint, source and destination
 * address.  Sends coalesce runs of equal-size packets into one sendmsg with a
 * UDP_SEGMENT (GSO) cmsg and fall back to sendmmsg where GSO is missing or
 * refused.  Linux gets the full feature set; other POSIX systems and Windows
 * compile with a one-datagram-per-syscall fallback.
 *
 * Every function returns >= 0 on success or a negative errno value.
 */
#ifndef QF_UDP_H
#define QF_UDP_H

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET qf_udp_fd;
typedef int qf_socklen_t;
#else
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
typedef int qf_udp_fd;
typedef socklen_t qf_socklen_t;
#endif

/* Kernel limit on segments in one GSO send (UDP_MAX_SEGMENTS in Linux). */
#define QF_UDP_MAX_GSO_SEGMENTS 64
/* Largest UDP payload of one IPv4 datagram; caps the bytes of a GSO send. */
#define QF_UDP_MAX_PAYLOAD 65507
/* Room for "ffff:...%ifname" as getnameinfo writes it. */
#define QF_UDP_HOSTLEN 64

typedef union qf_udp_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} qf_udp_sockaddr;

/* qf_udp_info is what qf_udp_configure found out about the socket. */
typedef struct qf_udp_info {
    int family;           /* family is AF_INET or AF_INET6. */
    int gso;              /* gso is 1 when UDP_SEGMENT is usable. */
    int gro;              /* gro is 1 when UDP_GRO was switched on. */
    int max_gso_segments; /* max_gso_segments is 64 with GSO, else 1. */
    int rcvbuf;           /* rcvbuf is SO_RCVBUF as the kernel reports it. */
    int sndbuf;           /* sndbuf is SO_SNDBUF as the kernel reports it. */
    int dual_stack;       /* dual_stack is 1 for an AF_INET6 socket with IPV6_V6ONLY off. */
} qf_udp_info;

#define QF_UDP_META_TRUNC 0x1  /* the datagram did not fit its slot */
#define QF_UDP_META_DST 0x2    /* dst holds the packet's destination address */

/* qf_udp_meta describes one received message (one slot of the pool). */
typedef struct qf_udp_meta {
    size_t len;           /* len is the number of bytes written to the slot. */
    size_t stride;        /* stride is the GRO segment size, or len when not coalesced. */
    int ecn;              /* ecn is the ECN codepoint (0..3) from TOS/TCLASS. */
    int flags;            /* flags is a bitwise OR of QF_UDP_META_*. */
    qf_socklen_t srclen;  /* srclen is the length of src. */
    qf_udp_sockaddr src;  /* src is the peer's address. */
    qf_udp_sockaddr dst;  /* dst is the local address the packet was sent to (port 0). */
} qf_udp_meta;

/* qf_udp_rx is a receive pool: |batch| slots of |slot_size| bytes in buf. */
typedef struct qf_udp_rx {
    size_t batch;         /* batch is the number of slots. */
    size_t slot_size;     /* slot_size is the capacity of one slot. */
    unsigned char *buf;   /* buf is batch * slot_size bytes; slot i starts at i * slot_size. */
    qf_udp_meta *meta;    /* meta[i] describes slot i after qf_udp_recv. */
    void *sys;            /* sys holds the platform's msghdr/iovec/cmsg arrays. */
} qf_udp_rx;

/*
 * qf_udp_configure makes |fd| non-blocking, raises SO_RCVBUF and SO_SNDBUF
 * towards |bufsize| (SO_*BUFFORCE first, which works with CAP_NET_ADMIN),
 * sets DF (IP_PMTUDISC_PROBE / IPV6_DONTFRAG), asks for ECN and pktinfo
 * ancillary data, turns IPV6_V6ONLY off when |fd| is AF_INET6 and not yet
 * bound to a specific address, probes UDP_SEGMENT when |want_gso| and
 * enables UDP_GRO when |want_gro|.  Results go to |info|.
 *
 * Returns 0, or -EAFNOSUPPORT when |fd| is not AF_INET/AF_INET6, or the
 * negative errno of getsockname/fcntl.  Refused optional options are not
 * errors.
 */
int qf_udp_configure(qf_udp_fd fd, size_t bufsize, int want_gso, int want_gro,
                     qf_udp_info *info);

/*
 * qf_udp_rx_init allocates |rx| with |batch| slots of |slot_size| bytes.
 * Returns 0 or -ENOMEM (|rx| is then left empty and safe to free).
 */
int qf_udp_rx_init(qf_udp_rx *rx, size_t batch, size_t slot_size);

/* qf_udp_rx_free releases what qf_udp_rx_init allocated; idempotent. */
void qf_udp_rx_free(qf_udp_rx *rx);

/*
 * qf_udp_recv receives up to rx->batch messages from |fd| into |rx|
 * (recvmmsg on Linux) and fills rx->meta.  Returns the number of messages,
 * -EAGAIN when none is queued, or another negative errno.
 */
int qf_udp_recv(qf_udp_fd fd, qf_udp_rx *rx);

/*
 * qf_udp_send sends |len| bytes of |data| to |dst| as datagrams of
 * |segment_size| bytes (the last may be shorter); |segment_size| 0 means one
 * datagram.  ECN codepoint |ecn| is set per datagram.  *|gso| says whether
 * GSO may be used; it is cleared when the kernel answers EIO to a GSO send,
 * and the datagrams are then resent with sendmmsg.
 *
 * Returns the number of bytes sent, which is less than |len| when the socket
 * buffer filled up after some datagrams went out (always a whole number of
 * datagrams), or -EAGAIN when nothing could be sent, or another negative
 * errno (-EMSGSIZE, -ENETUNREACH, ...).
 */
long qf_udp_send(qf_udp_fd fd, const qf_udp_sockaddr *dst, qf_socklen_t dstlen,
                 const unsigned char *data, size_t len, size_t segment_size,
                 int ecn, int *gso);

/*
 * qf_udp_send_batch is qf_udp_send for |n| packets of sizes |sizes| laid out
 * back to back in |data|.  Each maximal run of equal sizes (plus one shorter
 * packet ending it) goes out as one GSO send.  Returns as qf_udp_send.
 */
long qf_udp_send_batch(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                       qf_socklen_t dstlen, const unsigned char *data,
                       const size_t *sizes, size_t n, int ecn, int *gso);

/*
 * qf_udp_addr_format writes the numeric host of |addr| to |host| (at least
 * QF_UDP_HOSTLEN bytes; "addr%ifname" for a scoped IPv6 address, as Python's
 * socket module does) and its port, flowinfo and scope id.  Returns the
 * family, or -EAFNOSUPPORT.
 */
int qf_udp_addr_format(const qf_udp_sockaddr *addr, char *host, int *port,
                       unsigned int *flowinfo, unsigned int *scope_id);

/*
 * qf_udp_addr_parse fills |out| from a numeric |host| and |port| for a
 * socket of |family|; an IPv4 host for an AF_INET6 socket becomes an
 * IPv4-mapped address.  Returns the length of |out|, or -EINVAL when |host|
 * is not numeric, or -EAFNOSUPPORT (IPv6 host for an AF_INET socket).
 */
int qf_udp_addr_parse(int family, const char *host, int port,
                      unsigned int flowinfo, unsigned int scope_id,
                      qf_udp_sockaddr *out);

#endif /* QF_UDP_H */
