"""Varint codec and range-set insert: quicfast vs aioquic (C buffer, Python
RangeSet) vs qh3, side by side in one run. Run: python -m benchmarks.micro.bench_buffer
"""

from benchmarks.stats import best_ns_per_op, report
from quicfast.proto.buffer import Buffer
from quicfast.proto.ranges import RangeSet

N = 1000
VALUES = [37, 15293, 494878333, 151288809941952652] * (N // 4)


def varint_rows():
    rows = {}
    encoded = b"".join(__import__("quicfast.proto.buffer", fromlist=["x"]).encode_varint(v) for v in VALUES)

    def qf_encode():
        buf = Buffer(capacity=8 * N)
        push = buf.push_uint_var
        for v in VALUES:
            push(v)

    def qf_decode():
        buf = Buffer(data=encoded)
        pull = buf.pull_uint_var
        for _ in range(N):
            pull()

    rows["quicfast"] = (best_ns_per_op(qf_encode, N), best_ns_per_op(qf_decode, N))
    try:
        from aioquic._buffer import Buffer as ABuffer

        def aq_encode():
            buf = ABuffer(capacity=8 * N)
            push = buf.push_uint_var
            for v in VALUES:
                push(v)

        def aq_decode():
            buf = ABuffer(data=encoded)
            pull = buf.pull_uint_var
            for _ in range(N):
                pull()

        rows["aioquic"] = (best_ns_per_op(aq_encode, N), best_ns_per_op(aq_decode, N))
    except ImportError:
        pass
    try:
        from qh3._hazmat import Buffer as QBuffer

        def qh_encode():
            buf = QBuffer(capacity=8 * N)
            push = buf.push_uint_var
            for v in VALUES:
                push(v)

        def qh_decode():
            buf = QBuffer(data=encoded)
            pull = buf.pull_uint_var
            for _ in range(N):
                pull()

        rows["qh3"] = (best_ns_per_op(qh_encode, N), best_ns_per_op(qh_decode, N))
    except ImportError:
        pass
    return [("varint encode", {k: v[0] for k, v in rows.items()}),
            ("varint decode", {k: v[1] for k, v in rows.items()})]


def range_rows():
    gaps = [pn for pn in range(2 * N) if pn % 3 != 1]
    impls = {"quicfast": lambda: RangeSet()}
    try:
        from aioquic.quic.rangeset import RangeSet as ARangeSet
        impls["aioquic"] = ARangeSet
    except ImportError:
        pass
    try:
        from qh3._hazmat import RangeSet as QRangeSet
        impls["qh3"] = QRangeSet
    except ImportError:
        pass
    in_order, with_gaps = {}, {}
    for name, make in impls.items():
        def run_in_order(make=make):
            rs = make()
            for pn in range(N):
                rs.add(pn) if name != "quicfast" else rs.add_value(pn)

        def run_gaps(make=make):
            rs = make()
            for pn in gaps:
                rs.add(pn) if name != "quicfast" else rs.add_value(pn)

        in_order[name] = best_ns_per_op(run_in_order, N)
        with_gaps[name] = best_ns_per_op(run_gaps, len(gaps))
    return [("range insert in order", in_order), ("range insert with gaps", with_gaps)]


def main():
    report("varint and range set (lower is better; ratio = peer time / quicfast time)", varint_rows() + range_rows())


if __name__ == "__main__":
    main()
