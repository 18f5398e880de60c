"""A forwarding shim on loopback: every request it gets goes to `upstream` (same method, path,
query, headers and body), with `headers` added, and the answer streams back as it comes
(server-sent events included, chunk by chunk, never buffered).

The official conformance suite has no option for an Authorization header: the catalogue
scenario points it at this shim, once with the gateway as upstream and an OAuth token added,
and once, with nothing added, at the MCP server's container directly - the same shim both
ways, so the only difference between the two runs is the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2
import uvicorn

# Hop-by-hop headers (RFC 9110, 7.6.1), and what the client library sets itself.
DROPPED = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)


class Forwarder:
    """The ASGI application."""

    def __init__(
        self,
        upstream: str,
        headers: Mapping[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.headers = dict(headers or {})
        self.transport = transport
        self._client: httpx2.AsyncClient | None = None

    def client(self) -> httpx2.AsyncClient:
        # Made on first use, in the server's event loop.
        if self._client is None:
            self._client = httpx2.AsyncClient(
                transport=self.transport, timeout=httpx2.Timeout(30, read=None), follow_redirects=False
            )
        return self._client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in DROPPED]
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        url = (
            self.upstream
            + scope["path"]
            + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        )
        request = self.client().build_request(scope["method"], url, headers=headers, content=body)
        relay = asyncio.ensure_future(self._relay(request, send))
        disconnect = asyncio.ensure_future(self._disconnected(receive))
        done, pending = await asyncio.wait({relay, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if relay in done:
            relay.result()

    @staticmethod
    async def _disconnected(receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _relay(self, request: httpx2.Request, send: Any) -> None:
        try:
            response = await self.client().send(request, stream=True)
        except httpx2.HTTPError as error:
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": str(error).encode()})
            return
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in DROPPED]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


@contextlib.contextmanager
def serve(app: Forwarder) -> Iterator[str]:
    """Run `app` on an ephemeral loopback port in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    else:
        raise RuntimeError("the forwarding shim did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(10)
