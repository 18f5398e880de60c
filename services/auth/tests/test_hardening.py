"""Issue 13 (Hardening): the auth service's findings, each with tests named after it.

Every test asserts on what a client sees (status codes, headers, JSON error codes, page
text); each failed before its fix.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlsplit

import anyio
import argon2
import bcrypt
import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth import login
from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import ConfigError
from mcp_gateway_auth.endpoints import trusted_redirect
from mcp_gateway_auth.keys import SigningKey

from .conftest import (
    HASHES,
    ISSUER,
    REDIRECT_URI,
    Flow,
    _free_port,
    make_settings,
    pkce_pair,
    write_cli_config,
)

pytestmark = pytest.mark.anyio

# Traefik's fixed address on the public network (inventory/local, Molecule).
TRAEFIK = "172.30.0.2"


@pytest.fixture
async def make_service(redis_server, key_file) -> AsyncIterator:
    """A service with settings of the test's choosing, on an empty Redis."""
    redis = Redis.from_url(redis_server)
    await redis.flushdb()

    def make(**overrides) -> GatewayAuth:
        return GatewayAuth(
            make_settings(redis_server, key_file, **overrides), redis, SigningKey.from_file(key_file)
        )

    yield make
    await redis.aclose()


def client_of(service: GatewayAuth, peer: str = TRAEFIK) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=service, client=(peer, 40000))
    return httpx2.AsyncClient(transport=transport, base_url=ISSUER)


async def login_url(flow: Flow) -> str:
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def login_from(flow: Flow, address: str | None, username: str, password: str) -> httpx2.Response:
    """One sign-in attempt whose browser is at `address` (as Traefik reports it in X-Forwarded-For)."""
    flow.http.headers.pop("X-Forwarded-For", None)
    if address is not None:
        flow.http.headers["X-Forwarded-For"] = address
    return await flow.login(await login_url(flow), username=username, password=password)


# -- finding 1: anyone could lock every user out ------------------------------------------------------


async def test_finding_1_random_usernames_cannot_lock_out_everyone(make_service):
    service = make_service(
        trusted_proxies=["172.30.0.0/24"], login_max_failures=3, login_max_failures_per_address=5
    )
    async with client_of(service) as http:
        flow = Flow(http)
        for _ in range(5):
            failed = await login_from(flow, "198.51.100.66", secrets.token_hex(6), "guess")
            assert failed.status_code == 401
        # The address that sprayed user names is paused ...
        assert (await login_from(flow, "198.51.100.66", "alice", "alice-password")).status_code == 429
        # ... and nobody else: the service sees each browser's own address behind Traefik.
        done = await login_from(flow, "203.0.113.50", "alice", "alice-password")
        assert done.status_code == 302, done.text
        assert (await login_from(flow, "203.0.113.51", "bob", "bob-password")).status_code == 302


async def test_finding_1_failures_from_one_address_lock_only_that_user_there(make_service):
    """Per (user, address) pair: a guesser at one address pauses alice there, not at home."""
    service = make_service(trusted_proxies=[TRAEFIK], login_max_failures=3)
    async with client_of(service) as http:
        flow = Flow(http)
        for _ in range(3):
            assert (await login_from(flow, "198.51.100.66", "alice", "wrong")).status_code == 401
        locked = await login_from(flow, "198.51.100.66", "alice", "alice-password")
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        # bob from the same address still may (the address limit is larger than the pair's) ...
        assert (await login_from(flow, "198.51.100.66", "bob", "bob-password")).status_code == 302
        # ... and alice from her own address too.
        assert (await login_from(flow, "203.0.113.50", "alice", "alice-password")).status_code == 302


