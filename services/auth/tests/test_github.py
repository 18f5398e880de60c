"""identity_provider: github, with GitHub's recorded answers served by an httpx2.MockTransport.

(respx only patches `httpx`; the service uses `httpx2`, the MCP SDK's HTTP client, so the
mock transport is injected into the upstream login instead.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.keys import SigningKey
from mcp_gateway_auth.upstream import BROWSER_COOKIE, s256

from .conftest import ECHO, ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair

pytestmark = pytest.mark.anyio

RECORDED = Path(__file__).parent / "fixtures" / "github"
CLIENT_SECRET = "github-client-secret-0123456789abcdef"
GITHUB_TOKEN = json.loads((RECORDED / "access_token.json").read_text())["access_token"]


class FakeGitHub:
    """github.com and api.github.com as recorded; remembers what the service sent."""

    def __init__(self) -> None:
        self.user = "user_octocat.json"
        self.token_answer = "access_token.json"
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.host == "github.com" and request.url.path == "/login/oauth/access_token":
            assert request.method == "POST"
            return httpx2.Response(200, content=(RECORDED / self.token_answer).read_bytes())
        if request.url.host == "api.github.com" and request.url.path == "/user":
            if request.headers.get("authorization") != f"Bearer {GITHUB_TOKEN}":
                return httpx2.Response(401, json={"message": "Bad credentials"})
            return httpx2.Response(200, content=(RECORDED / self.user).read_bytes())
        return httpx2.Response(404, json={"message": "Not Found"})


GITHUB_CONFIG = {
    "client_id": "Iv1.8a61f9b3a7aba766",
    "client_secret": CLIENT_SECRET,
    # Case-insensitive: GitHub says "octocat".
    "allowed_users": ["OctoCat", "someone-else"],
}


@pytest.fixture
def github() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
async def service(redis_server, key_file, github) -> AsyncIterator[GatewayAuth]:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    settings = make_settings(redis_server, key_file, identity_providers=["github"], github=GITHUB_CONFIG)
    app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    app.upstreams.logins["github"].transport = httpx2.MockTransport(github)
    yield app
    await redis.aclose()


def browser(service: GatewayAuth) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=service, client=("203.0.113.7", 50000))
    return httpx2.AsyncClient(transport=transport, base_url=ISSUER)


async def start(flow: Flow, resource: str | None = None) -> tuple[dict, str, dict]:
    """Register, authorize, follow /login: returns the client, its verifier, GitHub's query."""
    client = await flow.register()
    verifier, challenge = pkce_pair()
    extra = {"resource": resource} if resource else {}
    response = await flow.authorize(client["client_id"], challenge, **extra)
    assert response.status_code == 302, response.text
    login = await flow.http.get(response.headers["location"])
    assert login.status_code == 302, login.text
    location = urlparse(login.headers["location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}" == "https://github.com/login/oauth/authorize"
    )
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"{BROWSER_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Path=/callback" in cookie
    assert "secure" in cookie.lower()
    return client, verifier, {k: v[0] for k, v in parse_qs(location.query).items()}


async def test_allowed_user_gets_a_code_and_a_token(flow, github, service, caplog):
    caplog.set_level(logging.INFO)
    client, verifier, upstream = await start(flow)
    assert upstream["client_id"] == GITHUB_CONFIG["client_id"]
    assert upstream["redirect_uri"] == f"{ISSUER}/callback"
    assert upstream["code_challenge_method"] == "S256"
    assert len(upstream["state"]) >= 32

    done = await flow.consent(
        await flow.http.get("/callback", params={"code": "9a4c2b1e0f", "state": upstream["state"]})
    )
    assert done.status_code == 302, done.text
    assert done.headers["location"].startswith(REDIRECT_URI)
    query = parse_qs(urlparse(done.headers["location"]).query)
    assert query["state"] == ["state-123"]
    assert query["iss"] == [ISSUER]

    exchange, user = github.requests
    sent = parse_qs(exchange.content.decode())
    assert sent["code"] == ["9a4c2b1e0f"]
    assert sent["client_secret"] == [CLIENT_SECRET]
    assert s256(sent["code_verifier"][0]) == upstream["code_challenge"]
    assert exchange.headers["accept"] == "application/json"
    assert user.url == "https://api.github.com/user"

    token = await flow.token(client["client_id"], query["code"][0], verifier)
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    verified = await flow.verify(access)
    assert verified.status_code == 200
    assert verified.headers["x-user-id"] == "octocat"
    assert verified.headers["x-user-name"] == "The Octocat"
    # The JSON logs name the user, never a token or a secret.
    ours = [record for record in caplog.records if record.name.startswith("mcp_gateway_auth")]
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in ours)
    assert "octocat" in logged
    for secret in (GITHUB_TOKEN, CLIENT_SECRET, "9a4c2b1e0f", upstream["state"], access):
        assert secret not in logged


