"""The whole flow driven by the official MCP Python SDK client.

OAuthClientProvider + the streamable HTTP client talk to an in-process stand-in of the
gateway's routing (what Traefik does with the labels and the mcp-auth ForwardAuth
middleware): auth.<domain> and /.well-known/* go to the auth service, /mcp goes through
/verify to a real MCP server built on the SDK. The login step is automated: the
redirect handler fills the local login form.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from .conftest import FETCH, ISSUER, PASSWORDS, REDIRECT_URI

pytestmark = pytest.mark.anyio


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def build_mcp_server() -> MCPServer:
    server = MCPServer("whoami")

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The identity the gateway asserted for this request."""
        headers = ctx.headers or {}
        return f"{headers.get('x-user-id')}|{headers.get('x-user-name')}"

    return server


class GatewayStandIn:
    """Host routing plus ForwardAuth, as the labels and middlewares configure Traefik."""

    def __init__(self, auth: Any, backend: Any) -> None:
        self.auth = auth
        self.backend = backend

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode().split(":")[0]
        if host == "auth.gateway.test" or scope["path"].startswith("/.well-known/"):
            forwarded = [(k, v) for k, v in scope["headers"] if k != b"x-forwarded-host"]
            scope = {**scope, "headers": [*forwarded, (b"x-forwarded-host", host.encode())]}
            await self.auth(scope, receive, send)
            return
        # ForwardAuth: ask /verify with the original Authorization and X-Forwarded-Host.
        verify_headers = [(b"x-forwarded-host", host.encode()), (b"x-forwarded-proto", b"https")]
        if b"authorization" in headers:
            verify_headers.append((b"authorization", headers[b"authorization"]))
        status, answer = await self.auth.verify.check(headers.get(b"authorization", b""), host.encode())
        if status != 200:
            await send({"type": "http.response.start", "status": status, "headers": answer})
            await send({"type": "http.response.body", "body": b""})
            return
        # authResponseHeaders replace whatever the client sent under those names.
        copied = {name for name, _ in answer if name.startswith(b"x-")}
        kept = [(k, v) for k, v in scope["headers"] if k not in copied]
        scope = {**scope, "headers": kept + [(k, v) for k, v in answer if k in copied]}
        await self.backend(scope, receive, send)


class AutomatedBrowser:
    """The user's browser for OAuthClientProvider: follow to the login form, sign in as
    alice, catch the redirect back to the client."""

    def __init__(self, transport: Any, redirect_uri: str = REDIRECT_URI) -> None:
        self.http = httpx2.AsyncClient(transport=transport)
        self.redirect_uri = redirect_uri
        self.login_pages: list[str] = []
        self.consent_pages: list[str] = []
        self.result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, url: str) -> None:
        response = await self.http.get(url)
        assert response.status_code == 302, response.text
        page = await self.http.get(response.headers["location"])
        self.login_pages.append(page.text)
        fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
        done = await self.http.post(
            f"{ISSUER}/login", data={**fields, "username": "alice", "password": PASSWORDS["alice"]}
        )
        if done.status_code == 303 and done.headers["location"].startswith(f"{ISSUER}/consent?"):
            # The consent page, for a client alice has not allowed before: Allow.
            consent = await self.http.get(done.headers["location"])
            self.consent_pages.append(consent.text)
            fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', consent.text))
            done = await self.http.post(f"{ISSUER}/consent", data={**fields, "decision": "allow"})
        assert done.status_code == 302, done.text
        location = done.headers["location"]
        assert location.startswith(self.redirect_uri)
        query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
        self.result = AuthorizationCodeResult(
            code=query["code"], state=query.get("state"), iss=query.get("iss")
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        result, self.result = self.result, None
        assert result is not None
        return result


def build_backend(server: MCPServer) -> Any:
    # JSON responses and no standing GET stream: the in-process transport buffers whole
    # responses (through Traefik, in the end-to-end tests, the server streams as usual).
    return server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


def sdk_client_metadata(redirect_uri: str = REDIRECT_URI) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name="sdk test client",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


async def sdk_flow(service: Any, **provider_options: Any) -> tuple[MemoryStorage, AutomatedBrowser]:
    """The official client against the service behind the stand-in: discovery, client
    identification, automated login, token, then a session that calls `whoami`."""
    server = build_mcp_server()
    transport = httpx2.ASGITransport(app=GatewayStandIn(service, build_backend(server)))
    browser = AutomatedBrowser(transport)
    storage = MemoryStorage()
    oauth = OAuthClientProvider(
        server_url=f"https://{FETCH}/mcp",
        client_metadata=sdk_client_metadata(),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
        **provider_options,
    )
    try:
        with anyio.fail_after(30):
            await run_session(server, transport, oauth)
    finally:
        await browser.http.aclose()
    return storage, browser


async def test_official_sdk_client_discovers_registers_logs_in_and_calls_a_tool(service):
    storage, browser = await sdk_flow(service)
    # alice was asked once, on the consent page, for this newly registered client.
    (consent,) = browser.consent_pages
    assert "<strong>sdk test client</strong> asks to use an MCP server as you." in consent
    assert storage.client is not None
    assert storage.client.client_id
    assert storage.tokens is not None
    assert storage.tokens.refresh_token
    claims = service.key.decode(storage.tokens.access_token, ISSUER)
    assert claims["aud"] == f"https://{FETCH}/mcp"


async def run_session(server: MCPServer, transport: Any, oauth: OAuthClientProvider) -> None:
    async with (
        server.session_manager.run(),
        httpx2.AsyncClient(transport=transport, auth=oauth, timeout=30) as http,
        streamable_http_client(f"https://{FETCH}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [tool.name for tool in tools.tools] == ["whoami"]
        result = await session.call_tool("whoami", {})
        assert result.content[0].text == "alice|Alice A."
