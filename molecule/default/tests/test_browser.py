"""Sign-in in a real browser, through the real gateway, as every MCP client user does it.

The official MCP Python SDK client listens on a loopback port and "opens the browser" at
the authorization URL; a person (a coroutine here) at headless Chromium reads the
gateway's sign-in page and types; the browser comes back to the client's loopback
listener with the code; the client gets its token and calls tools through Traefik.
Chromium enforces what an HTTP library does not: the Content-Security-Policy (form-action
on the redirect after "Sign in", and after "Allow" on the consent page that follows for a
newly registered client), cookies, TLS against the test CA's root, redirect rules.

Screenshots of every screen land in build/test-artifacts/browser/.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.browser import BrowserClient, SignInFailed, allow_access, chromium
from tests.e2e.gateway_client import tool_json

DOMAIN = "gateway.test"
ECHO = f"https://echo.{DOMAIN}/mcp"
STICKY = f"https://sticky.{DOMAIN}/mcp"
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "test-artifacts" / "browser"
GATEWAY_NAME = "Molecule Test Gateway"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module", autouse=True)
def artifacts_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


async def screenshot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def expect_our_sign_in_page(page: Page, client_name: str, resource: str, port: int) -> None:
    """What the page tells the person before they type anything."""
    await expect(page).to_have_title(f"Sign in - {GATEWAY_NAME}")
    await expect(page.locator("header")).to_have_text(GATEWAY_NAME)
    main = page.locator("main")
    await expect(main).to_contain_text(f"{client_name} asks to use an MCP server for you.")
    await expect(main).to_contain_text("self-registered: nobody checked this name")
    await expect(main).to_contain_text(resource)
    await expect(main).to_contain_text(f"an application on this computer (127.0.0.1:{port})")
    # Labelled fields and a named button: what a screen reader announces.
    await expect(page.get_by_label("User name")).to_be_visible()
    await expect(page.get_by_label("Password")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await expect(page.get_by_role("link", name="Sign in with Test OpenID Provider")).to_be_visible()


def no_csp_violations(client: BrowserClient) -> None:
    assert not [m for m in client.console if "Content Security Policy" in m], client.console


def run(fn):
    return anyio.run(fn)


def test_local_sign_in_with_the_keyboard(gateway):
    """alice signs in with the keyboard alone; the client lists tools and calls one."""

    async def person(page: Page, url: str) -> None:
        await page.goto(url)
        await expect_our_sign_in_page(page, "Browser test client", ECHO, client.loopback_port)
        # The user name field has the focus: type, Tab, type, Enter.
        assert await page.evaluate("document.activeElement.id") == "username"
        await screenshot(page, "01-sign-in")
        await page.keyboard.type("alice")
        await page.keyboard.press("Tab")
        await page.keyboard.type("alice-password")
        await page.keyboard.press("Enter")
        # A newly registered client: the gateway asks alice first.
        await allow_access(
            page, GATEWAY_NAME, "Browser test client", str(ARTIFACTS / "08-consent.png"), keyboard=True
        )
        await page.wait_for_url(f"http://127.0.0.1:{client.loopback_port}/callback?**")
        await expect(page.get_by_role("heading")).to_have_text("Signed in")
        await screenshot(page, "02-back-in-the-client")

    async def go():
        async with chromium(DOMAIN, *gateway) as browser:
            nonlocal client
            client = BrowserClient(*gateway, browser=browser, person=person)
            async with client.session(ECHO) as session:
                tools = {tool.name for tool in (await session.list_tools()).tools}
                whoami = tool_json(await session.call_tool("whoami", {}))
            return tools, whoami

    client: BrowserClient
    tools, whoami = run(go)
    assert {"headers", "whoami", "replica", "echo"} <= tools
    assert whoami["user_id"] == "alice"
    assert whoami["user_name"] == "Alice Example"
    assert client.storage.tokens.refresh_token
    no_csp_violations(client)


def test_wrong_password_then_right_on_a_phone(gateway):
    """On a phone-sized screen: a wrong password is explained, the second try succeeds."""

    async def person(page: Page, url: str) -> None:
        await page.goto(url)
        # Readable on a phone: nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await page.get_by_label("User name").fill("alice")
        await page.get_by_label("Password").fill("not-her-password")
        await page.get_by_role("button", name="Sign in").tap()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("Wrong user name or password.")
        await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await screenshot(page, "03-wrong-password-phone")
        await page.get_by_label("Password").fill("alice-password")
        await page.get_by_role("button", name="Sign in").tap()
        await allow_access(page, GATEWAY_NAME, "Browser test client")
        await page.wait_for_url(f"http://127.0.0.1:{client.loopback_port}/callback?**")

    async def go():
        async with chromium(DOMAIN, *gateway) as browser:
            nonlocal client
            client = BrowserClient(*gateway, browser=browser, person=person, viewport=PHONE)
            async with client.session(ECHO) as session:
                return tool_json(await session.call_tool("whoami", {}))

    client: BrowserClient
    whoami = run(go)
    assert whoami["user_id"] == "alice"
    no_csp_violations(client)


def test_an_expired_sign_in_starts_over(gateway, host):
    """The page stays open too long: "Sign in" says it expired, "Start over" works."""

    def forget_pending_requests() -> None:  # what 10 minutes of waiting does
        lua = "for _, key in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', key) end"
        password = "$(sed -n 's/^requirepass //p' /usr/local/etc/redis/redis.conf)"
        cli = f'redis-cli --no-auth-warning -a "{password}" EVAL "$0" 0 "mcpgw:authreq:*"'
        cmd = host.run(f"docker exec auth-redis-1 sh -c {shlex.quote(cli)} {shlex.quote(lua)}")
        assert cmd.rc == 0, cmd.stderr

    async def person(page: Page, url: str) -> None:
        await page.goto(url)
        await page.get_by_label("User name").fill("alice")
        await page.get_by_label("Password").fill("alice-password")
        await anyio.to_thread.run_sync(forget_pending_requests)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("This sign-in request has expired")
        await screenshot(page, "07-expired")
        await page.get_by_role("link", name="Start over").click()
        await expect(page).to_have_title(f"Sign in - {GATEWAY_NAME}")
        await page.get_by_label("User name").fill("alice")
        await page.get_by_label("Password").fill("alice-password")
        await page.get_by_role("button", name="Sign in").click()
        await allow_access(page, GATEWAY_NAME, "Browser test client")
        await page.wait_for_url(f"http://127.0.0.1:{client.loopback_port}/callback?**")

    async def go():
        async with chromium(DOMAIN, *gateway) as browser:
            nonlocal client
            client = BrowserClient(*gateway, browser=browser, person=person)
            async with client.session(ECHO) as session:
                return tool_json(await session.call_tool("whoami", {}))

    client: BrowserClient
    assert run(go)["user_id"] == "alice"
    no_csp_violations(client)


def test_sign_in_at_the_openid_provider(gateway):
    """The oidc identity: the provider's own login and consent pages, then back to the client."""

    async def person(page: Page, url: str) -> None:
        await page.goto(url)
        await page.get_by_role("link", name="Sign in with Test OpenID Provider").click()
        await page.wait_for_url(f"https://idp.{DOMAIN}/interaction/**")
        await expect(page.locator("input[name=login]")).to_be_visible()
        await screenshot(page, "04-openid-provider-sign-in")
        await page.locator("input[name=login]").fill("alice")
        await page.locator("input[name=password]").fill("any")
        await page.get_by_role("button", name="Sign-in").click()
        await expect(page.get_by_role("button", name="Continue")).to_be_visible()
        await screenshot(page, "05-openid-provider-consent")
        await page.get_by_role("button", name="Continue").click()
        # The provider let alice through for the gateway; the gateway asks about this client.
        await allow_access(page, GATEWAY_NAME, "Browser test client")
        await page.wait_for_url(f"http://127.0.0.1:{client.loopback_port}/callback?**")

    async def go():
        async with chromium(DOMAIN, *gateway) as browser:
            nonlocal client
            client = BrowserClient(*gateway, browser=browser, person=person)
            async with client.session(STICKY) as session:
                return tool_json(await session.call_tool("whoami", {}))

    client: BrowserClient
    whoami = run(go)
    # The provider's subject, with the prefix that keeps it apart from the local alice.
    assert whoami["user_id"] == "idp:alice"
    assert whoami["user_name"] == "Alice Upstream"
    no_csp_violations(client)