async def test_finding_1_a_user_is_paused_everywhere_only_after_many_addresses_failed(make_service):
    """The per-user ceiling: a distributed guesser is stopped, but needs many addresses to do it."""
    service = make_service(trusted_proxies=[TRAEFIK], login_max_failures=3, login_max_failures_per_user=9)
    async with client_of(service) as http:
        flow = Flow(http)
        for attacker in ("198.51.100.1", "198.51.100.2"):
            for _ in range(3):
                assert (await login_from(flow, attacker, "alice", "wrong")).status_code == 401
        # Six failures from two addresses: alice still signs in from her own.
        assert (await login_from(flow, "203.0.113.50", "alice", "alice-password")).status_code == 302
        for _ in range(3):
            assert (await login_from(flow, "198.51.100.3", "alice", "wrong")).status_code == 401
        # Nine, the ceiling: alice is paused everywhere until the window ends, bob is not.
        assert (await login_from(flow, "203.0.113.50", "alice", "alice-password")).status_code == 429
        assert (await login_from(flow, "203.0.113.50", "bob", "bob-password")).status_code == 302


async def test_finding_1_forwarded_for_counts_only_from_a_trusted_proxy(make_service):
    """A client that talks to the service directly cannot choose its address with the header."""
    service = make_service(trusted_proxies=[TRAEFIK], login_max_failures=3, login_max_failures_per_address=3)
    async with client_of(service, peer="192.0.2.9") as http:
        flow = Flow(http)
        for _ in range(3):
            forged = f"203.0.113.{secrets.randbelow(250)}"
            assert (await login_from(flow, forged, secrets.token_hex(6), "guess")).status_code == 401
        assert (await login_from(flow, "203.0.113.251", "alice", "alice-password")).status_code == 429


async def test_finding_1_without_trusted_proxies_the_peer_is_the_address(make_service):
    """The default (no trusted proxy): X-Forwarded-For is ignored, as before."""
    service = make_service(login_max_failures=3, login_max_failures_per_address=3)
    async with client_of(service) as http:
        flow = Flow(http)
        for index in range(3):
            assert (
                await login_from(flow, f"203.0.113.{index}", secrets.token_hex(6), "x")
            ).status_code == 401
        assert (await login_from(flow, "203.0.113.99", "alice", "alice-password")).status_code == 429


async def test_finding_1_ipv6_addresses_count_per_64(make_service):
    """Anyone with IPv6 has a /64 of addresses: they count as one."""
    service = make_service(trusted_proxies=[TRAEFIK], login_max_failures=3, login_max_failures_per_address=3)
    async with client_of(service) as http:
        flow = Flow(http)
        for index in range(3):
            failed = await login_from(flow, f"2001:db8:1:2::{index + 1:x}", secrets.token_hex(6), "x")
            assert failed.status_code == 401
        assert (await login_from(flow, "2001:db8:1:2:ffff::1", "alice", "alice-password")).status_code == 429
        assert (await login_from(flow, "2001:db8:1:3::1", "alice", "alice-password")).status_code == 302


# -- finding 2: Redis could be filled without a login ----------------------------------------------------

GOOD_REGISTRATION = {
    "redirect_uris": ["http://127.0.0.1:33418/callback"],
    "client_name": "test client",
    "token_endpoint_auth_method": "none",
}
LONG_URL = "https://app.example.com/" + "x" * 1000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_name", "x" * 201),
        ("software_id", "x" * 201),
        ("software_version", "x" * 101),
        ("client_uri", LONG_URL),
        ("logo_uri", LONG_URL),
        ("tos_uri", LONG_URL),
        ("policy_uri", LONG_URL),
        ("jwks_uri", LONG_URL),
        ("contacts", [f"admin{index}@example.com" for index in range(6)]),
        ("contacts", ["x" * 250 + "@example.com"]),
        ("redirect_uris", [f"http://127.0.0.1:{8000 + index}/callback" for index in range(11)]),
        ("redirect_uris", ["http://127.0.0.1:33418/" + "x" * 1000]),
        ("scope", " ".join(["mcp"] * 300)),
        ("grant_types", ["authorization_code", "x" * 5000]),
        ("response_types", ["code", "x" * 5000]),
        ("jwks", {"keys": [{"kty": "oct", "k": "x" * 5000}]}),
    ],
)
async def test_finding_2_registration_caps_every_stored_field(client, field, value):
    response = await client.post("/register", json={**GOOD_REGISTRATION, field: value})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_client_metadata"
    assert f"'{field}'" in body["error_description"]


