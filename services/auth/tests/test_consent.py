"""The consent page: after a sign-in, the user approves (or denies) a client they have not
approved before for that MCP server. Required when people sign in through a third party
with the gateway's one client id (github, oidc: otherwise a self-registered client rides on
the user's earlier approval there, the confused deputy of the MCP security best
practices); the default asks for every identity provider."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import ConfigError
from mcp_gateway_auth.keys import SigningKey

from .conftest import ECHO, FETCH, ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair
from .test_github import GITHUB_CONFIG, FakeGitHub
from .test_sign_in_page import csp

pytestmark = pytest.mark.anyio

WEB_REDIRECT = "https://app.example.com/callback"


@pytest.fixture
async def make_flow(redis_server, key_file) -> AsyncIterator:
    """A flow against a service with settings of the test's choosing, GitHub beside local."""
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    clients: list[httpx2.AsyncClient] = []

    async def make(**overrides) -> Flow:
        settings = make_settings(
            redis_server,
            key_file,
            identity_providers=["local", "github"],
            github={**GITHUB_CONFIG, "user_id_prefix": "github:"},
            **overrides,
        )
        app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
        app.upstreams.logins["github"].transport = httpx2.MockTransport(FakeGitHub())
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("203.0.113.7", 1)), base_url=ISSUER
        )
        clients.append(http)
        return Flow(http)

    yield make
    for http in clients:
        await http.aclose()
    await redis.aclose()


async def sign_in(
    flow: Flow, client: dict | None = None, username="alice", redirect_uri=REDIRECT_URI, **extra
):
    """Register (unless given a client), authorize and sign in; the answer to the password,
    before any consent."""
    client = client or await flow.register(redirect_uris=[redirect_uri])
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge, redirect_uri=redirect_uri, **extra)
    assert response.status_code == 302, response.text
    return client, verifier, await flow.login(response.headers["location"], username=username, consent=None)


async def sign_in_with_github(flow: Flow, client: dict | None = None) -> httpx2.Response:
    client = client or await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    request_id = parse_qs(urlparse(response.headers["location"]).query)["request"][0]
    upstream = await flow.http.get(f"/login/github?request={request_id}")
    state = parse_qs(urlparse(upstream.headers["location"]).query)["state"][0]
    return await flow.http.get("/callback", params={"code": "9a4c2b1e0f", "state": state})


def asks_for_consent(response: httpx2.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith(
        f"{ISSUER}/consent?request="
    )


def fields(page: httpx2.Response) -> dict[str, str]:
    return dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))


# -- the page ---------------------------------------------------------------------------------------


async def test_a_sign_in_leads_to_the_consent_page_which_says_who_asks_for_what(make_flow):
    flow = await make_flow()
    client = await flow.register(client_name="Claude Desktop")
    _, _, signed_in = await sign_in(flow, client)
    assert asks_for_consent(signed_in), signed_in.text
    page = await flow.http.get(signed_in.headers["location"])
    assert page.status_code == 200
    assert "<title>Allow access? - MCP gateway</title>" in page.text
    assert "<strong>Claude Desktop</strong> asks to use an MCP server as you." in page.text
    assert "self-registered: nobody checked this name" in page.text
    assert f"https://{FETCH}/mcp" in page.text
    assert "an application on this computer (127.0.0.1:33418)" in page.text
    assert "You are signed in as <strong>Alice A.</strong> (alice)." in page.text
    assert '<button type="submit" name="decision" value="allow">Allow</button>' in page.text
    assert '<button type="submit" name="decision" value="deny" class="secondary">Deny</button>' in page.text
    assert "<script" not in page.text
    policy = csp(page)
    # Allow redirects to the client's loopback listener: form-action must let it through.
    assert policy["form-action"] == "'self' http://127.0.0.1:33418"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["cache-control"] == "no-store"


async def test_allow_sends_the_code_to_the_client(make_flow):
    flow = await make_flow()
    client, verifier, signed_in = await sign_in(flow)
    assert asks_for_consent(signed_in)
    done = await flow.consent(signed_in, "allow")
    assert done.status_code == 302
    assert done.headers["location"].startswith(REDIRECT_URI + "?")
    query = parse_qs(urlparse(done.headers["location"]).query)
    assert query["state"] == ["state-123"]
    assert query["iss"] == [ISSUER]
    token = await flow.token(client["client_id"], query["code"][0], verifier)
    assert token.status_code == 200, token.text


