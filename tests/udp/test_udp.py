"""quicfast._udp over loopback: plain, GSO, GRO, ECN, fallback, addresses.

Every test is bounded (select with a timeout) and uses only 127.0.0.1/::1.
"""

import os
import select
import socket
import subprocess
import sys
import textwrap

import pytest

_udp = pytest.importorskip("quicfast._udp")
UdpSocketState = _udp.UdpSocketState

ECT0, ECT1, CE = 2, 1, 3
HAS_V6 = socket.has_ipv6


def _v6_loopback_works():
    if not HAS_V6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_v6 = pytest.mark.skipif(not _v6_loopback_works(), reason="no IPv6 loopback")
FAMILIES = [
    pytest.param(socket.AF_INET, "127.0.0.1", id="v4"),
    pytest.param(socket.AF_INET6, "::1", id="v6", marks=needs_v6),
]


def make_state(family=socket.AF_INET, host="127.0.0.1", **kwargs):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return UdpSocketState(sock, **kwargs)


@pytest.fixture
def states():
    made = []

    def factory(*args, **kwargs):
        st = make_state(*args, **kwargs)
        made.append(st)
        return st

    yield factory
    for st in made:
        st.close()


def receive(state, expected, timeout=2.0, max_rounds=1000):
    """Collect ``expected`` datagrams as (bytes, addr, ecn); also count messages."""
    got, messages = [], 0
    for _ in range(max_rounds):
        if len(got) >= expected:
            break
        n = state.recv_batch()
        if n == 0:
            ready, _, _ = select.select([state.sock], [], [], timeout)
            if not ready:
                break
            continue
        messages += state.messages
        for i in range(n):
            data, addr, ecn = state.datagram(i)
            got.append((bytes(data), addr, ecn))
    return got, messages


def segments(count, size, last=None):
    parts = [bytes([i % 256]) * size for i in range(count)]
    if last is not None:
        parts[-1] = bytes([(count - 1) % 256]) * last
    return parts


def require_gso(st):
    if not st.gso_supported:
        pytest.skip("kernel lacks UDP_SEGMENT (GSO)")


def require_gro(st):
    if not st.gro_supported:
        pytest.skip("kernel lacks UDP_GRO")


@pytest.mark.parametrize("family,host", FAMILIES)
def test_basic_send_recv(states, family, host):
    a, b = states(family, host), states(family, host)
    assert a.send(b"hello", b.sock.getsockname()) == 5
    got, _ = receive(b, 1)
    assert got == [(b"hello", a.sock.getsockname(), 0)]
    assert b.local_ip(0) == host


def test_recv_batch_empty_returns_zero(states):
    st = states()
    assert st.recv_batch() == 0
    assert st.count == 0
    with pytest.raises(IndexError):
        st.datagram(0)


@pytest.mark.parametrize("gro", [True, False], ids=["gro", "nogro"])
@pytest.mark.parametrize("family,host", FAMILIES)
def test_gso_ten_segments(states, family, host, gro):
    a, b = states(family, host), states(family, host, gro=gro)
    require_gso(a)
    parts = segments(10, 1200)
    assert a.send(b"".join(parts), b.sock.getsockname(), segment_size=1200) == 12000
    got, _ = receive(b, 10)
    assert [d for d, _, _ in got] == parts
    assert {addr for _, addr, _ in got} == {a.sock.getsockname()}


@pytest.mark.parametrize("family,host", FAMILIES)
def test_gro_coalescing_is_split(states, family, host):
    a, b = states(family, host), states(family, host)
    require_gso(a)
    require_gro(b)
    parts = segments(10, 1200, last=333)
    a.send(b"".join(parts), b.sock.getsockname(), segment_size=1200)
    got, messages = receive(b, 10)
    assert [d for d, _, _ in got] == parts
    # Loopback hands the GSO super-packet to a GRO socket whole.
    assert messages < 10
    # Datagrams cut from one message share one address tuple object.
    assert all(addr is got[0][1] for _, addr, _ in got)


@pytest.mark.parametrize(
    "kwargs", [{}, {"gro": False}, {"force_fallback": True}], ids=["gso+gro", "gso", "fallback"]
)
def test_odd_sized_last_segment(states, kwargs):
    a, b = states(**kwargs), states(**kwargs)
    parts = segments(7, 1000, last=17)
    assert a.send(b"".join(parts), b.sock.getsockname(), segment_size=1000) == 6017
    got, _ = receive(b, 7)
    assert [d for d, _, _ in got] == parts