async def test_finding_2_the_largest_allowed_registration_is_accepted(client):
    response = await client.post(
        "/register",
        json={
            **GOOD_REGISTRATION,
            "client_name": "x" * 200,
            "redirect_uris": [f"http://127.0.0.1:{8000 + index}/" + "x" * 970 for index in range(10)],
            "contacts": [f"admin{index}@example.com" for index in range(5)],
            "client_uri": "https://app.example.com/" + "x" * 970,
        },
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "s" * 1025),
        ("scope", " ".join(["mcp"] * 300)),
        ("resource", "https://fetch.gateway.test/" + "x" * 1000),
        ("code_challenge", "x" * 1000),
        ("code_challenge", "!" * 43),
        ("code_challenge", "A" * 42),
        ("client_id", "c" * 3000),
        ("redirect_uri", "http://127.0.0.1:33418/" + "x" * 1000),
    ],
)
async def test_finding_2_authorization_requests_cap_every_stored_parameter(flow, field, value):
    client = await flow.register()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
        "state": "state-123",
        "resource": "https://fetch.gateway.test/mcp",
        field: value,
    }
    for response in (
        await flow.http.get("/authorize", params=params),
        await flow.http.post("/authorize", data=params),
    ):
        # Refused outright: neither stored nor echoed back to a redirect URI.
        assert response.status_code == 400, response.text
        assert "location" not in response.headers
        body = response.json()
        assert body["error"] == "invalid_request"
        assert f"'{field}'" in body["error_description"]
        assert value not in response.text


async def test_finding_2_unused_clients_expire_and_used_ones_stay(make_service):
    service = make_service(client_unused_ttl=1)
    async with client_of(service) as http:
        flow = Flow(http)
        used, tokens = await flow.tokens_for()
        unused = await flow.register()
        await anyio.sleep(1.3)
        # Never used: gone, like any unknown client.
        gone = await flow.authorize(unused["client_id"], pkce_pair()[1])
        assert gone.status_code == 400
        assert "not found" in gone.json()["error_description"]
        # Used: kept for as long as its refresh tokens, renewed on every use.
        refreshed = await flow.refresh(used["client_id"], tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert (await flow.authorize(used["client_id"], pkce_pair()[1])).status_code == 302


# -- finding 2 (request bodies) and finding 3: bodies are capped before they are read ---------------------

CHUNK = 65536


def _asgi_post(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"auth.gateway.test"), *(headers or [])],
        "client": ("203.0.113.7", 50000),
        "server": ("auth.gateway.test", 443),
    }


async def _post_endless_body(service: GatewayAuth, path: str) -> tuple[int, int]:
    """POST a chunked body of 100 chunks to `path`; (status, bytes the service pulled)."""
    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        pulled += CHUNK
        return {"type": "http.request", "body": b"a" * CHUNK, "more_body": pulled < 100 * CHUNK}

    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = _asgi_post(path, [(b"content-type", b"application/x-www-form-urlencoded")])
    await service(scope, receive, send)
    return messages[0]["status"], pulled


async def test_finding_3_revoke_reads_at_most_the_body_cap(make_service):
    service = make_service(max_body_bytes=16384)
    status, pulled = await _post_endless_body(service, "/revoke")
    assert status == 413
    assert pulled <= 16384 + CHUNK