async def test_the_client_name_is_escaped(make_flow):
    flow = await make_flow()
    client = await flow.register(client_name="<script>alert(1)</script>")
    _, _, signed_in = await sign_in(flow, client)
    page = await flow.http.get(signed_in.headers["location"])
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- remembered approvals ----------------------------------------------------------------------------


async def test_an_approval_is_remembered_per_user_client_and_resource(make_flow):
    flow = await make_flow()
    client, _, signed_in = await sign_in(flow)
    assert (await flow.consent(signed_in)).status_code == 302
    # The same user, client and MCP server: straight back to the client.
    _, _, again = await sign_in(flow, client)
    assert again.status_code == 302
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")
    # Another MCP server, another user, another client: asked.
    assert asks_for_consent((await sign_in(flow, client, resource=f"https://{ECHO}/mcp"))[2])
    assert asks_for_consent((await sign_in(flow, client, username="bob"))[2])
    assert asks_for_consent((await sign_in(flow))[2])


async def test_a_denial_is_not_remembered(make_flow):
    flow = await make_flow()
    client, _, signed_in = await sign_in(flow)
    await flow.consent(signed_in, "deny")
    assert asks_for_consent((await sign_in(flow, client))[2])


async def test_an_approval_expires_after_consent_ttl(make_flow):
    flow = await make_flow(consent_ttl=1)
    client, _, signed_in = await sign_in(flow)
    await flow.consent(signed_in)
    await anyio.sleep(1.2)
    assert asks_for_consent((await sign_in(flow, client))[2])


async def test_a_client_that_changes_its_redirect_uri_is_asked_again(make_flow):
    """An approval covers the redirect URI it was given for: a client that updates its
    registration (RFC 7592) to send codes elsewhere does not ride on it."""
    flow = await make_flow()
    client, _, signed_in = await sign_in(flow)
    await flow.consent(signed_in)
    other = "http://127.0.0.1:40000/callback"
    body = {
        k: v
        for k, v in client.items()
        if k not in ("registration_access_token", "registration_client_uri", "client_id_issued_at")
    }
    updated = await flow.http.put(
        client["registration_client_uri"],
        json={**body, "redirect_uris": [REDIRECT_URI, other]},
        headers={"Authorization": f"Bearer {client['registration_access_token']}"},
    )
    assert updated.status_code == 200, updated.text
    assert asks_for_consent((await sign_in(flow, client, redirect_uri=other))[2])
    assert (await sign_in(flow, client))[2].status_code == 302


# -- deny ---------------------------------------------------------------------------------------------


async def test_deny_sends_access_denied_to_a_client_on_this_computer(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow)
    denied = await flow.consent(signed_in, "deny")
    assert denied.status_code == 302
    query = parse_qs(urlparse(denied.headers["location"]).query)
    assert denied.headers["location"].startswith(REDIRECT_URI + "?")
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-123"]
    assert query["iss"] == [ISSUER]
    assert "code" not in query


async def test_deny_for_a_redirect_nobody_vouched_for_ends_on_our_page(make_flow):
    """The existing rule for error redirects (RFC 9700 4.11.2): a self-registered web
    redirect URI gets no automatic redirect, the person gets our page."""
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow, redirect_uri=WEB_REDIRECT)
    page = await flow.http.get(signed_in.headers["location"])
    assert csp(page)["form-action"] == "'self' https://app.example.com"
    denied = await flow.consent(signed_in, "deny")
    assert denied.status_code == 200
    assert "location" not in denied.headers
    assert "<h1>Access denied</h1>" in denied.text
    assert "app.example.com gets no access" in denied.text


async def test_allow_for_a_web_redirect_goes_there(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow, redirect_uri=WEB_REDIRECT)
    assert asks_for_consent(signed_in)
    done = await flow.consent(signed_in, "allow")
    assert done.status_code == 302
    assert done.headers["location"].startswith(WEB_REDIRECT + "?code=")