def test_more_than_one_gso_send(states):
    a, b = states(), states()
    # 150 x 1200 bytes exceeds both 64 segments and 64 KiB per GSO send.
    parts = segments(150, 1200, last=5)
    assert a.send(b"".join(parts), b.sock.getsockname(), segment_size=1200) == 149 * 1200 + 5
    got, _ = receive(b, 150)
    assert [d for d, _, _ in got] == parts


@pytest.mark.parametrize("odd", [700, 1300], ids=["smaller", "larger"])
@pytest.mark.parametrize("force_fallback", [False, True], ids=["gso", "fallback"])
def test_send_batch_odd_packet_in_middle(states, odd, force_fallback):
    a, b = states(force_fallback=force_fallback), states(force_fallback=force_fallback)
    sizes = [1200] * 5 + [odd] + [1200] * 4
    parts = [bytes([i]) * s for i, s in enumerate(sizes)]
    assert a.send_batch(b"".join(parts), b.sock.getsockname(), sizes) == sum(sizes)
    got, messages = receive(b, len(sizes))
    assert [d for d, _, _ in got] == parts
    if a.gso_supported and b.gro_supported:
        # Runs, not packets: 5x1200+700 | 4x1200, or 5x1200 | 1300+1200 | 3x1200.
        assert messages == (2 if odd < 1200 else 3)


def test_send_batch_validates(states):
    a, b = states(), states()
    with pytest.raises(ValueError):
        a.send_batch(b"x" * 10, b.sock.getsockname(), [5, 6])
    with pytest.raises(ValueError):
        a.send(b"x", b.sock.getsockname(), ecn=4)


@pytest.mark.parametrize("ecn", [ECT0, ECT1, CE])
@pytest.mark.parametrize("family,host", FAMILIES)
def test_ecn_roundtrip(states, family, host, ecn):
    a, b = states(family, host), states(family, host)
    a.send(b"one", b.sock.getsockname(), ecn=ecn)
    a.send(b"x" * 3000, b.sock.getsockname(), segment_size=1000, ecn=ecn)
    got, _ = receive(b, 4)
    assert [e for _, _, e in got] == [ecn] * 4


@pytest.mark.parametrize("family,host", FAMILIES)
def test_ecn_not_ect_from_plain_socket(states, family, host):
    b = states(family, host)
    with socket.socket(family, socket.SOCK_DGRAM) as plain:
        plain.sendto(b"p", b.sock.getsockname())
        got, _ = receive(b, 1)
    assert got[0][2] == 0


def test_forced_fallback(states):
    a, b = states(force_fallback=True), states(force_fallback=True)
    assert not a.gso_supported and not a.gro_supported and a.max_gso_segments == 1
    parts = segments(10, 1200)
    assert a.send(b"".join(parts), b.sock.getsockname(), segment_size=1200, ecn=ECT0) == 12000
    got, messages = receive(b, 10)
    assert [d for d, _, _ in got] == parts
    assert [e for _, _, e in got] == [ECT0] * 10
    assert messages == 10


def test_env_disables_offloads(states, monkeypatch):
    monkeypatch.setenv("QUICFAST_NO_GSO", "1")
    monkeypatch.setenv("QUICFAST_NO_GRO", "1")
    st = states()
    assert not st.gso_supported and not st.gro_supported


def test_small_slots_disable_gro(states):
    st = states(max_batch=8, buffer_size=8 * 2048)
    assert not st.gro_supported


def test_buffer_sizes_raised(states):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        default_rcv = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        default_snd = plain.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    st = states(buffer_size=4 << 20)
    assert st.rcvbuf == st.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert st.sndbuf == st.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert st.rcvbuf > default_rcv and st.sndbuf > default_snd
    if st.warning is None:
        assert st.rcvbuf >= 4 << 20 and st.sndbuf >= 4 << 20
    else:
        assert "sysctl" in st.warning


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sysctl limits")
def test_buffer_warning_when_limit_too_low(tmp_path):
    rmem_max = int(open("/proc/sys/net/core/rmem_max").read())
    want = rmem_max * 4
    script = textwrap.dedent(f"""
        import os, socket, sys
        from quicfast._udp import UdpSocketState  # import while the stdlib is still readable
        if os.geteuid() == 0:
            try:
                os.setgid(65534); os.setuid(65534)  # lose CAP_NET_ADMIN (SO_RCVBUFFORCE)
            except OSError:
                sys.exit(3)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        st = UdpSocketState(s, buffer_size={want})
        print(st.warning)
    """)
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.path.abspath(src)}, cwd=tmp_path,
    )
    if proc.returncode == 3 or "Permission denied" in proc.stderr:
        pytest.skip("cannot drop privileges to test the unprivileged path")
    assert proc.returncode == 0, proc.stderr
    assert "sysctl -w net.core.rmem_max=" in proc.stdout


