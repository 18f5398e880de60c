"""The sign-in page: what it tells people, its CSP, its errors, and local + upstream together.

(The page in a real browser, through the gateway, is tested by molecule/default/tests/test_browser.py.)
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.keys import SigningKey
from mcp_gateway_auth.pages import redirect_target

from .conftest import ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair
from .test_github import GITHUB_CONFIG, FakeGitHub

pytestmark = pytest.mark.anyio


def csp(response: httpx2.Response) -> dict[str, str]:
    directives = (
        part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";")
    )
    return {name: value for name, value in directives}


@pytest.mark.parametrize(
    ("uri", "label", "source"),
    [
        ("http://127.0.0.1:33418/callback", "an application on this computer (127.0.0.1:33418)",
         "http://127.0.0.1:33418"),
        ("http://localhost:8080/cb", "an application on this computer (localhost:8080)", "http://localhost:8080"),
        ("http://[::1]:9000/cb", "an application on this computer ([::1]:9000)", "http:"),
        ("https://app.example.com/oauth/cb?x=1", "app.example.com", "https://app.example.com"),
        ("https://App.Example.com:8443/cb", "app.example.com:8443", "https://app.example.com:8443"),
        ("com.example.app:/callback", "the application that opens com.example.app: links on this device",
         "com.example.app:"),
    ],
)  # fmt: skip
def test_redirect_target(uri, label, source):
    target = redirect_target(uri)
    assert target.label == label
    assert target.source == source


async def test_the_page_says_who_asks_for_what_and_where_the_code_goes(flow):
    client = await flow.register(client_name="Claude Desktop")
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    page = await flow.http.get(response.headers["location"])
    assert page.status_code == 200
    assert "<header>MCP gateway</header>" in page.text
    assert "<strong>Claude Desktop</strong> asks to use an MCP server for you." in page.text
    assert "self-registered: nobody checked this name" in page.text
    assert "https://fetch.gateway.test/mcp" in page.text
    assert "an application on this computer (127.0.0.1:33418)" in page.text
    # Labels belong to their inputs (screen readers, a tap on the label focuses the field).
    assert '<label for="username">User name</label>' in page.text
    assert '<input id="username" name="username" autocomplete="username"' in page.text
    assert 'required value="" autofocus>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page.text


async def test_the_csp_lets_the_form_lead_to_the_redirect_target_only(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    page = await flow.http.get(response.headers["location"])
    policy = csp(page)
    # Browsers check form-action on every redirect after the POST: the client's loopback
    # listener must be allowed, and nothing else.
    assert policy["form-action"] == "'self' http://127.0.0.1:33418"
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    style = re.search(r"<style>(.*?)</style>", page.text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_a_native_app_redirect_is_a_scheme_source(flow):
    client = await flow.register(redirect_uris=["com.example.app:/callback"])
    response = await flow.authorize(
        client["client_id"], pkce_pair()[1], redirect_uri="com.example.app:/callback"
    )
    page = await flow.http.get(response.headers["location"])
    assert csp(page)["form-action"] == "'self' com.example.app:"


async def test_a_wrong_password_says_so_and_counts_down(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    first = await flow.login(response.headers["location"], password="wrong")
    assert first.status_code == 401
    assert "Wrong user name or password." in first.text
    assert 'role="alert"' in first.text
    assert 'aria-invalid="true"' in first.text
    # The user name stays; the password field has the focus.
    assert 'value="alice" aria-describedby="error"' in first.text
    assert 'autocomplete="current-password" required autofocus' in first.text
    # login_max_failures is 3 in the tests: two left after the first failure.
    assert "After 2 more failed attempts, signing in is paused for 15 minutes." in first.text
    second = await flow.login(response.headers["location"], password="wrong")
    assert "After 1 more failed attempt, signing in is paused" in second.text
    # The same request still works with the right password.
    done = await flow.login(response.headers["location"])
    assert done.status_code == 302


async def test_a_locked_out_user_is_told_until_when(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    for _ in range(3):
        await flow.login(response.headers["location"], password="wrong")
    blocked = await flow.login(response.headers["location"])
    assert blocked.status_code == 429
    retry_after = int(blocked.headers["retry-after"])
    assert 890 <= retry_after <= 900
    assert "Too many failed attempts." in blocked.text
    assert re.search(r"Signing in is paused until \d\d:\d\d UTC \(in about 15 minutes\)", blocked.text)


async def test_an_expired_request_offers_to_start_over(flow, service):
    client = await flow.register()
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge)
    page = await flow.http.get(response.headers["location"])
    fields = dict(re.findall(r'name="(request|csrf|restart)" value="([^"]*)"', page.text))
    await service.redis.delete(f"mcpgw:authreq:{fields['request']}")  # as if 10 minutes went by
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    expired = await flow.http.post(
        "/login", data={**fields, "username": "alice", "password": "alice-password"}
    )
    assert expired.status_code == 400
    assert "This sign-in request has expired" in expired.text
    start_over = re.search(r'<a class="button" href="([^"]+)">Start over</a>', expired.text).group(1)
    start_over = start_over.replace("&amp;", "&")
    assert start_over.startswith("/authorize?")
    # The same request again: same client, redirect URI, state, PKCE challenge and resource.
    again = await flow.http.get(start_over)
    assert again.status_code == 302, again.text
    done = await flow.login(again.headers["location"])
    assert done.status_code == 302
    query = parse_qs(urlparse(done.headers["location"]).query)
    assert done.headers["location"].startswith(REDIRECT_URI)
    assert query["state"] == ["state-123"]
    token = await flow.token(client["client_id"], query["code"][0], verifier)
    assert token.status_code == 200, token.text


async def test_start_over_only_carries_authorization_parameters(flow):
    forged = "client_id=x&redirect_uri=https://evil.example/cb&prompt=none&extra=1&" + "a" * 5000
    response = await flow.http.post("/login", data={"request": "gone", "restart": forged})
    assert response.status_code == 400
    assert "Start over" not in response.text
    response = await flow.http.post(
        "/login", data={"request": "gone", "restart": "client_id=x&prompt=none&javascript:alert(1)=2"}
    )
    link = re.search(r'href="([^"]+)">Start over', response.text).group(1)
    assert link == "/authorize?client_id=x"


# -- local and an upstream provider side by side ---------------------------------------------------


@pytest.fixture
async def both(redis_server, key_file) -> AsyncIterator[GatewayAuth]:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    settings = make_settings(
        redis_server,
        key_file,
        identity_providers=["local", "github"],
        github={**GITHUB_CONFIG, "user_id_prefix": "github:"},
        gateway_name="Example Corp MCP",
    )
    app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    app.upstreams.logins["github"].transport = httpx2.MockTransport(FakeGitHub())
    yield app
    await redis.aclose()


@pytest.fixture
async def both_flow(both) -> AsyncIterator[Flow]:
    transport = httpx2.ASGITransport(app=both, client=("203.0.113.7", 50000))
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Flow(http)


async def test_local_form_and_upstream_button_on_one_page(both_flow):
    client = await both_flow.register()
    response = await both_flow.authorize(client["client_id"], pkce_pair()[1])
    page = await both_flow.http.get(response.headers["location"])
    assert page.status_code == 200
    assert "<header>Example Corp MCP</header>" in page.text
    assert '<form method="post" action="/login">' in page.text
    button = re.search(r'<a class="button secondary" href="([^"]+)">Sign in with GitHub</a>', page.text)
    assert button, page.text
    upstream = await both_flow.http.get(button.group(1).replace("&amp;", "&"))
    assert upstream.status_code == 302
    assert upstream.headers["location"].startswith("https://github.com/login/oauth/authorize?")
    # The local form still works on the same page.
    done = await both_flow.login(response.headers["location"])
    assert done.status_code == 302


async def test_upstream_user_ids_carry_their_prefix(both_flow, both):
    client = await both_flow.register()
    verifier, challenge = pkce_pair()
    response = await both_flow.authorize(client["client_id"], challenge)
    upstream = await both_flow.http.get(f"/login/github?request={_request_id(response)}")
    state = parse_qs(urlparse(upstream.headers["location"]).query)["state"][0]
    done = await both_flow.consent(
        await both_flow.http.get("/callback", params={"code": "9a4c2b1e0f", "state": state})
    )
    assert done.status_code == 302, done.text
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    tokens = (await both_flow.token(client["client_id"], code, verifier)).json()
    claims = both.key.decode(tokens["access_token"], ISSUER)
    assert claims["sub"] == "github:583231"


def _request_id(authorize: httpx2.Response) -> str:
    return parse_qs(urlparse(authorize.headers["location"]).query)["request"][0]


async def test_an_unknown_provider_is_404(both_flow):
    response = await both_flow.http.get("/login/saml", params={"request": "x"})
    assert response.status_code == 404
    assert "Example Corp MCP" in response.text
