/*
 * udp.c -- batched UDP socket I/O for quicfast; see udp.h for the contract.
 *
 * Linux: recvmmsg + UDP_GRO, sendmsg + UDP_SEGMENT, sendmmsg fallback, ECN
 * and pktinfo through cmsgs.  Other POSIX systems: recvmsg/sendmsg loops with
 * the same cmsgs where the platform has them.  Windows: recvfrom/sendto loops
 * without ECN.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* macOS only declares IPV6_RECVPKTINFO and IPV6_TCLASS under RFC 3542. */
#define __APPLE_USE_RFC_3542 1
#include "udp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifdef _MSC_VER
#pragma comment(lib, "ws2_32.lib")
#endif
#ifndef EAGAIN
#define EAGAIN 11
#endif
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/ip.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

#ifdef __linux__
#include <netinet/udp.h>
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef IP_PMTUDISC_PROBE
#define IP_PMTUDISC_PROBE 3
#endif
#ifndef IPV6_PMTUDISC_PROBE
#define IPV6_PMTUDISC_PROBE 3
#endif
#ifndef QF_UDP_NO_MMSG /* build switch to exercise the portable loops on Linux */
#define QF_HAVE_MMSG 1
#endif
/* Linux takes an int in an IP_TOS cmsg; the BSDs and macOS want one byte. */
typedef int qf_tos_t;
#else
typedef unsigned char qf_tos_t;
#endif

#if defined(IPV6_RECVPKTINFO) && !defined(IPV6_PKTINFO)
#define IPV6_PKTINFO IPV6_RECVPKTINFO
#endif

/* Per-message control buffer: UDP_GRO + TOS/TCLASS + one pktinfo fit. */
#define QF_CMSG_LEN 128
typedef union qf_cmsgbuf {
#ifndef _WIN32
    struct cmsghdr align;
#endif
    unsigned char buf[QF_CMSG_LEN];
} qf_cmsgbuf;

static int qf_errno(void)
{
#ifdef _WIN32
    int e = WSAGetLastError();
    if (e == WSAEWOULDBLOCK)
        return -EAGAIN;
    return -e;
#else
    int e = errno;
    if (e == EWOULDBLOCK)
        e = EAGAIN;
    return -e;
#endif
}

static int setopt_int(qf_udp_fd fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, (const char *)&value, sizeof(value));
}

static int getopt_int(qf_udp_fd fd, int level, int name)
{
    int value = 0;
    qf_socklen_t len = sizeof(value);
    if (getsockopt(fd, level, name, (char *)&value, &len) != 0)
        return -1;
    return value;
}

/* Raise one socket buffer towards |want|; never lowers it. */
static int raise_buffer(qf_udp_fd fd, int name, int force_name, int want)
{
    int have = getopt_int(fd, SOL_SOCKET, name);
    if (have >= want)
        return have;
    (void)force_name;
#ifdef __linux__
    /* The FORCE variants ignore net.core.[rw]mem_max but need CAP_NET_ADMIN. */
    if (setopt_int(fd, SOL_SOCKET, force_name, want) == 0)
        return getopt_int(fd, SOL_SOCKET, name);
#endif
    /* Where the kernel rejects rather than clamps (macOS), halve until accepted. */
    for (int v = want; v > have && v > 0; v /= 2) {
        if (setopt_int(fd, SOL_SOCKET, name, v) == 0)
            break;
    }
    return getopt_int(fd, SOL_SOCKET, name);
}

int qf_udp_configure(qf_udp_fd fd, size_t bufsize, int want_gso, int want_gro,
                     qf_udp_info *info)
{
    qf_udp_sockaddr local;
    qf_socklen_t len = sizeof(local);
    int want = bufsize > 0x3fffffff ? 0x3fffffff : (int)bufsize;

    memset(info, 0, sizeof(*info));
    memset(&local, 0, sizeof(local));
    if (getsockname(fd, &local.sa, &len) != 0)
        return qf_errno();
    info->family = local.sa.sa_family;
    if (info->family != AF_INET && info->family != AF_INET6)
        return -EAFNOSUPPORT;

#ifdef _WIN32
    {
        u_long on = 1;
        if (ioctlsocket(fd, FIONBIO, &on) != 0)
            return qf_errno();
    }
#else
    {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return qf_errno();
    }
#endif

#ifdef __linux__
    info->rcvbuf = raise_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, want);
    info->sndbuf = raise_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, want);