async def test_per_resource_allow_lists_still_apply(flow, github):
    # echo.gateway.test allows only the (local) user id "alice".
    client, verifier, upstream = await start(flow, resource=f"https://{ECHO}/mcp")
    done = await flow.consent(
        await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    )
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    response = await flow.token(client["client_id"], code, verifier, resource=f"https://{ECHO}/mcp")
    assert response.status_code == 200, response.text
    assert (await flow.verify(response.json()["access_token"], host=ECHO)).status_code == 403


async def test_a_user_not_on_the_list_is_refused(flow, github, caplog):
    github.user = "user_mallory.json"
    _, _, upstream = await start(flow)
    done = await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    assert done.status_code == 403
    assert "mallory-dev" in done.text
    assert "may not use this gateway" in done.text
    assert "location" not in done.headers
    assert done.headers["content-type"].startswith("text/html")
    assert GITHUB_TOKEN not in caplog.text


async def test_missing_or_unknown_state_is_refused(flow, github):
    await start(flow)
    assert (await flow.http.get("/callback", params={"code": "c0de"})).status_code == 400
    unknown = await flow.http.get("/callback", params={"code": "c0de", "state": "forged-state"})
    assert unknown.status_code == 400
    assert "expired" in unknown.text
    assert github.requests == []


async def test_a_state_is_used_once(flow, github):
    _, _, upstream = await start(flow)
    first = await flow.consent(
        await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    )
    assert first.status_code == 302
    again = await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    assert again.status_code == 400
    assert len(github.requests) == 2  # token + user, once


async def test_a_callback_from_another_browser_is_refused(flow, github, service):
    _, _, upstream = await start(flow)
    async with browser(service) as other:
        # No cookie at all, then somebody else's cookie.
        refused = await other.get("/callback", params={"code": "c0de", "state": upstream["state"]})
        assert refused.status_code == 403
        other.cookies.set(BROWSER_COOKIE, "x" * 43, domain="auth.gateway.test", path="/callback")
        refused = await other.get("/callback", params={"code": "c0de", "state": upstream["state"]})
        assert refused.status_code == 403
        assert "another browser" in refused.text
    assert github.requests == []
    # The attempt did not burn the sign-in of the browser that started it.
    done = await flow.consent(
        await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    )
    assert done.status_code == 302


async def test_an_upstream_error_is_shown_and_ends_the_sign_in(flow, github):
    _, _, upstream = await start(flow)
    denied = await flow.http.get(
        "/callback",
        params={
            "error": "access_denied",
            "error_description": "The user has denied your application access.",
            "state": upstream["state"],
        },
    )
    assert denied.status_code == 403
    assert "cancelled or refused" in denied.text
    assert github.requests == []
    later = await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    assert later.status_code == 400


async def test_a_failed_token_exchange_is_an_error_page(flow, github, caplog):
    github.token_answer = "access_token_bad_verification_code.json"
    _, _, upstream = await start(flow)
    done = await flow.http.get("/callback", params={"code": "expired", "state": upstream["state"]})
    assert done.status_code == 400
    assert "did not confirm" in done.text
    assert len(github.requests) == 1
    assert any(getattr(r, "error", None) == "bad_verification_code" for r in caplog.records)


async def test_github_unreachable_is_502(flow, service):
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    service.upstreams.logins["github"].transport = httpx2.MockTransport(unreachable)
    _, _, upstream = await start(flow)
    done = await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    assert done.status_code == 502


async def test_the_local_form_is_off(flow):
    assert (await flow.http.post("/login", data={"username": "alice"})).status_code == 405


async def test_expired_request_at_login(flow):
    response = await flow.http.get("/login", params={"request": "unknown"})
    assert response.status_code == 400
