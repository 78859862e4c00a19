"""qlog tracing: per-connection event logs in JSON-SEQ (`.sqlog`), viewable in qvis.

Implements the qlog main schema (draft-ietf-quic-qlog-main-schema) and the
QUIC event definitions (draft-ietf-quic-qlog-quic-events) for the events the
engine reports: connection started and closed, parameters set, packets sent,
received, dropped and lost, recovery metrics, key updates and path changes.

A tracer is plugged in as `Config.tracer`: a callable
`tracer(is_client, odcid) -> ConnectionTracer | None` called once per
connection. `FileTracer(directory)` writes one file per connection;
`tracer_from_env()` returns one for `$QLOGDIR` when it is set, as quic-go,
ngtcp2 and quiche do. With no tracer the engine does no qlog work at all.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import IO, Any, Callable, Optional

__all__ = ["ConnectionTracer", "FileTracer", "tracer_from_env", "QLOG_VERSION"]

QLOG_VERSION = "0.3"
RECORD_SEPARATOR = "\x1e"


class ConnectionTracer:
    """Writes one connection's qlog trace as JSON-SEQ records to `stream`.

    `event(name, data, now)` takes the engine's clock (seconds); times are
    written in milliseconds relative to the first event.
    """

    def __init__(self, stream: IO[str], *, is_client: bool, odcid: bytes, title: str = "quicfast") -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._reference: Optional[float] = None
        self.is_client = is_client
        self._header = {
            "qlog_version": QLOG_VERSION,
            "qlog_format": "JSON-SEQ",
            "title": title,
            "trace": {
                "vantage_point": {"type": "client" if is_client else "server", "name": "quicfast"},
                "common_fields": {"ODCID": odcid.hex(), "time_format": "relative",
                                  "reference_time": time.time() * 1000.0, "protocol_type": ["QUIC"]},
            },
        }
        self._write(self._header)

    def _write(self, record: dict) -> None:
        line = RECORD_SEPARATOR + json.dumps(record, separators=(",", ":"), default=_jsonable) + "\n"
        with self._lock:
            self._stream.write(line)

    def event(self, name: str, data: dict, now: float) -> None:
        """Record event `name` (e.g. "transport:packet_sent") with `data` at `now`."""
        if self._reference is None:
            self._reference = now
        self._write({"time": round((now - self._reference) * 1000.0, 3), "name": name, "data": data})

    def close(self) -> None:
        with self._lock:
            try:
                self._stream.flush()
                self._stream.close()
            except (OSError, ValueError):
                pass


def _jsonable(value: Any):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


class FileTracer:
    """A `Config.tracer` that writes `<odcid>_<client|server>.sqlog` files into `directory`."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory

    def __call__(self, is_client: bool, odcid: bytes) -> ConnectionTracer:
        role = "client" if is_client else "server"
        path = os.path.join(self.directory, f"{odcid.hex()}_{role}.sqlog")
        return ConnectionTracer(open(path, "w", encoding="utf-8", buffering=1 << 16), is_client=is_client,
                                odcid=odcid, title=f"quicfast {role} {odcid.hex()}")


def tracer_from_env() -> Optional[Callable[[bool, bytes], ConnectionTracer]]:
    """A `FileTracer` for `$QLOGDIR`, or None when the variable is unset."""
    directory = os.environ.get("QLOGDIR")
    return FileTracer(directory) if directory else None


def read_sqlog(path: str) -> list[dict]:
    """Parse a JSON-SEQ qlog file into its records (for tests and tools)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(chunk) for chunk in f.read().split(RECORD_SEPARATOR) if chunk.strip()]