async def test_finding_3_a_large_revocation_request_is_413(make_service):
    service = make_service()
    async with client_of(service) as http:
        response = await http.post("/revoke", data={"token": "t" * (1 << 20), "client_id": "c"})
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/register", "/token", "/authorize", "/login", "/revoke"])
async def test_finding_2_request_bodies_above_the_cap_are_413_before_they_are_read(make_service, path):
    service = make_service(max_body_bytes=16384)
    status, pulled = await _post_endless_body(service, path)
    assert status == 413
    assert pulled <= 16384 + CHUNK
    async with client_of(service) as http:
        declared = await http.post(path, content=b"x" * 20000, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        # Below the cap the endpoint answers as usual (whatever it makes of the body).
        small = await http.post(path, content=b"{}", headers={"Content-Type": "application/json"})
        assert small.status_code != 413


# -- finding 4: login audit events were lost in the server's workers ------------------------------------


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


def test_finding_4_every_worker_logs_json_lines_with_their_fields(redis_server, key_file, tmp_path):
    """`mcp-gateway-auth serve --workers 2`, as in the container: a failed sign-in is one JSON
    line on stdout with its user name and address, and both workers log JSON."""
    config = write_cli_config(
        tmp_path / "config.json",
        redis_server,
        key_file,
        users=[{"username": "alice", "password_hash": HASHES["alice"]}],
        cookie_secure=False,
    )
    port = _free_port()
    stdout = tmp_path / "stdout"
    command = [str(Path(sys.executable).with_name("mcp-gateway-auth")), "serve", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "AUTH_CONFIG": str(config)}
        )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx2.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = http.get("/health")
                    if health.status_code == 200:
                        # Granian always names itself; the gateway's secure-headers middleware
                        # removes the banner at the edge (tests/unit/test_templates.py).
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, stdout.read_text()
                time.sleep(0.1)
            registered = http.post(
                "/register", json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
            ).json()
            authorize = http.get(
                "/authorize",
                params={
                    "response_type": "code",
                    "client_id": registered["client_id"],
                    "redirect_uri": REDIRECT_URI,
                    "code_challenge": pkce_pair()[1],
                    "resource": "https://fetch.gateway.test/mcp",
                },
            )
            page = http.get(urlsplit(authorize.headers["location"])._replace(scheme="", netloc="").geturl())
            fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
            failed = http.post("/login", data={**fields, "username": "mallory", "password": "guess"})
            assert failed.status_code == 401
        deadline = time.monotonic() + 10
        while not any(line.get("message") == "login failed" for line in _json_lines(stdout)):
            assert time.monotonic() < deadline, stdout.read_text()
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=20)
    lines = _json_lines(stdout)
    failure = next(line for line in lines if line.get("message") == "login failed")
    assert failure["level"] == "info"
    assert failure["logger"] == "mcp_gateway_auth.login"
    assert failure["username"] == "mallory"
    assert failure["address"] == "127.0.0.1"
    started = (line.get("message", "") for line in lines)
    workers = {message for message in started if re.fullmatch(r"Started worker-\d+", message)}
    assert len(workers) == 2, stdout.read_text()
    assert all("color_message" not in line for line in lines)


# -- finding 6: errors redirected to any self-registered https URI with attacker text ----------------------

PHISHING_TEXT = "Your account is locked - call +1-555-0100 now"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"scope": PHISHING_TEXT}, "invalid_scope"),
        ({"resource": f"https://evil.example/{PHISHING_TEXT}"}, "invalid_target"),
        ({"code_challenge": None, "state": PHISHING_TEXT}, "invalid_request"),
    ],
)
async def test_finding_6_errors_for_a_self_registered_client_show_our_page_not_its_site(flow, extra, error):
    client = await flow.register(redirect_uris=["https://app.example.com/callback"])
    params = {"redirect_uri": "https://app.example.com/callback", **extra}
    challenge = pkce_pair()[1]
    if "code_challenge" in params:
        challenge = params.pop("code_challenge")
    response = await flow.authorize(client["client_id"], challenge, **params)
    # RFC 9700 4.11.2: nobody vouched for this redirect URI, so no automatic redirect ...
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # ... but our own page, in our words, with the error code for the application's developer.
    assert "<header>MCP gateway</header>" in response.text
    assert f"<code>{error}</code>" in response.text
    assert "app.example.com" in response.text
    assert "555" not in response.text
    assert "evil.example" not in response.text


