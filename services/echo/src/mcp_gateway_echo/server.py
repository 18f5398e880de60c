"""An MCP server whose tools tell what reached the backend through the gateway.

`headers` returns the request headers the server received (the tests use it to prove
which identity headers Traefik forwarded and that spoofed ones never arrive),
`whoami` the identity the gateway asserted, `replica` which container answered.
"""

from __future__ import annotations

import argparse
import os
import socket

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REPLICA = os.environ.get("ECHO_REPLICA_NAME") or socket.gethostname()

server = MCPServer("echo", instructions="Diagnostic server of the MCP gateway.")


@server.tool()
def headers(ctx: Context) -> dict[str, str]:
    """The HTTP request headers this server received, as it received them."""
    return dict(ctx.headers or {})


@server.tool()
def whoami(ctx: Context) -> dict[str, str | None]:
    """The identity the gateway asserted for this request."""
    received = ctx.headers or {}
    return {
        "user_id": received.get("x-user-id"),
        "user_name": received.get("x-user-name"),
        "replica": REPLICA,
    }


@server.tool()
def replica() -> str:
    """The name of the replica (container) that answered."""
    return REPLICA


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "replica": REPLICA})


def build_app():
    # Stateless, with plain JSON responses: any replica can answer any request, so
    # round-robin balancing needs no session affinity (and the 2026-07-28 revision has no
    # sessions anyway). Host checks
    # belong to Traefik in front; behind it every Host is one of ours.
    app = server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.append(Route("/health", health, methods=["GET"]))
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 -- in its container
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(build_app(), host=args.host, port=args.port, access_log=False, proxy_headers=False)
    return 0
