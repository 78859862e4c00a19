"""Process plumbing shared by the transport benchmarks: a server child and a client
child of the calling script, bounded by timeouts and killed (SIGKILL to their process
group) if they overstay.  Children print result lines prefixed with MARK."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MARK = "@@BENCH "
SERVER_GRACE = 10.0


def emit(obj) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


async def wait_stdin_eof() -> None:
    """The server runs until the parent closes its stdin."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def pki() -> dict:
    sys.path[:0] = [ROOT]
    from tests.helpers.certs import pki_paths
    p = pki_paths()
    return {"ca": p.ca_file, "cert": p.cert_file, "key": p.key_file}


def versions(mods) -> str:
    import importlib.metadata as md
    out = [f"python {sys.version.split()[0]}"]
    for m in mods:
        try:
            out.append(f"{m} {md.version(m)}")
        except Exception:
            out.append(f"{m} missing")
    return ", ".join(out)


def git_rev(src: str | None = None) -> str:
    if src and os.path.abspath(src) != os.path.join(ROOT, "src"):
        return f"from {src}"
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return commit + (" + uncommitted src/" if dirty else "")
    except Exception:
        return "?"


def _read_marked(stream, deadline: float) -> dict:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError("child did not answer in time")
            line = stream.readline()
            if not line:
                raise RuntimeError("child exited without a result")
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
    finally:
        sel.close()


def _kill(p) -> None:
    if p is not None and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _tail(f, lines: int = 3) -> str:
    f.seek(0)
    return " | ".join(f.read().strip().splitlines()[-lines:])


def run_children(script: str, common: list, timeout: float, src: str | None = None) -> dict:
    """Start `script --child --role server`, then `--role client --port P`; return the
    client's result merged with the server's last report (its CPU).  The client must
    answer within `timeout` + 2 × SERVER_GRACE; both are SIGKILLed on the way out.
    `src` is the quicfast source tree the children import (default: this checkout's src/)."""
    base = [sys.executable, script, "--child"] + common
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src or os.path.join(ROOT, "src"), ROOT, env.get("PYTHONPATH", "")])
    server = client = res = None
    server_err = tempfile.TemporaryFile("w+")
    client_err = tempfile.TemporaryFile("w+")
    try:
        server = subprocess.Popen(base + ["--role", "server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=server_err, text=True, env=env, start_new_session=True)
        try:
            port = _read_marked(server.stdout, time.monotonic() + SERVER_GRACE)["port"]
        except Exception as exc:
            raise RuntimeError(f"server: {exc}; stderr: {_tail(server_err)}") from None
        client = subprocess.Popen(base + ["--role", "client", "--port", str(port)], stdout=subprocess.PIPE,
                                  stderr=client_err, text=True, env=env, start_new_session=True)
        try:
            res = _read_marked(client.stdout, time.monotonic() + timeout + 2 * SERVER_GRACE)
        except Exception as exc:
            raise RuntimeError(f"client: {exc}; stderr: {_tail(client_err)}") from None
        server.stdin.close()
        while True:       # the server may have reported errors before its CPU figure
            r = _read_marked(server.stdout, time.monotonic() + SERVER_GRACE)
            if "server_error" in r:
                res.setdefault("server_error", r["server_error"])
                continue
            res.update(r)
            break
        try:
            client.wait(SERVER_GRACE)
            server.wait(SERVER_GRACE)
        except subprocess.TimeoutExpired:
            pass
    finally:
        _kill(client)
        _kill(server)
        for side, f in (("server", server_err), ("client", client_err)):
            f.seek(0)
            text = f.read()
            f.close()
            n = text.count("Traceback (most recent call last)")
            if n and res is not None:
                last = [ln for ln in text.splitlines() if ln and not ln.startswith(" ")][-1]
                res[f"{side}_tracebacks"] = n
                res[f"{side}_last_error"] = last[:200]
    return res