@pytest.mark.parametrize("family,host", FAMILIES)
def test_addresses_and_tuple_cache(states, family, host):
    a, c, b = states(family, host), states(family, host), states(family, host)
    a.send(b"a1", b.sock.getsockname())
    a.send(b"a2", b.sock.getsockname())
    c.send(b"c1", b.sock.getsockname())
    got, _ = receive(b, 3)
    by = {d: addr for d, addr, _ in got}
    assert by[b"a1"] == a.sock.getsockname() and by[b"c1"] == c.sock.getsockname()
    assert len(by[b"a1"]) == (2 if family == socket.AF_INET else 4)
    assert by[b"a1"] is by[b"a2"]


def test_buffer_offset_length(states):
    a, b = states(), states()
    a.send(b"abc" * 500, b.sock.getsockname(), segment_size=700)
    got, _ = receive(b, 3)
    buf = b.buffer
    assert not buf.readonly
    for i in range(b.count):
        assert bytes(buf[b.offset(i):b.offset(i) + b.length(i)]) == got[i][0]
    mv = b.datagram(0)[0]
    mv[0] = ord("z")  # in-place decryption writes here
    assert buf[b.offset(0)] == ord("z")


@needs_v6
def test_dual_stack_receives_from_ipv4(states):
    b = states(socket.AF_INET6, "::")
    if not b.dual_stack:
        pytest.skip("host forces IPV6_V6ONLY")
    port = b.sock.getsockname()[1]
    a = states(socket.AF_INET, "127.0.0.1")
    a.send(b"v4", ("127.0.0.1", port), ecn=ECT0)
    got, _ = receive(b, 1)
    data, addr, ecn = got[0]
    assert data == b"v4" and ecn == ECT0
    # What socket.recvfrom reports on the same kind of socket.
    assert addr == ("::ffff:127.0.0.1", a.sock.getsockname()[1], 0, 0)
    # Replies to either spelling of the address reach the IPv4 peer.
    b.send(b"r1", addr, ecn=ECT0)
    b.send(b"r2", ("127.0.0.1", a.sock.getsockname()[1]))
    back, _ = receive(a, 2)
    assert [(d, ad, e) for d, ad, e in back] == [
        (b"r1", ("127.0.0.1", port), ECT0),
        (b"r2", ("127.0.0.1", port), 0),
    ]


@needs_v6
def test_dual_stack_address_matches_python(states):
    b = states(socket.AF_INET6, "::")
    ref = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    ref.bind(("::", 0))
    with ref, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
        a.bind(("127.0.0.1", 0))
        a.sendto(b"1", ("127.0.0.1", ref.getsockname()[1]))
        a.sendto(b"1", ("127.0.0.1", b.sock.getsockname()[1]))
        ref.settimeout(2)
        _, expected = ref.recvfrom(100)
        got, _ = receive(b, 1)
    assert got[0][1] == expected


def test_errors(states):
    a = states()
    with pytest.raises(OSError):
        a.send(b"x", ("::1", 9))  # IPv6 destination on an IPv4 socket
    with pytest.raises(OSError):
        a.send(b"x" * 70000, ("127.0.0.1", 9))  # EMSGSIZE
    with pytest.raises(OverflowError):
        a.send(b"x", ("127.0.0.1", 70000))


def test_hostname_destination(states):
    a, b = states(), states()
    a.send(b"named", ("localhost", b.sock.getsockname()[1]))
    got, _ = receive(b, 1)
    assert got[0][0] == b"named"


def test_close(states):
    st = states()
    sock = st.sock
    view = st.buffer
    st.close()
    st.close()
    assert sock.fileno() == -1
    assert len(view) > 0  # the pool outlives close() while exported
    with pytest.raises(OSError):
        st.recv_batch()
    with pytest.raises(OSError):
        st.send(b"x", ("127.0.0.1", 9))


def test_oversized_datagram_dropped(states):
    a, b = states(), states(max_batch=4, buffer_size=4 * 1024)
    a.send(b"x" * 2000, b.sock.getsockname())
    a.send(b"small", b.sock.getsockname())
    got, _ = receive(b, 1)
    assert [d for d, _, _ in got] == [b"small"]