#else
    info->rcvbuf = raise_buffer(fd, SO_RCVBUF, 0, want);
    info->sndbuf = raise_buffer(fd, SO_SNDBUF, 0, want);
#endif

    if (info->family == AF_INET6) {
        /* Only an unbound or "::"-bound socket can serve both families, and
         * IPV6_V6ONLY can no longer change once a port is bound on Linux. */
        if (IN6_IS_ADDR_UNSPECIFIED(&local.in6.sin6_addr))
            (void)setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
        info->dual_stack = getopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 0;
    }

    /* RFC 9000 section 14: QUIC datagrams must not be fragmented.  PROBE sets
     * DF without letting cached ICMP PMTU values shrink our packets. */
#if defined(__linux__)
    (void)setopt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    if (info->family == AF_INET6)
        (void)setopt_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE);
#elif defined(IP_DONTFRAG)
    (void)setopt_int(fd, IPPROTO_IP, IP_DONTFRAG, 1);
#elif defined(IP_DONTFRAGMENT)
    (void)setopt_int(fd, IPPROTO_IP, IP_DONTFRAGMENT, 1);
#endif
#ifdef IPV6_DONTFRAG
    if (info->family == AF_INET6)
        (void)setopt_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, 1);
#endif

    /* IPv4 options are set on AF_INET6 sockets too: they apply to the
     * IPv4-mapped traffic of a dual-stack socket (and fail harmlessly elsewhere). */
#ifdef IP_RECVTOS
    (void)setopt_int(fd, IPPROTO_IP, IP_RECVTOS, 1);
#endif
#if defined(IP_PKTINFO) && !defined(_WIN32)
    (void)setopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
#elif defined(IP_RECVDSTADDR)
    (void)setopt_int(fd, IPPROTO_IP, IP_RECVDSTADDR, 1);
#endif
    if (info->family == AF_INET6) {
#ifdef IPV6_RECVTCLASS
        (void)setopt_int(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
#endif
#ifdef IPV6_RECVPKTINFO
        (void)setopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
#endif
    }

    info->max_gso_segments = 1;
#ifdef __linux__
    /* 0 is the "no default segment size" value, so the probe changes nothing. */
    if (want_gso && setopt_int(fd, SOL_UDP, UDP_SEGMENT, 0) == 0) {
        info->gso = 1;
        info->max_gso_segments = QF_UDP_MAX_GSO_SEGMENTS;
    }
    if (want_gro && setopt_int(fd, SOL_UDP, UDP_GRO, 1) == 0)
        info->gro = 1;
    else if (!want_gro)
        (void)setopt_int(fd, SOL_UDP, UDP_GRO, 0);
#else
    (void)want_gso;
    (void)want_gro;
#endif
    return 0;
}

/* ------------------------------------------------------------------ receive */

#ifndef _WIN32
typedef struct qf_rx_sys {
#ifdef QF_HAVE_MMSG
    struct mmsghdr *msgs;
#else
    struct msghdr *msgs;
#endif
    struct iovec *iov;
    qf_cmsgbuf *cmsg;
} qf_rx_sys;
#endif

int qf_udp_rx_init(qf_udp_rx *rx, size_t batch, size_t slot_size)
{
    memset(rx, 0, sizeof(*rx));
    rx->batch = batch;
    rx->slot_size = slot_size;
    rx->buf = malloc(batch * slot_size);
    rx->meta = calloc(batch, sizeof(qf_udp_meta));
#ifndef _WIN32
    qf_rx_sys *s = calloc(1, sizeof(*s));
    rx->sys = s;
    if (s) {
        s->msgs = calloc(batch, sizeof(*s->msgs));
        s->iov = calloc(batch, sizeof(*s->iov));
        s->cmsg = calloc(batch, sizeof(*s->cmsg));
    }
    if (!s || !s->msgs || !s->iov || !s->cmsg)
        goto nomem;
    for (size_t i = 0; i < batch; i++) {
        s->iov[i].iov_base = rx->buf + i * slot_size;
        s->iov[i].iov_len = slot_size;
    }
#endif
    if (!rx->buf || !rx->meta)
        goto nomem;
    return 0;
nomem:
    qf_udp_rx_free(rx);
    return -ENOMEM;
}

