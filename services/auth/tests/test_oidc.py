"""identity_provider: oidc, against a real OpenID provider (panva/oidc-provider, tests/oidc-provider).

The provider runs as `node server.mjs` on a loopback port for the session; the service
talks to it over real HTTP (discovery, JWKS, token, userinfo). The browser is an httpx2
client: the service through its ASGI transport, the provider over HTTP; the test posts the
provider's login and consent forms.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.keys import SigningKey

from .conftest import FETCH, ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair

pytestmark = pytest.mark.anyio

PROVIDER_DIR = Path(__file__).parent / "oidc-provider"
CLIENT_ID = "mcp-gateway"
CLIENT_SECRET = "oidc-client-secret-" + secrets.token_hex(8)
TEAM = "team.gateway.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    """panva/oidc-provider (the version pinned in tests/oidc-provider/package.json)."""
    node = shutil.which("node")
    assert node, "node is not installed: the oidc tests need Node.js 20 or later"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            f"{PROVIDER_DIR}/node_modules is missing: `make unit` installs it (npm ci in that directory)"
        )
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    # A file, not a pipe: nobody reads it while the tests run, and a full pipe would block node.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [node, "server.mjs", str(port), f"{ISSUER}/callback", CLIENT_ID, CLIENT_SECRET],
            cwd=PROVIDER_DIR,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            _wait_for(issuer, proc, errors)
            yield issuer
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for(issuer: str, proc: subprocess.Popen, errors) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx2.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            errors.seek(0)
            raise RuntimeError(f"oidc-provider did not start: {errors.read().decode()[-2000:]}")
        time.sleep(0.1)


def oidc_config(issuer: str, **overrides) -> dict:
    return {
        "discovery_url": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile", "groups"],
        "allowed_subjects": ["alice"],
        "allowed_emails": ["bob@example.org", "carol@example.org"],
        "allowed_groups": ["engineering"],
        **overrides,
    }


@pytest.fixture
async def make_browser(redis_server, key_file, oidc_issuer):
    """A service configured for the provider, and a browser for it."""
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    clients: list[httpx2.AsyncClient] = []

    async def make(app: GatewayAuth | None = None, **oidc_overrides) -> tuple[GatewayAuth, Flow]:
        """A new service (or `app` again) with a new browser: no cookies, no provider session."""
        if app is None:
            settings = make_settings(
                redis_server,
                key_file,
                identity_providers=["oidc"],
                oidc=oidc_config(oidc_issuer, **oidc_overrides),
                resources=[{"host": FETCH}, {"host": TEAM, "allowed_groups": ["engineering"]}],
            )
            app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
        service = httpx2.ASGITransport(app=app, client=("203.0.113.7", 50000))
        http = httpx2.AsyncClient(base_url=ISSUER, mounts={ISSUER: service}, trust_env=False)
        clients.append(http)
        return app, Flow(http)

    yield make
    for http in clients:
        await http.aclose()
    await redis.aclose()


@pytest.fixture
async def flow(make_browser) -> Flow:
    return (await make_browser())[1]


async def follow(http: httpx2.AsyncClient, response: httpx2.Response) -> httpx2.Response:
    """Follow redirects like a browser, stopping before our /callback and the MCP client."""
    while response.is_redirect:
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith((f"{ISSUER}/callback", REDIRECT_URI)):
            break
        response = await http.get(location)
    return response


async def submit(http: httpx2.AsyncClient, page: httpx2.Response, **fields: str) -> httpx2.Response:
    assert page.status_code == 200, page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return await follow(http, await http.post(urljoin(str(page.url), action), data={**hidden, **fields}))


async def sign_in_upstream(flow: Flow, username: str, resource: str = f"https://{FETCH}/mcp"):
    """Up to the provider's redirect to our /callback: (client, verifier, callback URL, upstream query)."""
    client = await flow.register()
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge, resource=resource)
    assert response.status_code == 302, response.text
    login = await flow.http.get(response.headers["location"])
    assert login.status_code == 302, login.text
    upstream = {k: v[0] for k, v in parse_qs(urlparse(login.headers["location"]).query).items()}
    page = await follow(flow.http, login)
    assert 'name="login"' in page.text, page.text
    consent = await submit(flow.http, page, login=username, password="any")
    back = await submit(flow.http, consent) if consent.status_code == 200 else consent
    assert back.is_redirect, back.text
    callback = urljoin(str(back.url), back.headers["location"])
    assert callback.startswith(f"{ISSUER}/callback?")
    return client, verifier, callback, upstream


async def sign_in(flow: Flow, username: str, resource: str = f"https://{FETCH}/mcp"):
    client, verifier, callback, _ = await sign_in_upstream(flow, username, resource)
    done = await flow.consent(await flow.http.get(callback))
    return client, verifier, done


