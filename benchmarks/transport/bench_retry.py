"""Cost of a handshake with and without Retry (address validation): quicfast vs aioquic.

Every measurement is a fresh server process and a fresh client process on 127.0.0.1
(``subprocess``, own session, bounded by timeouts, SIGKILLed if they overstay).  The
client runs K connections (1,000; aioquic 400), N = 50 handshakes in flight, each from
a new UDP socket with a full handshake (no resumption, no token kept), closed after,
exactly as the ``handshakes`` workload of ``benchmarks/e2e/bench_e2e.py`` (whose
``run_handshakes`` it reuses: a slot is held from the dial to "handshake complete", the
close proceeds in the background, the clock stops when every connection is closed).

* ``plain``  the server accepts every Initial.
* ``retry``  the server answers every first Initial with a Retry: quicfast
  ``Config(require_address_validation=lambda addr: True)``, aioquic
  ``serve(..., retry=True)``.  The client keeps no NEW_TOKEN (quicfast's client has no
  ``token_store`` by default; aioquic's ``QuicConfiguration`` starts without a token), so
  every connection pays the extra round trip.

Reported: handshakes/s, CPU ms per handshake on each side (``time.process_time()``;
the client from its first dial to its last close, the server from ready to stopped),
handshake latency p50, and the retry ÷ plain ratios.

Usage::

    PYTHONPATH=src:. python benchmarks/transport/bench_retry.py [--repeat 3] \
        [--only quicfast,aioquic] [--handshakes N] [--inflight 50] [--json-out out.json] [--md-out out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.transport._harness import (  # noqa: E402
    emit, wait_stdin_eof, run_children, pki, versions, git_rev)

ALPN = "quicfast-test"
IMPLS = ("quicfast", "aioquic")
MODES = ("plain", "retry")
DEFAULT_HANDSHAKES = {"quicfast": 1000, "aioquic": 400}


async def server_quicfast(args, paths) -> None:
    import quicfast
    from quicfast.tls import TLSConfig
    tls = TLSConfig()
    tls.load_cert_chain(paths["cert"], paths["key"])
    tls.set_alpn_protocols([ALPN])
    asked = [0]

    def validate(addr):
        asked[0] += 1
        return True

    config = quicfast.Config(require_address_validation=validate if args.mode == "retry" else None)
    transport = await quicfast.Transport.bind("127.0.0.1", 0)
    listener = transport.listen(tls, config)
    accepted = [0]

    async def accept_loop():
        while True:
            await listener.accept()      # the client closes; nothing to do here
            accepted[0] += 1

    cpu0 = time.process_time()
    emit({"port": transport.local_addr[1]})
    acceptor = asyncio.create_task(accept_loop())
    await wait_stdin_eof()
    emit({"server_cpu": time.process_time() - cpu0, "server_accepted": accepted[0],
          "server_validation_asked": asked[0]})
    acceptor.cancel()
    transport.close()


async def server_aioquic(args, paths) -> None:
    from aioquic.asyncio import serve
    from aioquic.quic.configuration import QuicConfiguration
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.load_cert_chain(paths["cert"], paths["key"])
    server = await serve("127.0.0.1", 0, configuration=config, retry=args.mode == "retry")
    port = server._transport.get_extra_info("sockname")[1]
    cpu0 = time.process_time()
    emit({"port": port})
    await wait_stdin_eof()
    emit({"server_cpu": time.process_time() - cpu0})
    server.close()


async def client(args) -> dict:
    from benchmarks.e2e.bench_e2e import run_handshakes
    paths = args.paths
    if args.impl == "quicfast":
        import quicfast
        from quicfast.tls import TLSConfig
        tls = TLSConfig()
        tls.load_verify_locations(cafile=paths["ca"])
        tls.set_alpn_protocols([ALPN])
        tls.session_ticket_store = None       # every handshake a full one
        addr = ("127.0.0.1", args.port)

        async def one(handshake_done):
            conn = await quicfast.dial_addr(addr, tls)
            handshake_done()
            conn.close()
            await conn.wait_closed()
    else:
        from aioquic.asyncio import connect
        from aioquic.quic.configuration import QuicConfiguration

        async def one(handshake_done):
            config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name="localhost")
            config.load_verify_locations(paths["ca"])
            async with connect("127.0.0.1", args.port, configuration=config):
                handshake_done()

    return await run_handshakes(one, args)


def child_main(args) -> None:
    args.paths = json.loads(args.pki)
    if args.role == "server":
        asyncio.run({"quicfast": server_quicfast, "aioquic": server_aioquic}[args.impl](args, args.paths))
    else:
        emit(asyncio.run(asyncio.wait_for(client(args), args.timeout)))
    sys.stdout.flush()
    os._exit(0)


def run_one(impl, mode, args, paths) -> dict:
    count = args.handshakes or DEFAULT_HANDSHAKES[impl]
    common = ["--impl", impl, "--mode", mode, "--count", str(count), "--inflight", str(args.inflight),
              "--pki", json.dumps(paths), "--timeout", str(args.timeout)]
    res = run_children(os.path.abspath(__file__), common, args.timeout, args.quicfast_src)
    if res["count"] != count:
        raise RuntimeError(f"completed {res['count']} of {count}; first failure: {res.get('first_failure')}")
    if impl == "quicfast" and mode == "retry" and res.get("server_validation_asked", 0) < count:
        raise RuntimeError(f"address validation asked only {res.get('server_validation_asked')} times")
    res.update(peer=impl, mode=mode, count=count, inflight=args.inflight, rate=count / res["wall"],
               client_ms=res["client_cpu"] * 1e3 / count, server_ms=res["server_cpu"] * 1e3 / count)
    return res


KEYS = ("rate", "client_ms", "server_ms", "handshake_p50_ms")


def summarize(results):
    out = {}
    for r in results:
        s = out.setdefault((r["peer"], r["mode"]), {"runs": [], "errors": []})
        (s["errors"].append(r["error"]) if "error" in r else s["runs"].append(r))
    for s in out.values():
        for k in KEYS:
            vals = [r[k] for r in s["runs"] if r.get(k) is not None]
            if vals:
                s[k] = (statistics.median(vals), min(vals), max(vals))
    return out


def markdown(summary, impls) -> str:
    def cell(s, k, fmt):
        if k not in s:
            return "-"
        m, lo, hi = s[k]
        return fmt.format(m) + (f" ({fmt.format(lo)}–{fmt.format(hi)})" if len(s["runs"]) > 1 else "")

    lines = ["### Handshakes with and without Retry (median of runs; min–max in brackets)", "",
             "| peer | mode | count | in flight | runs | handshakes/s | client CPU ms/op | server CPU ms/op "
             "| handshake p50 ms |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for impl in impls:
        for mode in MODES:
            s = summary.get((impl, mode))
            if s is None:
                continue
            if not s["runs"]:
                lines.append(f"| {impl} | {mode} | | | 0 | error: {s['errors'][0]} | | | |")
                continue
            r0 = s["runs"][0]
            lines.append(f"| {impl} | {mode} | {r0['count']} | {r0['inflight']} | {len(s['runs'])} | "
                         f"{cell(s, 'rate', '{:,.0f}')} | {cell(s, 'client_ms', '{:.2f}')} | "
                         f"{cell(s, 'server_ms', '{:.2f}')} | {cell(s, 'handshake_p50_ms', '{:.1f}')} |")
    lines += ["", "### Retry ÷ plain (medians)", "",
              "| peer | handshakes/s | client CPU/op | server CPU/op | p50 latency |", "|---|---:|---:|---:|---:|"]
    for impl in impls:
        p, r = summary.get((impl, "plain")), summary.get((impl, "retry"))
        if p and r and "rate" in p and "rate" in r:
            lines.append(f"| {impl} | {r['rate'][0] / p['rate'][0]:.2f}x | {r['client_ms'][0] / p['client_ms'][0]:.2f}x | "
                         f"{r['server_ms'][0] / p['server_ms'][0]:.2f}x | "
                         f"{r['handshake_p50_ms'][0] / p['handshake_p50_ms'][0]:.2f}x |")
    q, a = summary.get(("quicfast", "retry")), summary.get(("aioquic", "retry"))
    if q and a and "rate" in q and "rate" in a:
        lines += ["", "### quicfast ÷ aioquic with Retry", "",
                  "| handshakes/s | CPU per handshake, client + server (aioquic ÷ quicfast) |", "|---:|---:|",
                  f"| {q['rate'][0] / a['rate'][0]:.2f}x | "
                  f"{(a['client_ms'][0] + a['server_ms'][0]) / (q['client_ms'][0] + q['server_ms'][0]):.2f}x |"]
    logged = []
    for (impl, mode), s in sorted(summary.items()):
        for side in ("server", "client"):
            runs = [r for r in s["runs"] if r.get(f"{side}_tracebacks")]
            if runs:
                logged.append(f"* {impl} {mode}, {side}: {sum(r[f'{side}_tracebacks'] for r in runs)} tracebacks "
                              f"in {len(runs)} of {len(s['runs'])} runs, last: `{runs[-1][f'{side}_last_error']}`")
    if logged:
        lines += ["", "Errors logged on stderr during successful runs:", ""] + logged
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(IMPLS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--handshakes", type=int, default=None, help="connections (default 1000; aioquic 400)")
    ap.add_argument("--inflight", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=150.0)
    ap.add_argument("--quicfast-src", default=None,
                    help="quicfast source tree (built in place) the children import; default this checkout's src/")
    ap.add_argument("--json-out")
    ap.add_argument("--md-out")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pki", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    impls = [i for i in args.only.split(",") if i]
    modes = [m for m in args.modes.split(",") if m]
    for n in impls + modes:
        if n not in IMPLS + MODES:
            ap.error(f"unknown peer or mode {n!r}")
    paths = pki()
    results = []
    t_start = time.time()
    for rep in range(args.repeat):
        for impl in impls:
            for mode in modes:
                t0 = time.perf_counter()
                try:
                    r = run_one(impl, mode, args, paths)
                    what = (f"{r['rate']:,.0f}/s client {r['client_ms']:.2f} ms server {r['server_ms']:.2f} ms "
                            f"p50 {r['handshake_p50_ms']:.0f} ms")
                except Exception as exc:
                    r = {"peer": impl, "mode": mode, "error": f"{type(exc).__name__}: {exc}"[:300]}
                    what = r["error"]
                r["rep"] = rep
                results.append(r)
                print(f"[rep {rep + 1}/{args.repeat}] {impl:9s} {mode:6s} {what} ({time.perf_counter() - t0:.1f} s)",
                      file=sys.stderr, flush=True)
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(t_start))}, {os.cpu_count()} CPUs, "
              f"{versions(('aioquic',))}, quicfast {git_rev(args.quicfast_src)}, repeat {args.repeat}, "
              f"total {time.time() - t_start:.0f} s\n")
    md = markdown(summarize(results), impls)
    print(header)
    print(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"header": header, "results": results}, f, indent=2)
    if args.md_out:
        with open(args.md_out, "w") as f:
            f.write(header + "\n" + md)


if __name__ == "__main__":
    main()