void qf_udp_rx_free(qf_udp_rx *rx)
{
#ifndef _WIN32
    qf_rx_sys *s = rx->sys;
    if (s) {
        free(s->msgs);
        free(s->iov);
        free(s->cmsg);
        free(s);
    }
#endif
    free(rx->buf);
    free(rx->meta);
    memset(rx, 0, sizeof(*rx));
}

#ifndef _WIN32
static void parse_cmsgs(struct msghdr *h, qf_udp_meta *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        const unsigned char *d = CMSG_DATA(c);
        size_t dlen = c->cmsg_len - CMSG_LEN(0);
        if (c->cmsg_level == IPPROTO_IP) {
#ifdef IP_RECVTOS
            if (c->cmsg_type == IP_TOS || c->cmsg_type == IP_RECVTOS) {
#else
            if (c->cmsg_type == IP_TOS) {
#endif
                /* One byte on Linux and macOS, an int on some BSDs. */
                int tos = d[0];
                if (dlen >= sizeof(int))
                    memcpy(&tos, d, sizeof(int));
                m->ecn = tos & 3;
            }
#if defined(IP_PKTINFO)
            else if (c->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, d, sizeof(pi));
                m->dst.in4.sin_family = AF_INET;
                m->dst.in4.sin_addr = pi.ipi_addr;
                m->flags |= QF_UDP_META_DST;
            }
#elif defined(IP_RECVDSTADDR)
            else if (c->cmsg_type == IP_RECVDSTADDR) {
                m->dst.in4.sin_family = AF_INET;
                memcpy(&m->dst.in4.sin_addr, d, sizeof(struct in_addr));
                m->flags |= QF_UDP_META_DST;
            }
#endif
        } else if (c->cmsg_level == IPPROTO_IPV6) {
            if (c->cmsg_type == IPV6_TCLASS) {
                int tclass;
                memcpy(&tclass, d, sizeof(int));
                m->ecn = tclass & 3;
            }
#ifdef IPV6_PKTINFO
            else if (c->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, d, sizeof(pi));
                m->dst.in6.sin6_family = AF_INET6;
                m->dst.in6.sin6_addr = pi.ipi6_addr;
                if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                    m->dst.in6.sin6_scope_id = pi.ipi6_ifindex;
                m->flags |= QF_UDP_META_DST;
            }
#endif
        }
#ifdef __linux__
        else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int seg;
            memcpy(&seg, d, sizeof(int));
            if (seg > 0)
                m->stride = (size_t)seg;
        }
#endif
    }
}
#endif