async def token_for(flow: Flow, username: str, resource: str = f"https://{FETCH}/mcp") -> str:
    client, verifier, done = await sign_in(flow, username, resource)
    assert done.status_code == 302, done.text
    assert done.headers["location"].startswith(REDIRECT_URI)
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    response = await flow.token(client["client_id"], code, verifier, resource=resource)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def test_upstream_request_uses_pkce_state_and_nonce(flow, oidc_issuer):
    _, _, callback, upstream = await sign_in_upstream(flow, "alice")
    assert upstream["code_challenge_method"] == "S256"
    assert len(upstream["code_challenge"]) == 43
    assert len(upstream["state"]) >= 32
    assert len(upstream["nonce"]) >= 32
    assert upstream["redirect_uri"] == f"{ISSUER}/callback"
    assert upstream["scope"] == "openid email profile groups"
    answer = parse_qs(urlparse(callback).query)
    assert answer["state"] == [upstream["state"]]
    assert answer["iss"] == [oidc_issuer]


async def test_allowed_by_subject_and_the_token_works_at_verify(flow, caplog):
    caplog.set_level(logging.DEBUG, logger="mcp_gateway_auth")
    token = await token_for(flow, "alice")
    verified = await flow.verify(token)
    assert verified.status_code == 200
    assert verified.headers["x-user-id"] == "alice"
    assert verified.headers["x-user-name"] == "Alice Upstream"
    ours = [record for record in caplog.records if record.name.startswith("mcp_gateway_auth")]
    assert any(record.getMessage() == "login" and record.user == "alice" for record in ours)
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in ours)
    assert CLIENT_SECRET not in logged
    assert token not in logged
    assert "eyJ" not in logged  # no ID token, no JWT at all


async def test_allowed_by_verified_email(flow):
    token = await token_for(flow, "bob")  # Bob@Example.org: compared in lower case
    assert (await flow.verify(token)).headers["x-user-id"] == "bob"


async def test_an_unverified_email_does_not_count(flow):
    _, _, done = await sign_in(flow, "carol")
    assert done.status_code == 403
    assert "carol@example.org may not use this gateway" in done.text


async def test_allowed_by_group_and_the_group_reaches_the_token(make_browser):
    app, flow = await make_browser()
    token = await token_for(flow, "erin", resource=f"https://{TEAM}/mcp")
    verified = await flow.verify(token, host=TEAM)
    assert verified.status_code == 200
    assert verified.headers["x-user-name"] == "Erin Engineer"
    # alice is let in by her subject, but is not in the team's group.
    _, other = await make_browser(app)
    alice = await token_for(other, "alice", resource=f"https://{TEAM}/mcp")
    assert (await other.verify(alice, host=TEAM)).status_code == 403


async def test_a_user_on_no_list_is_refused(flow):
    _client, _, done = await sign_in(flow, "dave")
    assert done.status_code == 403
    assert done.headers["content-type"].startswith("text/html")
    assert "location" not in done.headers


async def test_a_state_mismatch_is_refused(flow):
    _, _, callback, _ = await sign_in_upstream(flow, "alice")
    forged = re.sub(r"state=[^&]+", "state=" + secrets.token_urlsafe(32), callback)
    assert (await flow.http.get(forged)).status_code == 400
    # The genuine answer still completes (the forged one did not burn it).
    assert (await flow.consent(await flow.http.get(callback))).status_code == 302


async def test_a_nonce_mismatch_is_refused(make_browser):
    app, flow = await make_browser()
    _, _, callback, upstream = await sign_in_upstream(flow, "alice")
    record = await app.store.get_upstream_state(upstream["state"])
    await app.store.put_upstream_state(upstream["state"], {**record, "nonce": "another-nonce"}, 60)
    done = await flow.http.get(callback)
    assert done.status_code == 400
    assert "could not be verified" in done.text


async def test_a_wrong_client_secret_fails_the_token_exchange(make_browser):
    _, flow = await make_browser(client_secret="not-the-secret")
    _, _, done = await sign_in(flow, "alice")
    assert done.status_code == 400
    assert "did not confirm" in done.text


async def test_discovery_is_fetched_once(make_browser):
    app, flow = await make_browser()
    await token_for(flow, "alice")
    metadata, keys = app.upstreams.logins["oidc"]._metadata, app.upstreams.logins["oidc"]._keys
    assert metadata is not None
    assert keys is not None
    _, other = await make_browser(app)
    await token_for(other, "bob")
    assert app.upstreams.logins["oidc"]._metadata is metadata
    assert app.upstreams.logins["oidc"]._keys is keys
