"""A static-file ASGI application for the HTTP/3 server: GET and HEAD of the
files under one directory, with directory listings and index.html.

HTTP semantics per RFC 9110 §9.3.1–9.3.2 (GET/HEAD), §15.5.5 (404),
§15.5.6 (405 with Allow). Files are streamed in `CHUNK_SIZE` pieces; each
piece is read synchronously (local files, page cache) and backpressure comes
from the response stream's drain().
"""

from __future__ import annotations

import html
import mimetypes
import os
from urllib.parse import quote

__all__ = ["StaticFiles"]

CHUNK_SIZE = 256 * 1024


class StaticFiles:
    """ASGI app serving `directory` (paths cannot escape it)."""

    def __init__(self, directory: str, *, listing: bool = True, chunk_size: int = CHUNK_SIZE) -> None:
        self.directory = os.path.realpath(directory)
        self.listing = listing
        self.chunk_size = chunk_size

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _simple(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        path = self._resolve(scope["path"])
        if path is None:
            await _simple(send, 404, b"not found\n")
            return
        if os.path.isdir(path):
            index = os.path.join(path, "index.html")
            if os.path.isfile(index):
                path = index
            elif self.listing:
                await _simple(send, 200, self._listing(scope["path"], path), [(b"content-type", b"text/html; charset=utf-8")],
                              head=method == "HEAD")
                return
            else:
                await _simple(send, 404, b"not found\n")
                return
        try:
            f = open(path, "rb")
        except OSError:
            await _simple(send, 404, b"not found\n")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", ctype.encode()), (b"content-length", str(size).encode())]})
            if method == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            remaining = size
            while True:
                chunk = f.read(min(self.chunk_size, remaining)) if remaining > 0 else b""
                remaining -= len(chunk)
                last = not chunk or remaining <= 0
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if last:
                    return

    def _resolve(self, url_path: str):
        relative = url_path.lstrip("/")
        if "\x00" in relative:
            return None
        full = os.path.realpath(os.path.join(self.directory, relative))
        if full != self.directory and not full.startswith(self.directory + os.sep):
            return None
        return full if os.path.exists(full) else None

    def _listing(self, url_path: str, path: str) -> bytes:
        base = url_path if url_path.endswith("/") else url_path + "/"
        items = []
        for name in sorted(os.listdir(path)):
            suffix = "/" if os.path.isdir(os.path.join(path, name)) else ""
            items.append(f'<li><a href="{quote(base + name)}{suffix}">{html.escape(name)}{suffix}</a></li>')
        title = html.escape(url_path)
        return (f"<!doctype html><title>{title}</title><h1>{title}</h1><ul>{''.join(items)}</ul>\n").encode()


async def _simple(send, status: int, body: bytes, headers=(), head: bool = False) -> None:
    fields = [(b"content-type", b"text/plain; charset=utf-8")] if not any(k == b"content-type" for k, _ in headers) else []
    fields += list(headers) + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": b"" if head else body})