@pytest.mark.parametrize(
    ("client_id", "location", "trusted"),
    [
        ("5f0c-registered", "http://127.0.0.1:33418/callback?error=x", True),
        ("5f0c-registered", "http://localhost:8080/cb?error=x", True),
        ("5f0c-registered", "http://[::1]:9000/cb?error=x", True),
        ("5f0c-registered", "https://app.example.com/callback?error=x", False),
        ("5f0c-registered", "com.example.app:/callback?error=x", False),
        ("https://mcp.example.com/client.json", "https://mcp.example.com/callback?error=x", True),
        ("https://mcp.example.com/client.json", "https://MCP.example.com/callback?error=x", True),
        ("https://mcp.example.com/client.json", "https://phish.example/callback?error=x", False),
        ("https://mcp.example.com/client.json", "http://mcp.example.com/callback?error=x", False),
        ("https://mcp.example.com/client.json", "com.example.app:/callback?error=x", False),
    ],
)
def test_finding_6_which_error_redirects_are_trusted(client_id, location, trusted):
    assert trusted_redirect(client_id, location) is trusted


async def test_finding_6_a_client_on_this_computer_still_gets_its_error(flow):
    """A loopback redirect URI leads back to the application on the person's own computer."""
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1], scope="admin")
    assert response.status_code == 302
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert query["state"] == ["state-123"]


async def test_finding_6_a_successful_request_still_goes_to_the_sign_in_page(flow):
    client = await flow.register(redirect_uris=["https://app.example.com/callback"])
    response = await flow.authorize(
        client["client_id"], pkce_pair()[1], redirect_uri="https://app.example.com/callback"
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{ISSUER}/login?request=")


# -- finding 8: OAuth error conformance ----------------------------------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 2.3.1: both parts form-encoded, then HTTP Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def confidential_code(flow: Flow) -> tuple[dict, str, str]:
    """A client_secret_basic client, and a code for it."""
    client = await flow.register(token_endpoint_auth_method="client_secret_basic")
    assert client["client_secret"]
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge)
    done = await flow.login(response.headers["location"])
    code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    return client, code, verifier


