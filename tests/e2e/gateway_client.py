"""The official MCP Python SDK client, pointed at a gateway whose names do not resolve.

The test gateways answer for names such as echo.gateway.test that no DNS knows: a
network backend sends every connection to the gateway's address, while TLS still uses
the real name (SNI, certificate check against the test CA's root).
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpcore2
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1:33418/callback"


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Connect every host name to one address."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return await self.inner.connect_tcp(
            self.address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def pinned_transport(address: str, ca_file: str) -> httpx2.AsyncHTTPTransport:
    context = ssl.create_default_context(cafile=ca_file)
    transport = httpx2.AsyncHTTPTransport(verify=context)
    # httpx has no public switch for the network backend of its connection pool.
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=context, network_backend=PinnedBackend(address)
    )
    return transport


@dataclass
class MemoryStorage:
    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class GatewayUser:
    """One person with their MCP client: signs in through the local login form when asked,
    and clicks Allow when the gateway's consent page asks about a client."""

    address: str
    ca_file: str
    username: str
    password: str
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    _pending: dict[str, AuthorizationCodeResult] = field(default_factory=dict)

    def transport(self) -> httpx2.AsyncHTTPTransport:
        return pinned_transport(self.address, self.ca_file)

    async def _redirect(self, url: str) -> None:
        async with httpx2.AsyncClient(transport=self.transport(), timeout=30) as browser:
            response = await browser.get(url)
            assert response.status_code == 302, response.text
            login_url = response.headers["location"]
            page = await browser.get(login_url)
            assert page.status_code == 200, page.text
            fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
            origin = f"{urlparse(login_url).scheme}://{urlparse(login_url).netloc}"
            done = await browser.post(
                f"{origin}/login", data={**fields, "username": self.username, "password": self.password}
            )
            if done.status_code == 303 and done.headers["location"].startswith(f"{origin}/consent?"):
                # The consent page, for a client this user has not allowed before: Allow.
                consent = await browser.get(done.headers["location"])
                assert consent.status_code == 200, consent.text
                fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', consent.text))
                done = await browser.post(f"{origin}/consent", data={**fields, "decision": "allow"})
            assert done.status_code == 302, done.text
            query = {k: v[0] for k, v in parse_qs(urlparse(done.headers["location"]).query).items()}
            self._pending["result"] = AuthorizationCodeResult(
                code=query["code"], state=query.get("state"), iss=query.get("iss")
            )

    async def _callback(self) -> AuthorizationCodeResult:
        return self._pending.pop("result")

    def oauth(self, server_url: str) -> OAuthClientProvider:
        return OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name=f"e2e client of {self.username}",
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self._redirect,
            callback_handler=self._callback,
        )

    @asynccontextmanager
    async def session(
        self, server_url: str, headers: dict[str, str] | None = None, **options: Any
    ) -> AsyncIterator[ClientSession]:
        """A signed-in MCP session; `options` go to ClientSession (sampling_callback, ...)."""
        async with (
            httpx2.AsyncClient(
                transport=self.transport(), auth=self.oauth(server_url), headers=headers or {}, timeout=60
            ) as http,
            streamable_http_client(server_url, http_client=http) as (read, write, *_),
            ClientSession(read, write, **options) as session,
        ):
            await session.initialize()
            yield session


def tool_json(result: Any) -> Any:
    """The structured (or JSON text) result of a tool call."""
    import json

    content = getattr(result, "structured_content", None)
    if content:
        return content.get("result", content) if isinstance(content, dict) and len(content) == 1 else content
    return json.loads(result.content[0].text)


def molecule_gateway(container: str, root_pem: str, directory: Path) -> tuple[str, str]:
    """(address, CA file) of a Molecule test host seen from the controller: the address of
    the container `container` on its first network, and `root_pem` (the test CA's issuing
    root, read on the host) written into `directory`. The scenarios' `gateway` fixtures."""
    info = json.loads(
        subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    )
    address = next(iter(info[0]["NetworkSettings"]["Networks"].values()))["IPAddress"]
    ca_file = directory / "pebble-root.pem"
    ca_file.write_text(root_pem)
    return address, str(ca_file)
