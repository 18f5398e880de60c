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
from mcp_gateway_auth.config import ConfigError
from mcp_gateway_auth.keys import SigningKey
from mcp_gateway_auth.upstream import BROWSER_COOKIE, s256

from .conftest import ECHO, FETCH, ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair

pytestmark = pytest.mark.anyio

RECORDED = Path(__file__).parent / "fixtures" / "github"
CLIENT_SECRET = "github-client-secret-0123456789abcdef"
GITHUB_TOKEN = json.loads((RECORDED / "access_token.json").read_text())["access_token"]


class FakeGitHub:
    """github.com and api.github.com as recorded; remembers what the service sent."""

    def __init__(self) -> None:
        self.user = "user_octocat.json"
        self.token_answer = "access_token.json"
        # GET /user/memberships/orgs/<org>: (status, answer file); any other org: 404.
        self.memberships: dict[str, tuple[int, str]] = {}
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
        if request.url.host == "api.github.com" and request.url.path.startswith("/user/memberships/orgs/"):
            if request.headers.get("authorization") != f"Bearer {GITHUB_TOKEN}":
                return httpx2.Response(401, json={"message": "Bad credentials"})
            org = request.url.path.rsplit("/", 1)[1]
            status, answer = self.memberships.get(org, (404, "membership_not_found.json"))
            return httpx2.Response(status, content=(RECORDED / answer).read_bytes())
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
    # Without allowed_orgs, no scope at all: the public profile needs none.
    assert "scope" not in upstream

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
    # GitHub's numeric id is the user id (a login can be renamed, and then taken by someone
    # else); the login is the name.
    assert verified.headers["x-user-id"] == "583231"
    assert verified.headers["x-user-name"] == "octocat"
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


# -- allowed_orgs -------------------------------------------------------------------------------------


@pytest.fixture
async def org_service(redis_server, key_file, github) -> AsyncIterator[GatewayAuth]:
    """Octocat by login, and every active member of octo-org."""
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    config = {**GITHUB_CONFIG, "allowed_orgs": ["Octo-Org", "other-org"], "user_id_prefix": "gh:"}
    settings = make_settings(
        redis_server,
        key_file,
        identity_providers=["github"],
        github=config,
        resources=[{"host": FETCH}, {"host": ECHO, "allowed_groups": ["gh:octo-org"]}],
    )
    app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    app.upstreams.logins["github"].transport = httpx2.MockTransport(github)
    yield app
    await redis.aclose()


@pytest.fixture
async def org_flow(org_service) -> AsyncIterator[Flow]:
    async with browser(org_service) as http:
        yield Flow(http)


async def org_sign_in(flow: Flow, resource: str = f"https://{FETCH}/mcp") -> httpx2.Response:
    client, verifier, upstream = await start(flow, resource=resource)
    assert upstream["scope"] == "read:org"
    done = await flow.consent(
        await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    )
    if done.status_code != 302:
        return done
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    token = await flow.token(client["client_id"], code, verifier, resource=resource)
    assert token.status_code == 200, token.text
    return token


async def test_an_active_member_of_an_allowed_org_signs_in(org_flow, github):
    github.user = "user_mallory.json"
    github.memberships["octo-org"] = (200, "membership_octo-org_active.json")
    token = await org_sign_in(org_flow, resource=f"https://{ECHO}/mcp")
    verified = await org_flow.verify(token.json()["access_token"], host=ECHO)
    # The org is a group (with the provider's prefix): echo allows the group gh:octo-org.
    assert verified.status_code == 200
    assert verified.headers["x-user-id"] == "gh:98765432"
    assert verified.headers["x-user-name"] == "mallory-dev"
    # Membership was asked with the user's own token, for each allowed org, in lower case.
    asked = [r.url.path for r in github.requests if r.url.path.startswith("/user/memberships/")]
    assert asked == ["/user/memberships/orgs/octo-org", "/user/memberships/orgs/other-org"]


@pytest.mark.parametrize(
    "membership",
    [
        None,  # 404: no membership (or no such organization)
        (200, "membership_octo-org_pending.json"),  # invited, not yet a member
        (403, "membership_oauth_app_restricted.json"),  # the org restricts OAuth apps
    ],
)
async def test_anyone_else_is_refused(org_flow, github, membership, caplog):
    caplog.set_level(logging.INFO)
    github.user = "user_mallory.json"
    if membership:
        github.memberships["octo-org"] = membership
    refused = await org_sign_in(org_flow)
    assert refused.status_code == 403
    assert "The GitHub account mallory-dev may not use this gateway." in refused.text
    assert "location" not in refused.headers
    assert GITHUB_TOKEN not in caplog.text


async def test_an_allowed_login_needs_no_org_but_gets_its_groups(org_flow, github):
    github.memberships["octo-org"] = (200, "membership_octo-org_active.json")
    token = await org_sign_in(org_flow, resource=f"https://{ECHO}/mcp")
    assert (await org_flow.verify(token.json()["access_token"], host=ECHO)).status_code == 200
    github.memberships.clear()
    token = await org_sign_in(org_flow, resource=f"https://{ECHO}/mcp")
    # octocat is allowed by login, but not in the group echo asks for.
    assert (await org_flow.verify(token.json()["access_token"], host=ECHO)).status_code == 403


async def test_github_failing_to_answer_about_membership_is_502(org_flow, github):
    github.user = "user_mallory.json"
    github.memberships["octo-org"] = (500, "membership_not_found.json")
    failed = await org_sign_in(org_flow)
    assert failed.status_code == 502


async def test_a_user_without_a_numeric_id_is_refused(flow, github, tmp_path):
    answer = json.loads((RECORDED / "user_octocat.json").read_text())
    del answer["id"]
    (tmp_path / "no_id.json").write_text(json.dumps(answer))
    github.user = str(tmp_path / "no_id.json")  # RECORDED / an absolute path is that path
    _, _, upstream = await start(flow)
    done = await flow.http.get("/callback", params={"code": "c0de", "state": upstream["state"]})
    assert done.status_code == 502


@pytest.mark.parametrize(
    ("github_config", "message"),
    [
        (
            {**GITHUB_CONFIG, "allowed_users": []},
            "'github.allowed_users' and 'github.allowed_orgs' must not both be empty",
        ),
        ({**GITHUB_CONFIG, "allowed_orgs": "octo-org"}, "'github.allowed_orgs' must be a list"),
        ({**GITHUB_CONFIG, "allowed_orgs": ["octo org"]}, "'github.allowed_orgs' entry 'octo org' is not"),
    ],
)
def test_github_settings_errors_name_the_key(key_file, github_config, message):
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        make_settings("redis://127.0.0.1:1/0", key_file, identity_providers=["github"], github=github_config)
    assert message in str(error.value)


def test_an_org_alone_is_enough(key_file):
    config = {**GITHUB_CONFIG, "allowed_users": [], "allowed_orgs": ["Octo-Org"]}
    settings = make_settings("redis://127.0.0.1:1/0", key_file, identity_providers=["github"], github=config)
    assert settings.github.allowed_orgs == ("octo-org",)