async def test_finding_8_invalid_client_at_token_has_www_authenticate(flow):
    client, code, verifier = await confidential_code(flow)
    token = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    token |= {"redirect_uri": REDIRECT_URI, "client_id": client["client_id"]}
    wrong = await flow.http.post("/token", data=token, headers=basic(client["client_id"], "wrong"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic realm=")
    assert wrong.headers["cache-control"] == "no-store"
    unknown = await flow.http.post("/token", data={**token, "client_id": "nobody"})
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_client"
    assert unknown.headers["www-authenticate"].startswith("Basic realm=")


async def test_finding_8_basic_credentials_alone_authenticate_the_client(flow):
    client, code, verifier = await confidential_code(flow)
    credentials = basic(client["client_id"], client["client_secret"])
    token = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = await flow.http.post(
        "/token", data={**token, "redirect_uri": REDIRECT_URI}, headers=credentials
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    refreshed = await flow.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=credentials,
    )
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    revoked = await flow.http.post("/revoke", data={"token": access}, headers=credentials)
    assert revoked.status_code == 200, revoked.text
    assert (await flow.verify(access)).status_code == 401
    # A client_id in the body that differs from the Basic one is refused.
    other = await flow.http.post("/revoke", data={"token": access, "client_id": "other"}, headers=credentials)
    assert other.status_code == 401


@pytest.mark.parametrize(
    "grant_type", ["password", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
)
async def test_finding_8_an_unknown_grant_type_is_unsupported_grant_type(flow, grant_type):
    client = await flow.register()
    response = await flow.http.post(
        "/token", data={"grant_type": grant_type, "client_id": client["client_id"], "username": "alice"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.headers["cache-control"] == "no-store"
    missing = await flow.http.post("/token", data={"client_id": client["client_id"]})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


async def test_finding_8_a_client_auth_failure_at_revoke_is_invalid_client(flow):
    client, _, _ = await confidential_code(flow)
    for data, headers in (
        ({"token": "t", "client_id": "nobody"}, {}),
        ({"token": "t", "client_id": client["client_id"]}, basic(client["client_id"], "wrong")),
        ({"token": "t", "client_id": client["client_id"]}, {}),
    ):
        response = await flow.http.post("/revoke", data=data, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic realm=")


async def test_finding_8_metadata_lists_none_among_the_client_authentication_methods(client):
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_post",
        "client_secret_basic",
    }
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]
    openid = (await client.get("/.well-known/openid-configuration")).json()
    assert "none" in openid["token_endpoint_auth_methods_supported"]


# -- finding 9: CORS for browser-based MCP clients -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/jwks.json",
    ],
)
async def test_finding_9_discovery_documents_are_readable_from_any_origin(client, path):
    headers = {"Origin": "https://inspector.example", "X-Forwarded-Host": "fetch.gateway.test"}
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = await client.options(
        path,
        headers={
            **headers,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "mcp-protocol-version" in preflight.headers["access-control-allow-headers"].lower()


# -- finding 10: the lower findings ---------------------------------------------------------------------

FETCH = "fetch.gateway.test"
FETCH_METADATA = f'resource_metadata="https://{FETCH}/.well-known/oauth-protected-resource"'


async def test_finding_10_verify_refuses_two_authorization_headers(flow):
    _, tokens = await flow.tokens_for()
    valid = f"Bearer {tokens['access_token']}"
    for pair in ((valid, "Bearer something-else"), ("Bearer something-else", valid), (valid, valid)):
        headers = [("X-Forwarded-Host", FETCH), ("X-Forwarded-Uri", "/mcp")]
        headers += [("Authorization", value) for value in pair]
        response = await flow.http.get("/verify", headers=headers)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert 'error="invalid_request"' in challenge
        assert FETCH_METADATA in challenge
        assert "x-user-id" not in response.headers
    assert (await flow.verify(tokens["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "uri",
    ["/mcp?access_token={token}", "/mcp?x=1&access_token={token}", "/mcp?access%5Ftoken={token}"],
)
async def test_finding_10_verify_refuses_a_token_in_the_uri(flow, uri):
    _, tokens = await flow.tokens_for()
    token = tokens["access_token"]
    headers = {"X-Forwarded-Host": FETCH, "X-Forwarded-Uri": uri.format(token=token)}
    for extra in ({"Authorization": f"Bearer {token}"}, {}):
        response = await flow.http.get("/verify", headers={**headers, **extra})
        assert response.status_code == 401
        assert 'error="invalid_request"' in response.headers["www-authenticate"]
        assert FETCH_METADATA in response.headers["www-authenticate"]
    # The same token in the header alone, and a query without a token, pass.
    ok = {"X-Forwarded-Host": FETCH, "X-Forwarded-Uri": "/mcp?session=1", "Authorization": f"Bearer {token}"}
    assert (await flow.http.get("/verify", headers=ok)).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["fetch.gateway.test:443", "FETCH.gateway.test:443", "fetch.gateway.test.", "Fetch.Gateway.Test.:443"],
)
async def test_finding_10_verify_and_metadata_normalise_the_host(flow, host):
    _, tokens = await flow.tokens_for()
    challenge = await flow.verify(None, host=host)
    assert challenge.status_code == 401
    assert FETCH_METADATA in challenge.headers["www-authenticate"]
    assert (await flow.verify(tokens["access_token"], host=host)).status_code == 200
    metadata = await flow.http.get(
        "/.well-known/oauth-protected-resource", headers={"X-Forwarded-Host": host}
    )
    assert metadata.status_code == 200
    assert metadata.json()["resource"] == f"https://{FETCH}/mcp"
    # Another port is another origin: not this resource.
    other = await flow.verify(tokens["access_token"], host="fetch.gateway.test:8443")
    assert other.status_code == 401
    assert "resource_metadata" not in other.headers["www-authenticate"]


async def test_finding_10_an_unknown_user_name_costs_the_same_hash_as_a_users(flow, monkeypatch):
    """What the form verifies for a user name nobody has: a hash made with the users' own
    algorithm and parameters (the tests' users: argon2id, t=1, m=8 MiB, p=1)."""
    verified: list[str] = []
    real = login.verify_password

    def spy(password: str, password_hash: str) -> bool:
        verified.append(password_hash)
        return real(password, password_hash)

    monkeypatch.setattr(login, "verify_password", spy)
    url = await login_url(flow)
    assert (await flow.login(url, username="alice", password="wrong")).status_code == 401
    assert (await flow.login(url, username="nobody", password="wrong")).status_code == 401
    known, unknown = verified
    assert unknown != known
    assert argon2.extract_parameters(unknown) == argon2.extract_parameters(known)


async def test_finding_10_bcrypt_users_get_a_bcrypt_stand_in_of_their_cost(make_service, monkeypatch):
    hashed = bcrypt.hashpw(b"carol-password", bcrypt.gensalt(rounds=5)).decode()
    service = make_service(users=[{"username": "carol", "password_hash": hashed}])
    verified: list[str] = []
    real = login.verify_password
    monkeypatch.setattr(login, "verify_password", lambda p, h: verified.append(h) or real(p, h))
    async with client_of(service) as http:
        flow = Flow(http)
        assert (await flow.login(await login_url(flow), username="nobody", password="x")).status_code == 401
        assert (
            await flow.login(await login_url(flow), username="carol", password="carol-password")
        ).status_code == 302
    unknown, known = verified
    assert unknown.startswith("$2b$05$")
    assert known == hashed


async def test_finding_10_known_and_unknown_user_names_take_comparable_time(make_service):
    """The same, as a person with a stopwatch sees it: medians of interleaved attempts."""
    service = make_service(
        login_max_failures=100, login_max_failures_per_address=100, login_max_failures_per_user=100
    )
    async with client_of(service) as http:
        flow = Flow(http)
        url = await login_url(flow)
        times: dict[str, list[float]] = {"alice": [], "nobody": []}
        for _ in range(7):
            for username in times:
                start = time.perf_counter()
                assert (await flow.login(url, username=username, password="wrong")).status_code == 401
                times[username].append(time.perf_counter() - start)
    ratio = statistics.median(times["nobody"]) / statistics.median(times["alice"])
    assert 0.4 < ratio < 2.5, times


async def test_finding_10_a_non_ascii_csrf_value_is_403(flow):
    url = await login_url(flow)
    page = await flow.http.get(url)
    fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
    for csrf in ("é" * 43, "\u2603", fields["csrf"] + "ü"):
        response = await flow.http.post(
            "/login", data={**fields, "csrf": csrf, "username": "alice", "password": "alice-password"}
        )
        assert response.status_code == 403
        assert "The form could not be verified" in response.text


def all_load_before_any_exchange(service: GatewayAuth, monkeypatch, method: str, requests: int) -> None:
    """Every request finishes the SDK's load step (the token or code is still there) before
    any exchanges it: the interleaving of truly concurrent requests, made certain (else the
    first request, holding a pooled Redis connection, may finish before the others start)."""
    barrier = asyncio.Barrier(requests)
    load = getattr(service.provider, method)
    calls = 0

    async def load_then_wait(*args):
        nonlocal calls
        calls += 1
        concurrent = calls <= requests  # later calls go straight through
        loaded = await load(*args)
        if concurrent:
            await barrier.wait()
        return loaded

    monkeypatch.setattr(service.provider, method, load_then_wait)


async def test_finding_10_concurrent_refreshes_one_succeeds_and_the_family_is_revoked(
    flow, service, monkeypatch
):
    client, tokens = await flow.tokens_for()
    all_load_before_any_exchange(service, monkeypatch, "load_refresh_token", 5)
    responses = await asyncio.gather(
        *(flow.refresh(client["client_id"], tokens["refresh_token"]) for _ in range(5))
    )
    assert sorted(response.status_code for response in responses) == [200, 400, 400, 400, 400]
    assert {response.json().get("error") for response in responses if response.status_code == 400} == {
        "invalid_grant"
    }
    winner = next(response.json() for response in responses if response.status_code == 200)
    # The replay was seen: every token of the grant is revoked, the winner's included.
    assert (await flow.verify(winner["access_token"])).status_code == 401
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], winner["refresh_token"])).status_code == 400


async def test_finding_10_concurrent_code_redemptions_one_succeeds_and_its_tokens_are_revoked(
    flow, service, monkeypatch
):
    client, code, verifier = await flow.code_for()
    all_load_before_any_exchange(service, monkeypatch, "load_authorization_code", 5)
    responses = await asyncio.gather(*(flow.token(client["client_id"], code, verifier) for _ in range(5)))
    assert sorted(response.status_code for response in responses) == [200, 400, 400, 400, 400]
    assert {response.json().get("error") for response in responses if response.status_code == 400} == {
        "invalid_grant"
    }
    winner = next(response.json() for response in responses if response.status_code == 200)
    assert (await flow.verify(winner["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], winner["refresh_token"])).status_code == 400


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://app.example.com/callback#", "fragment"),
        ("http://127.0.0.1:33418/callback#", "fragment"),
        ("ws://app.example.com/callback", "scheme"),
        ("wss://app.example.com/callback", "scheme"),
        ("ftp://app.example.com/callback", "scheme"),
        ("myapp:/callback", "scheme"),
        ("https://user:pw@app.example.com/callback", "user name or password"),
        ("https://user@app.example.com/callback", "user name or password"),
        ("http://user:pw@127.0.0.1:33418/callback", "user name or password"),
    ],
)
async def test_finding_10_registration_refuses_fragments_userinfo_and_odd_schemes(client, uri, reason):
    response = await client.post("/register", json={**GOOD_REGISTRATION, "redirect_uris": [uri]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_redirect_uri"
    assert reason in response.json()["error_description"]


@pytest.mark.parametrize(
    "uri",
    ["com.example.app:/oauth/callback", "io.github.someone.tool:/cb", "https://app.example.com/cb?x=1"],
)
async def test_finding_10_registration_still_accepts_native_and_web_redirect_uris(client, uri):
    response = await client.post("/register", json={**GOOD_REGISTRATION, "redirect_uris": [uri]})
    assert response.status_code == 201, response.text


# -- the settings of the findings ------------------------------------------------------------------


def _settings(tmp_path, **overrides):
    key = tmp_path / "key.pem"
    key.write_text("unused")
    return make_settings("redis://127.0.0.1:1/0", key, **overrides)


def test_hardening_settings_defaults_and_values(tmp_path):
    defaults = _settings(tmp_path)
    assert defaults.trusted_proxies == ()
    assert (defaults.login_max_failures_per_address, defaults.login_max_failures_per_user) == (25, 100)
    settings = _settings(
        tmp_path,
        trusted_proxies=["172.30.0.2", "172.30.0.0/24", "fd00::/64", "10.1.2.3/32"],
        login_max_failures_per_address="30",
        login_max_failures_per_user=200,
    )
    assert settings.trusted_proxies == ("172.30.0.2", "172.30.0.0/24", "fd00::/64", "10.1.2.3")
    assert (settings.login_max_failures_per_address, settings.login_max_failures_per_user) == (30, 200)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trusted_proxies": "172.30.0.2"}, "'trusted_proxies' must be a list"),
        ({"trusted_proxies": ["traefik"]}, "'trusted_proxies' entry 'traefik' is not an address"),
        ({"trusted_proxies": ["*"]}, "'trusted_proxies' entry '*' is not an address"),
        ({"trusted_proxies": ["0.0.0.0/0"]}, "would trust every address"),
        (
            {"login_max_failures_per_address": 0},
            "'login_max_failures_per_address' must be an integer of at least 1",
        ),
        ({"login_max_failures_per_user": "many"}, "'login_max_failures_per_user' must be an integer"),
        ({"login_max_failures_per_user": True}, "'login_max_failures_per_user' must be an integer"),
        (
            {"login_max_failures_per_user": 2},
            "'login_max_failures_per_user' must be at least 'login_max_failures'",
        ),
        ({"login_max_failures_per_address": 2}, "'login_max_failures_per_address' must be at least"),
        ({"access_token_ttl": -5}, "'access_token_ttl' must be an integer of at least 1"),
        ({"max_body_bytes": 1000}, "'max_body_bytes' must be an integer of at least 4096"),
        ({"client_unused_ttl": 0}, "'client_unused_ttl' must be an integer of at least 1"),
    ],
)
def test_hardening_settings_errors_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        _settings(tmp_path, **overrides)
    assert message in str(error.value)