def test_an_openid_user_outside_the_allowed_groups_is_told_so(gateway):
    """dave is not in the allowed groups: the gateway says so, and no code reaches the client."""

    async def person(page: Page, url: str) -> None:
        await page.goto(url)
        await page.get_by_role("link", name="Sign in with Test OpenID Provider").click()
        await page.locator("input[name=login]").fill("dave")
        await page.locator("input[name=password]").fill("any")
        await page.get_by_role("button", name="Sign-in").click()
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url(f"https://auth.{DOMAIN}/callback?**")
        await expect(page.locator("header")).to_have_text(GATEWAY_NAME)
        await expect(page.get_by_role("alert")).to_contain_text(
            "The account dave@example.org may not use this gateway."
        )
        await screenshot(page, "06-openid-user-refused")

    async def go():
        async with chromium(DOMAIN, *gateway) as browser:
            nonlocal client
            client = BrowserClient(*gateway, browser=browser, person=person)
            async with client.session(STICKY):
                pass

    client: BrowserClient
    with pytest.raises(BaseException) as raised:  # noqa: PT011 -- SignInFailed, maybe inside an ExceptionGroup
        run(go)
    assert _contains(raised.value, SignInFailed), raised.value
    assert not [r for r in client.loopback_requests if r.startswith("/callback")]


def _contains(error: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(error, kind):
        return True
    return any(_contains(inner, kind) for inner in getattr(error, "exceptions", ()))


def test_the_screens_were_saved():
    saved = {path.name for path in ARTIFACTS.glob("*.png")}
    assert {
        "01-sign-in.png",
        "03-wrong-password-phone.png",
        "04-openid-provider-sign-in.png",
        "08-consent.png",
    } <= saved
    for path in ARTIFACTS.glob("*.png"):
        assert path.read_bytes().startswith(b"\x89PNG"), path
        assert path.stat().st_size > 5000, path