# -- the form's protection ------------------------------------------------------------------------------


async def test_the_answer_needs_the_csrf_token(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow)
    page = await flow.http.get(signed_in.headers["location"])
    for csrf in ("", "wrong", "é" * 43):
        forged = await flow.http.post("/consent", data={**fields(page), "csrf": csrf, "decision": "allow"})
        assert forged.status_code == 403
        assert "location" not in forged.headers
    # The real form still works.
    assert (await flow.http.post("/consent", data={**fields(page), "decision": "allow"})).status_code == 302


async def test_the_answer_must_come_from_the_browser_that_signed_in(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow)
    page = await flow.http.get(signed_in.headers["location"])
    async with httpx2.AsyncClient(transport=flow.http._transport, base_url=ISSUER) as other:
        assert (await other.get(signed_in.headers["location"])).status_code == 403
        stolen = await other.post("/consent", data={**fields(page), "decision": "allow"})
        assert stolen.status_code == 403
        assert "location" not in stolen.headers
    assert (await flow.http.post("/consent", data={**fields(page), "decision": "allow"})).status_code == 302


async def test_an_answer_is_used_once(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow)
    page = await flow.http.get(signed_in.headers["location"])
    assert (await flow.http.post("/consent", data={**fields(page), "decision": "allow"})).status_code == 302
    again = await flow.http.post("/consent", data={**fields(page), "decision": "allow"})
    assert again.status_code == 400
    assert "expired" in again.text


async def test_an_unknown_or_expired_consent_request_says_so(make_flow):
    flow = await make_flow()
    for response in (
        await flow.http.get("/consent", params={"request": "unknown"}),
        await flow.http.post("/consent", data={"request": "unknown", "csrf": "x", "decision": "allow"}),
    ):
        assert response.status_code == 400
        assert "This request has expired" in response.text


async def test_an_answer_that_is_neither_allow_nor_deny_is_refused(make_flow):
    flow = await make_flow()
    _, _, signed_in = await sign_in(flow)
    page = await flow.http.get(signed_in.headers["location"])
    response = await flow.http.post("/consent", data={**fields(page), "decision": "maybe"})
    assert response.status_code == 400
    assert (await flow.http.post("/consent", data={**fields(page), "decision": "allow"})).status_code == 302


# -- upstream identities and the modes ---------------------------------------------------------------------


async def test_github_sign_ins_ask_for_consent(make_flow):
    flow = await make_flow()
    back = await sign_in_with_github(flow)
    assert asks_for_consent(back), back.text
    page = await flow.http.get(back.headers["location"])
    assert "You are signed in as <strong>octocat</strong> (github:583231)." in page.text
    done = await flow.consent(back)
    assert done.headers["location"].startswith(REDIRECT_URI + "?code=")


async def test_consent_upstream_asks_for_github_sign_ins_only(make_flow):
    flow = await make_flow(consent="upstream")
    _, _, local = await sign_in(flow)
    assert local.status_code == 302
    assert local.headers["location"].startswith(REDIRECT_URI + "?code=")
    assert asks_for_consent(await sign_in_with_github(flow))


async def test_consent_never_asks_nobody(make_flow):
    flow = await make_flow(consent="never")
    assert (await sign_in(flow))[2].headers["location"].startswith(REDIRECT_URI + "?code=")
    assert (await sign_in_with_github(flow)).headers["location"].startswith(REDIRECT_URI + "?code=")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"consent": "sometimes"}, "'consent' must be one of always, upstream, never"),
        ({"consent": True}, "'consent' must be one of always, upstream, never"),
        ({"consent_ttl": 0}, "'consent_ttl' must be an integer of at least 1"),
    ],
)
def test_consent_settings_errors_name_the_key(key_file, overrides, message):
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        make_settings("redis://127.0.0.1:1/0", key_file, **overrides)
    assert message in str(error.value)


def test_consent_defaults_to_always_for_30_days(key_file):
    settings = make_settings("redis://127.0.0.1:1/0", key_file)
    assert (settings.consent, settings.consent_ttl) == ("always", 2592000)
