"""`HTTPXTransport`: lets `httpx.AsyncClient(transport=HTTPXTransport())`
speak HTTP/3 through `quicfast.h3.Client` (httpx's AsyncBaseTransport
interface; responses carry the extension ``http_version: b"HTTP/3"``)."""

from __future__ import annotations

import httpx

from .client import Client

__all__ = ["HTTPXTransport"]


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response) -> None:
        self._response = response

    async def __aiter__(self):
        async for chunk in self._response.aiter_bytes():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class HTTPXTransport(httpx.AsyncBaseTransport):
    """An httpx transport over HTTP/3. Give a ready `client`, or keyword
    arguments for a new `quicfast.h3.Client` (verify, ca_file, config, ...)."""

    def __init__(self, client: Client | None = None, **client_kwargs) -> None:
        self._client = client or Client(**client_kwargs)
        self._owns_client = client is None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = None
        if request.method not in ("GET", "HEAD") or request.headers.get("content-length") not in (None, "0"):
            content = request.stream
        headers = [(k, v) for k, v in request.headers.raw]
        response = await self._client.request(request.method, str(request.url), headers=headers, content=content)
        return httpx.Response(response.status, headers=list(response.headers), stream=_ResponseStream(response),
                              extensions={"http_version": b"HTTP/3"}, request=request)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()
