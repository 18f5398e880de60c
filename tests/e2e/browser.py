"""A person at a real browser, and the MCP client that sent them there.

Desktop MCP clients sign their user in the same way: they listen on a loopback port,
open the system browser at the authorization URL, and wait for the browser to come back
to `http://127.0.0.1:<port>/callback` with the code. Here the client is the official MCP
Python SDK (`OAuthClientProvider` + streamable HTTP), the browser is Debian's Chromium
driven by Playwright (no browser download), and the person is a coroutine of the test
that looks at the page and types.

Chromium trusts the test CA's root through an NSS database of its own (certutil), so
TLS is checked as a user's browser would check it; names of the test domain are mapped
to the gateway's address with --host-resolver-rules.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from playwright.async_api import Browser, Page, async_playwright, expect

from .gateway_client import MemoryStorage, pinned_transport

CHROMIUM = "/usr/bin/chromium"
# Chromium on a closed network: nothing of its own in the background (updates, sync, ...).
CHROMIUM_ARGS = [
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SIGNED_IN_PAGE = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Signed in</title></head>"
    b"<body><h1>Signed in</h1><p>You can close this window and go back to the application.</p></body></html>"
)

Person = Callable[[Page, str], Awaitable[None]]


class SignInFailed(Exception):
    """The person finished at the browser without the client receiving a code."""


async def allow_access(
    page: Page, gateway_name: str, client_name: str, screenshot: str | None = None, keyboard: bool = False
) -> None:
    """The gateway's consent page after signing in (a client this person has not allowed
    before): check what it says, optionally save a screenshot there, and Allow - with a
    click, or with the keyboard (Tab reaches Allow first, Enter presses it)."""
    await expect(page).to_have_title(f"Allow access? - {gateway_name}")
    await expect(page.locator("main")).to_contain_text(f"{client_name} asks to use an MCP server as you.")
    await expect(page.get_by_role("button", name="Deny")).to_be_visible()
    if screenshot:
        await page.screenshot(path=screenshot, full_page=True)
    if keyboard:
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Allow"
        await page.keyboard.press("Enter")
    else:
        await page.get_by_role("button", name="Allow").click()


def trust_store(home: Path, ca_file: str) -> None:
    """An NSS database in `home` that trusts `ca_file` for TLS servers (what Chromium reads)."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    certutil = shutil.which("certutil")
    assert certutil, "certutil is missing: playbooks/controller.yml installs libnss3-tools"
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "test CA", "-i", ca_file], check=True
    )


@asynccontextmanager
async def chromium(domain: str, address: str, ca_file: str) -> AsyncIterator[Browser]:
    """Headless Chromium that resolves `*.<domain>` to `address` and trusts `ca_file`."""
    assert Path(CHROMIUM).exists(), "Chromium is missing: playbooks/controller.yml installs it"
    with tempfile.TemporaryDirectory(prefix="chromium-home-") as home:
        trust_store(Path(home), ca_file)
        args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP *.{domain} {address}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=args, env={**os.environ, "HOME": home}
            )
            try:
                yield browser
            finally:
                await browser.close()


class LoopbackRedirect:
    """The client's redirect URI: a real listener on 127.0.0.1, as desktop MCP clients have."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.result: asyncio.Future[dict[str, str]] | None = None
        self.requests: list[str] = []

    async def __aenter__(self) -> LoopbackRedirect:
        self.result = asyncio.get_running_loop().create_future()
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
            self.requests.append(target)
            url = urlparse(target)
            if url.path == "/callback" and self.result is not None and not self.result.done():
                self.result.set_result({k: v[0] for k, v in parse_qs(url.query).items()})
                status, body = b"200 OK", SIGNED_IN_PAGE
            else:
                status, body = b"404 Not Found", b"not found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
            )
            await writer.drain()
        finally:
            writer.close()


@dataclass
class BrowserClient:
    """An MCP client (the official SDK) whose user signs in at `browser`, as `person` does."""

    address: str
    ca_file: str
    browser: Browser
    person: Person
    client_name: str = "Browser test client"
    viewport: dict[str, int] | None = None
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    page: Page | None = None
    console: list[str] = field(default_factory=list)
    _loopback: LoopbackRedirect | None = None
    _person_task: asyncio.Task[None] | None = None

    async def _open_browser(self, authorization_url: str) -> None:
        """The client's redirect handler: open the browser at the URL and return, like a
        desktop app; the person takes it from there."""
        options: dict[str, Any] = {}
        if self.viewport:
            options.update(viewport=self.viewport, is_mobile=True, has_touch=True, device_scale_factor=2)
        context = await self.browser.new_context(**options)
        self.page = await context.new_page()
        self.page.on("console", lambda message: self.console.append(message.text))
        self._person_task = asyncio.create_task(self.person(self.page, authorization_url))

    async def _wait_for_code(self) -> AuthorizationCodeResult:
        """The client's callback handler: the code arrives at the loopback listener."""
        assert self._loopback is not None
        assert self._loopback.result is not None
        assert self._person_task is not None
        waiting = {self._loopback.result, self._person_task}
        done, _ = await asyncio.wait(waiting, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        if self._person_task in done and self._person_task.exception() is not None:
            raise self._person_task.exception()
        if not self._loopback.result.done():
            # The person is done (or time is up) and nothing came back to the client.
            raise SignInFailed(f"no code at {self._loopback.uri} (browser at {self.page and self.page.url})")
        await self._person_task  # the person may still look at the page after the redirect
        query = self._loopback.result.result()
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    @property
    def loopback_port(self) -> int:
        assert self._loopback is not None
        return self._loopback.port

    @property
    def loopback_requests(self) -> list[str]:
        """What reached the client's loopback listener (paths with their queries)."""
        return self._loopback.requests if self._loopback else []

    def oauth(self, server_url: str) -> OAuthClientProvider:
        assert self._loopback is not None
        return OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name=self.client_name,
                redirect_uris=[self._loopback.uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self._open_browser,
            callback_handler=self._wait_for_code,
        )

    @asynccontextmanager
    async def session(self, server_url: str) -> AsyncIterator[ClientSession]:
        """Connect to an MCP server through the gateway; the first request starts the sign-in."""
        async with LoopbackRedirect() as loopback:
            self._loopback = loopback
            transport = pinned_transport(self.address, self.ca_file)
            async with (
                httpx2.AsyncClient(transport=transport, auth=self.oauth(server_url), timeout=60) as http,
                streamable_http_client(server_url, http_client=http) as (read, write, *_),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session