int qf_udp_recv(qf_udp_fd fd, qf_udp_rx *rx)
{
#ifdef _WIN32
    int n = 0;
    for (; n < (int)rx->batch; n++) {
        qf_udp_meta *m = &rx->meta[n];
        qf_socklen_t alen = sizeof(m->src);
        int r = recvfrom(fd, (char *)rx->buf + n * rx->slot_size,
                         (int)rx->slot_size, 0, &m->src.sa, &alen);
        if (r < 0) {
            int e = qf_errno();
            if (n > 0)
                break;
            /* A datagram larger than the slot: report it truncated. */
            if (e == -WSAEMSGSIZE) {
                r = (int)rx->slot_size;
                m->flags = QF_UDP_META_TRUNC;
            } else {
                return e;
            }
        } else {
            m->flags = 0;
        }
        m->len = m->stride = (size_t)r;
        m->ecn = 0;
        m->srclen = alen;
    }
    return n;
#else
    qf_rx_sys *s = rx->sys;
    int n;
    for (size_t i = 0; i < rx->batch; i++) {
#ifdef QF_HAVE_MMSG
        struct msghdr *h = &s->msgs[i].msg_hdr;
#else
        struct msghdr *h = &s->msgs[i];
#endif
        h->msg_name = &rx->meta[i].src;
        h->msg_namelen = sizeof(qf_udp_sockaddr);
        h->msg_iov = &s->iov[i];
        h->msg_iovlen = 1;
        h->msg_control = s->cmsg[i].buf;
        h->msg_controllen = QF_CMSG_LEN;
        h->msg_flags = 0;
    }
#ifdef QF_HAVE_MMSG
    do {
        n = recvmmsg(fd, s->msgs, (unsigned int)rx->batch, 0, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return qf_errno();
#else
    for (n = 0; n < (int)rx->batch; n++) {
        ssize_t r;
        do {
            r = recvmsg(fd, &s->msgs[n], 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (n > 0)
                break;
            return qf_errno();
        }
        rx->meta[n].len = (size_t)r;
    }
#endif
    for (int i = 0; i < n; i++) {
        qf_udp_meta *m = &rx->meta[i];
#ifdef QF_HAVE_MMSG
        struct msghdr *h = &s->msgs[i].msg_hdr;
        m->len = s->msgs[i].msg_len;
#else
        struct msghdr *h = &s->msgs[i];
#endif
        m->srclen = h->msg_namelen;
        m->stride = m->len;
        m->ecn = 0;
        m->flags = (h->msg_flags & MSG_TRUNC) ? QF_UDP_META_TRUNC : 0;
        memset(&m->dst, 0, sizeof(m->dst));
        parse_cmsgs(h, m);
    }
    return n;
#endif
}

/* --------------------------------------------------------------------- send */

/* Packet |i| of a send: sizes[i] when given, else |seg| (the last may be shorter). */
typedef struct qf_pkts {
    const size_t *sizes;
    size_t n;
    size_t seg;
    size_t total;
} qf_pkts;

static size_t pkt_size(const qf_pkts *p, size_t i)
{
    if (p->sizes)
        return p->sizes[i];
    size_t rest = p->total - i * p->seg;
    return rest < p->seg ? rest : p->seg;
}

static int dst_is_v4(const qf_udp_sockaddr *dst)
{
    if (dst->sa.sa_family == AF_INET)
        return 1;
    return dst->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr);
}

#ifndef _WIN32
/* Fill |cb| with the UDP_SEGMENT and ECN cmsgs; returns the control length. */
static size_t build_cmsgs(qf_cmsgbuf *cb, const qf_udp_sockaddr *dst,
                          size_t seg, int ecn)
{
    struct msghdr h;
    size_t used = 0;
    struct cmsghdr *c;

    memset(cb, 0, sizeof(*cb));
    memset(&h, 0, sizeof(h));
    h.msg_control = cb->buf;
    h.msg_controllen = QF_CMSG_LEN;
    c = CMSG_FIRSTHDR(&h);
#ifdef __linux__
    if (seg) {
        uint16_t s16 = (uint16_t)seg;
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(s16));
        memcpy(CMSG_DATA(c), &s16, sizeof(s16));
        used += CMSG_SPACE(sizeof(s16));
        c = (struct cmsghdr *)(cb->buf + used);
    }
#else
    (void)seg;
#endif
    if (ecn) {
        /* IPv4-mapped destinations leave through the IPv4 stack, which
         * reads IP_TOS and ignores IPV6_TCLASS. */
        if (dst_is_v4(dst)) {
            qf_tos_t tos = (qf_tos_t)(ecn & 3);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_TOS;
            c->cmsg_len = CMSG_LEN(sizeof(tos));
            memcpy(CMSG_DATA(c), &tos, sizeof(tos));
            used += CMSG_SPACE(sizeof(tos));
        } else {
            int tclass = ecn & 3;
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_TCLASS;
            c->cmsg_len = CMSG_LEN(sizeof(tclass));
            memcpy(CMSG_DATA(c), &tclass, sizeof(tclass));
            used += CMSG_SPACE(sizeof(tclass));
        }
    }
    return used;
}

static void fill_msghdr(struct msghdr *h, struct iovec *iov, qf_cmsgbuf *cb,
                        size_t cmsglen, const qf_udp_sockaddr *dst,
                        qf_socklen_t dstlen)
{
    memset(h, 0, sizeof(*h));
    h->msg_name = (void *)dst;
    h->msg_namelen = dstlen;
    h->msg_iov = iov;
    h->msg_iovlen = 1;
    h->msg_control = cmsglen ? cb->buf : NULL;
    h->msg_controllen = cmsglen;
}
#endif

/* Send packets [first, first + count) of |p| one datagram each. */
static long send_each(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                      qf_socklen_t dstlen, const unsigned char *data,
                      const qf_pkts *p, size_t first, size_t count, int ecn)
{
    long sent = 0;
    size_t i = 0;
#ifdef _WIN32
    (void)ecn;
    for (; i < count; i++) {
        size_t sz = pkt_size(p, first + i);
        if (sendto(fd, (const char *)data + sent, (int)sz, 0, &dst->sa, dstlen) < 0)
            return sent ? sent : qf_errno();
        sent += (long)sz;
    }
    return sent;
#else
    qf_cmsgbuf cb;
    size_t cmsglen = build_cmsgs(&cb, dst, 0, ecn);
#ifdef QF_HAVE_MMSG
    struct mmsghdr msgs[QF_UDP_MAX_GSO_SEGMENTS];
    struct iovec iov[QF_UDP_MAX_GSO_SEGMENTS];
    while (i < count) {
        size_t m = count - i, off = 0;
        int r;
        if (m > QF_UDP_MAX_GSO_SEGMENTS)
            m = QF_UDP_MAX_GSO_SEGMENTS;
        for (size_t k = 0; k < m; k++) {
            iov[k].iov_base = (void *)(data + sent + off);
            iov[k].iov_len = pkt_size(p, first + i + k);
            off += iov[k].iov_len;
            fill_msghdr(&msgs[k].msg_hdr, &iov[k], &cb, cmsglen, dst, dstlen);
        }
        do {
            r = sendmmsg(fd, msgs, (unsigned int)m, 0);
        } while (r < 0 && errno == EINTR);
        if (r <= 0)
            return sent ? sent : (r < 0 ? qf_errno() : -EAGAIN);
        for (int k = 0; k < r; k++)
            sent += (long)iov[k].iov_len;
        i += (size_t)r;
    }
#else
    for (; i < count; i++) {
        struct msghdr h;
        struct iovec iov;
        ssize_t r;
        iov.iov_base = (void *)(data + sent);
        iov.iov_len = pkt_size(p, first + i);
        fill_msghdr(&h, &iov, &cb, cmsglen, dst, dstlen);
        do {
            r = sendmsg(fd, &h, 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return sent ? sent : qf_errno();
        sent += (long)iov.iov_len;
    }
#endif
    return sent;
#endif
}

#ifdef __linux__
/* One sendmsg carrying |len| bytes cut by the kernel into |seg|-byte datagrams. */
static long send_gso(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                     qf_socklen_t dstlen, const unsigned char *data, size_t len,
                     size_t seg, int ecn)
{
    qf_cmsgbuf cb;
    struct msghdr h;
    struct iovec iov;
    ssize_t r;
    size_t cmsglen = build_cmsgs(&cb, dst, len > seg ? seg : 0, ecn);
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    fill_msghdr(&h, &iov, &cb, cmsglen, dst, dstlen);
    do {
        r = sendmsg(fd, &h, 0);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? qf_errno() : (long)r;
}
#endif

/*
 * Walk |p| in runs of equal size (a shorter packet may end a run), each cut
 * into GSO chunks of at most QF_UDP_MAX_GSO_SEGMENTS segments and
 * QF_UDP_MAX_PAYLOAD bytes.  Without GSO, everything goes to send_each.
 */
static long send_pkts(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                      qf_socklen_t dstlen, const unsigned char *data,
                      const qf_pkts *p, int ecn, int *gso)
{
    long sent = 0;
    size_t i = 0;
#ifdef __linux__
    while (*gso && i < p->n) {
        size_t seg = pkt_size(p, i), cnt = 1, bytes = seg;
        size_t limit = QF_UDP_MAX_PAYLOAD / (seg ? seg : 1);
        long r;
        if (limit > QF_UDP_MAX_GSO_SEGMENTS)
            limit = QF_UDP_MAX_GSO_SEGMENTS;
        while (cnt < limit && i + cnt < p->n) {
            size_t next = pkt_size(p, i + cnt);
            if (next > seg || bytes + next > QF_UDP_MAX_PAYLOAD)
                break;
            bytes += next;
            cnt++;
            if (next < seg)
                break;
        }
        r = send_gso(fd, dst, dstlen, data + sent, bytes, seg, ecn);
        if (r == -EIO && cnt > 1) {
            /* The route's device cannot checksum-offload segments: stop
             * using GSO on this socket and resend with sendmmsg. */
            *gso = 0;
            break;
        }
        if (r < 0)
            return sent ? sent : r;
        sent += (long)bytes;
        i += cnt;
    }
#else
    (void)gso;
#endif
    if (i < p->n) {
        long r = send_each(fd, dst, dstlen, data + sent, p, i, p->n - i, ecn);
        if (r < 0)
            return sent ? sent : r;
        sent += r;
    }
    return sent;
}

long qf_udp_send(qf_udp_fd fd, const qf_udp_sockaddr *dst, qf_socklen_t dstlen,
                 const unsigned char *data, size_t len, size_t segment_size,
                 int ecn, int *gso)
{
    qf_pkts p;
    if (segment_size == 0 || segment_size >= len)
        segment_size = len;
    p.sizes = NULL;
    p.seg = segment_size;
    p.total = len;
    p.n = segment_size ? (len + segment_size - 1) / segment_size : 1;
    return send_pkts(fd, dst, dstlen, data, &p, ecn, gso);
}

long qf_udp_send_batch(qf_udp_fd fd, const qf_udp_sockaddr *dst,
                       qf_socklen_t dstlen, const unsigned char *data,
                       const size_t *sizes, size_t n, int ecn, int *gso)
{
    qf_pkts p;
    p.sizes = sizes;
    p.n = n;
    p.seg = 0;
    p.total = 0;
    return send_pkts(fd, dst, dstlen, data, &p, ecn, gso);
}

/* ---------------------------------------------------------------- addresses */

int qf_udp_addr_format(const qf_udp_sockaddr *addr, char *host, int *port,
                       unsigned int *flowinfo, unsigned int *scope_id)
{
    if (addr->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &addr->in4.sin_addr, host, QF_UDP_HOSTLEN);
        *port = ntohs(addr->in4.sin_port);
        *flowinfo = *scope_id = 0;
        return AF_INET;
    }
    if (addr->sa.sa_family == AF_INET6) {
        *port = ntohs(addr->in6.sin6_port);
        *flowinfo = ntohl(addr->in6.sin6_flowinfo);
        *scope_id = addr->in6.sin6_scope_id;
        /* Python formats with getnameinfo(NI_NUMERICHOST), which appends
         * "%ifname" to scoped addresses; do the same only when needed. */
        if (*scope_id == 0 ||
            getnameinfo(&addr->sa, sizeof(addr->in6), host, QF_UDP_HOSTLEN,
                        NULL, 0, NI_NUMERICHOST) != 0)
            inet_ntop(AF_INET6, &addr->in6.sin6_addr, host, QF_UDP_HOSTLEN);
        return AF_INET6;
    }
    return -EAFNOSUPPORT;
}

int qf_udp_addr_parse(int family, const char *host, int port,
                      unsigned int flowinfo, unsigned int scope_id,
                      qf_udp_sockaddr *out)
{
    struct in_addr a4;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &a4) == 1) {
        if (family == AF_INET) {
            out->in4.sin_family = AF_INET;
            out->in4.sin_port = htons((uint16_t)port);
            out->in4.sin_addr = a4;
            return (int)sizeof(out->in4);
        }
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)port);
        out->in6.sin6_addr.s6_addr[10] = 0xff;
        out->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out->in6.sin6_addr.s6_addr[12], &a4, 4);
        return (int)sizeof(out->in6);
    }
    if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1) {
        if (family != AF_INET6)
            return -EAFNOSUPPORT;
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)port);
        out->in6.sin6_flowinfo = htonl(flowinfo);
        out->in6.sin6_scope_id = scope_id;
        return (int)sizeof(out->in6);
    }
    return -EINVAL;
}
