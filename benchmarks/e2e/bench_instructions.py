"""Instructions per request/response stream and per handshake, on each side,
counted by callgrind: quicfast vs qh3 and aioquic, side by side.

`bench_e2e.py` measures the targets in seconds. On the 2-core VM these are
measured on, the speed of the machine itself drifts by up to ±40 % from one
second to the next (a pure-Python loop shows it), so a run cannot tell a 3 %
change in CPU from noise. An instruction count repeats to about 0.5 %: it is
the measure to use when changing a hot path, before and after.

What it is not: a time. It counts user-space instructions only (no kernel, no
cache misses, no instructions-per-cycle), and the side being counted runs
some 50× slower under callgrind, so its peer always has a full window of work
queued: its batches are larger than in a real run, and per-batch costs weigh
less. Ratios here are therefore not the wall-clock ratios of `bench_e2e.py`.

- Server side: the server runs under ``valgrind --tool=callgrind
  --instr-atstart=no``; counting is switched on once it listens and off once
  the client has finished.
- Client side: the client runs under callgrind and counts from its start.
- Either way two runs are counted, of N and N/4 operations, and the
  difference is divided by the 3N/4 extra operations: start-up, the
  handshake of the measured connection and first-use costs drop out.

The workloads and their wire format are bench_e2e's (its ``--child`` mode).
aiopquic is not counted: it runs under another interpreter (Python >= 3.12)
and does its packet work in a thread of its own.

Usage::

    PYTHONPATH=src:. python benchmarks/e2e/bench_instructions.py [--only quicfast,qh3] \
        [--workloads streams,handshakes] [--sides server,client] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BENCH_E2E = os.path.join(HERE, "bench_e2e.py")
sys.path[:0] = [ROOT, os.path.join(ROOT, "src")]

from benchmarks.e2e.bench_e2e import _kill, _read_marked  # noqa: E402

IMPLS = ("quicfast", "qh3", "aioquic")
WORKLOADS = ("streams", "handshakes")
SIDES = ("server", "client")
# Operations per counted run: 10-100 s each under callgrind on the machine these were sized on.
COUNTS = {
    "streams": {"quicfast": 8000, "qh3": 2000, "aioquic": 800},
    "handshakes": {"quicfast": 200, "qh3": 120, "aioquic": 60},
}
INFLIGHT = {"streams": 100, "handshakes": 50}
RUN_TIMEOUT = 600.0


def _child_command(impl: str, workload: str, role: str, count: int, port: int, pki: dict) -> list[str]:
    return [sys.executable, BENCH_E2E, "--child", "--impl", impl, "--workload", workload,
            "--size", "0", "--count", str(count), "--inflight", str(INFLIGHT[workload]),
            "--pki", json.dumps(pki), "--timeout", str(RUN_TIMEOUT), "--role", role,
            "--port", str(port)]


def _callgrind(out_file: str, at_start: bool) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--instr-atstart={'yes' if at_start else 'no'}",
            f"--callgrind-out-file={out_file}"]


def _total_instructions(out_file: str) -> int:
    # The header's "summary:" is written before counting starts (0 with
    # --instr-atstart=no); the "totals:" line at the end is the count.
    with open(out_file) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out_file}")


def _toggle(pid: int, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)


def count_run(impl: str, workload: str, side: str, count: int, pki: dict, tmp: str) -> int:
    """Instructions the `side` process executed for one run of `count` operations
    (the server's from when it listens; the client's in all)."""
    out_file = os.path.join(tmp, f"{impl}.{workload}.{side}.{count}.out")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), ROOT]))
    server = client = None
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        wrap = _callgrind(out_file, at_start=False) if side == "server" else []
        server = subprocess.Popen(wrap + _child_command(impl, workload, "server", count, 0, pki),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env, start_new_session=True)
        port = _read_marked(server.stdout, time.monotonic() + 120)["port"]
        if side == "server":
            _toggle(server.pid, True)
        wrap = _callgrind(out_file, at_start=True) if side == "client" else []
        client = subprocess.Popen(wrap + _child_command(impl, workload, "client", count, port, pki),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                  start_new_session=True)
        result = _read_marked(client.stdout, deadline)
        if result.get("count") != count:
            raise RuntimeError(f"{impl} {workload}: completed {result.get('count')} of {count}")
        client.wait(RUN_TIMEOUT)
        if side == "server":
            _toggle(server.pid, False)
        server.stdin.close()
        _read_marked(server.stdout, time.monotonic() + 120)
        server.wait(120)
    finally:
        _kill(client)
        _kill(server)
    return _total_instructions(out_file)


def instructions_per_op(impl: str, workload: str, side: str, pki: dict, tmp: str) -> float:
    """Instructions per operation beyond those of the first N/4: what one more
    stream or handshake costs once the connection, the caches and the lazy
    imports are warm (qh3's server spends ~300 M instructions on its first
    connection, so a plain average over a short run would overstate it)."""
    n = COUNTS[workload][impl]
    small = n // 4
    return (count_run(impl, workload, side, n, pki, tmp)
            - count_run(impl, workload, side, small, pki, tmp)) / (n - small)


def markdown(table: dict, impls: list[str], workloads: list[str], sides: list[str]) -> str:
    lines = ["| workload | side | " + " | ".join(f"{i} (instr./op)" for i in impls)
             + "".join(f" | {i} ÷ quicfast" for i in impls if i != "quicfast") + " |",
             "|---|---|" + "---:|" * (2 * len(impls) - 1)]
    for w in workloads:
        for s in sides:
            row = [table.get((i, w, s)) for i in impls]
            cells = [f"{v:,.0f}" if v else "—" for v in row]
            base = table.get(("quicfast", w, s))
            ratios = [f"{table[(i, w, s)] / base:.2f}x" if base and table.get((i, w, s)) else "—"
                      for i in impls if i != "quicfast"]
            lines.append(f"| {w} | {s} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(IMPLS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    impls = [i for i in args.only.split(",") if i]
    workloads = [w for w in args.workloads.split(",") if w]
    sides = [s for s in args.sides.split(",") if s]
    for name in impls + workloads + sides:
        if name not in IMPLS + WORKLOADS + SIDES:
            ap.error(f"unknown peer, workload or side {name!r}")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("needs valgrind (Debian package valgrind): callgrind counts the instructions")

    from tests.helpers.certs import pki_paths
    paths = pki_paths()
    pki = {"ca": paths.ca_file, "cert": paths.cert_file, "key": paths.key_file}
    table = {}
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            for s in sides:
                for i in impls:
                    t0 = time.perf_counter()
                    try:
                        table[(i, w, s)] = instructions_per_op(i, w, s, pki, tmp)
                        what = f"{table[(i, w, s)]:,.0f} instructions/op"
                    except Exception as exc:  # report and carry on with the others
                        what = f"failed: {type(exc).__name__}: {exc}"[:200]
                    print(f"{w:10s} {s:6s} {i:9s} {what} ({time.perf_counter() - t0:.0f} s)",
                          file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(t_start))}, quicfast {commit}, "
              f"Python {sys.version.split()[0]}, total {time.time() - t_start:.0f} s\n")
    md = markdown(table, impls, workloads, sides)
    print(header)
    print(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"header": header, "counts": COUNTS,
                       "instructions_per_op": {"/".join(k): v for k, v in table.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
