"""RFC 7662 token introspection at POST /introspect, for resource servers that are not
behind the gateway (and for confidential clients, about their own tokens)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import ConfigError
from mcp_gateway_auth.keys import SigningKey

from .conftest import ECHO, FETCH, ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair

pytestmark = pytest.mark.anyio

FETCH_SECRET = "fetch-resource-server-secret-0123456789"
ECHO_SECRET = "echo-resource-server-secret-0123456789ab"
RESOURCE_SERVERS = [
    # One by its secret, one by the secret's SHA-256 (what the auth role writes).
    {"client_id": "fetch-rs", "client_secret": FETCH_SECRET, "resources": [f"https://{FETCH}/mcp"]},
    {
        "client_id": "echo-rs",
        "client_secret_sha256": hashlib.sha256(ECHO_SECRET.encode()).hexdigest(),
        "resources": [ECHO],
    },
]


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
async def service(redis_server, key_file) -> AsyncIterator[GatewayAuth]:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    settings = make_settings(redis_server, key_file, resource_servers=RESOURCE_SERVERS)
    app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    yield app
    await redis.aclose()


async def introspect(
    flow: Flow, token: str | None, auth=("fetch-rs", FETCH_SECRET), **form
) -> httpx2.Response:
    data = {"token": token, **form} if token is not None else dict(form)
    headers = basic(*auth) if auth else {}
    return await flow.http.post("/introspect", data=data, headers=headers)


async def inactive(response: httpx2.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}
    assert response.headers["cache-control"] == "no-store"


# -- metadata ---------------------------------------------------------------------------------


async def test_metadata_advertises_the_introspection_endpoint(client):
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert set(metadata["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert metadata["registration_endpoint"] == f"{ISSUER}/register"


# -- a resource server --------------------------------------------------------------------------


async def test_a_resource_server_sees_an_active_token_for_its_resource(flow: Flow, service):
    client, tokens = await flow.tokens_for()
    response = await introspect(flow, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = service.key.decode(tokens["access_token"], ISSUER)
    assert body == {
        "active": True,
        "scope": "mcp",
        "client_id": client["client_id"],
        "username": "Alice A.",
        "sub": "alice",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "aud": f"https://{FETCH}/mcp",
        "iss": ISSUER,
        "token_type": "Bearer",
    }


async def test_a_resource_server_may_send_its_credentials_in_the_form(flow: Flow):
    _, tokens = await flow.tokens_for()
    response = await introspect(
        flow, tokens["access_token"], auth=None, client_id="fetch-rs", client_secret=FETCH_SECRET
    )
    assert response.json()["active"] is True


async def test_a_resource_server_never_sees_a_token_for_another_audience(flow: Flow):
    """echo-rs may introspect tokens for echo.gateway.test only; fetch's token looks unknown."""
    _, fetch_tokens = await flow.tokens_for()
    await inactive(await introspect(flow, fetch_tokens["access_token"], auth=("echo-rs", ECHO_SECRET)))
    _, echo_tokens = await flow.tokens_for(resource=f"https://{ECHO}/mcp")
    assert (await introspect(flow, echo_tokens["access_token"], auth=("echo-rs", ECHO_SECRET))).json()[
        "active"
    ]
    await inactive(await introspect(flow, echo_tokens["access_token"]))


async def test_a_user_not_allowed_on_the_resource_is_inactive_there(flow: Flow):
    """As at /verify: echo.gateway.test allows alice only."""
    _, tokens = await flow.tokens_for(username="bob", resource=f"https://{ECHO}/mcp")
    await inactive(await introspect(flow, tokens["access_token"], auth=("echo-rs", ECHO_SECRET)))


async def test_a_resource_server_never_sees_refresh_tokens(flow: Flow):
    """A refresh token is never sent to a resource server: one that arrives there was
    stolen, or is being passed off as an access token."""
    _, tokens = await flow.tokens_for()
    for hint in ({}, {"token_type_hint": "refresh_token"}):
        await inactive(await introspect(flow, tokens["refresh_token"], **hint))


async def test_revoked_expired_unknown_and_malformed_tokens_are_inactive(flow: Flow, service):
    client, tokens = await flow.tokens_for()
    now = int(time.time())
    claims = service.key.decode(tokens["access_token"], ISSUER)
    expired = service.key.sign({**claims, "iat": now - 1000, "exp": now - 100, "jti": "expired-1"})
    foreign = SigningKey.generate().sign({**claims, "jti": "foreign-1"})
    for token in (expired, foreign, "not-a-token", "a.b.c", "x" * 5000, tokens["access_token"] + "x"):
        await inactive(await introspect(flow, token))
    revoked = await flow.http.post(
        "/revoke", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert revoked.status_code == 200
    await inactive(await introspect(flow, tokens["access_token"]))


async def test_a_deleted_clients_tokens_are_inactive(flow: Flow):
    client, tokens = await flow.tokens_for()
    await flow.http.delete(
        client["registration_client_uri"],
        headers={"Authorization": f"Bearer {client['registration_access_token']}"},
    )
    await inactive(await introspect(flow, tokens["access_token"]))


async def test_a_hint_does_not_stop_the_search(flow: Flow):
    _, tokens = await flow.tokens_for()
    response = await introspect(flow, tokens["access_token"], token_type_hint="refresh_token")
    assert response.json()["active"] is True
    response = await introspect(flow, tokens["access_token"], token_type_hint="something_else")
    assert response.json()["active"] is True


# -- errors (RFC 7662 2.3) -------------------------------------------------------------------------


@pytest.mark.parametrize("form", [{}, {"token": ""}, {"token_type_hint": "access_token"}])
async def test_a_request_without_a_token_is_invalid_request(flow: Flow, form):
    response = await flow.http.post("/introspect", data=form, headers=basic("fetch-rs", FETCH_SECRET))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "headers_and_form",
    [
        ({}, {}),
        (basic("fetch-rs", "wrong-secret"), {}),
        (basic("fetch-rs", ECHO_SECRET), {}),
        (basic("nobody", FETCH_SECRET), {}),
        ({}, {"client_id": "fetch-rs"}),
        ({}, {"client_id": "fetch-rs", "client_secret": "wrong"}),
        ({"Authorization": "Bearer something"}, {}),
        ({"Authorization": "Basic !!!"}, {}),
    ],
)
async def test_an_unauthenticated_caller_is_401_invalid_client(flow: Flow, headers_and_form):
    headers, form = headers_and_form
    _, tokens = await flow.tokens_for()
    response = await flow.http.post(
        "/introspect", data={"token": tokens["access_token"], **form}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    assert "alice" not in response.text


async def test_a_public_client_cannot_introspect(flow: Flow):
    client, tokens = await flow.tokens_for()
    response = await flow.http.post(
        "/introspect", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_introspection_is_post_only(flow: Flow):
    assert (await flow.http.get("/introspect", params={"token": "x"})).status_code == 405


# -- a confidential client, about its own tokens ------------------------------------------------


async def confidential_tokens(flow: Flow, method: str) -> tuple[dict, dict]:
    client = await flow.register(token_endpoint_auth_method=method)
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge)
    done = await flow.login(response.headers["location"])
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
        "resource": f"https://{FETCH}/mcp",
    }
    if method == "client_secret_basic":
        token = await flow.http.post(
            "/token", data=form, headers=basic(client["client_id"], client["client_secret"])
        )
    else:
        form |= {"client_id": client["client_id"], "client_secret": client["client_secret"]}
        token = await flow.http.post("/token", data=form)
    assert token.status_code == 200, token.text
    return client, token.json()


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_a_confidential_client_introspects_its_own_tokens(flow: Flow, method):
    client, tokens = await confidential_tokens(flow, method)
    if method == "client_secret_basic":
        auth, extra = (client["client_id"], client["client_secret"]), {}
    else:
        auth, extra = None, {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    access = (await introspect(flow, tokens["access_token"], auth=auth, **extra)).json()
    assert access["active"] is True
    assert access["client_id"] == client["client_id"]
    assert access["token_type"] == "Bearer"
    refresh = (
        await introspect(flow, tokens["refresh_token"], auth=auth, token_type_hint="refresh_token", **extra)
    ).json()
    assert refresh["active"] is True
    assert refresh["client_id"] == client["client_id"]
    assert refresh["sub"] == "alice"
    assert refresh["aud"] == f"https://{FETCH}/mcp"
    assert refresh["scope"] == "mcp"
    assert refresh["exp"] > time.time() + 86400
    assert "token_type" not in refresh  # a refresh token has no token type (RFC 6749 7.1)
    # Found without the hint too.
    assert (await introspect(flow, tokens["refresh_token"], auth=auth, **extra)).json()["active"] is True


async def test_a_confidential_client_never_sees_another_clients_tokens(flow: Flow):
    client, _ = await confidential_tokens(flow, "client_secret_basic")
    _, others = await flow.tokens_for()
    auth = (client["client_id"], client["client_secret"])
    await inactive(await introspect(flow, others["access_token"], auth=auth))
    await inactive(await introspect(flow, others["refresh_token"], auth=auth))


async def test_a_used_refresh_token_is_inactive(flow: Flow):
    client, tokens = await confidential_tokens(flow, "client_secret_post")
    auth = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    rotated = await flow.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **auth}
    )
    assert rotated.status_code == 200
    await inactive(await introspect(flow, tokens["refresh_token"], auth=None, **auth))


# -- the setting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"client_id": "x"}, "'resource_servers' must be a list"),
        (
            [{"client_secret": FETCH_SECRET, "resources": [FETCH]}],
            "'resource_servers[0].client_id' is required",
        ),
        ([{"client_id": "rs", "resources": [FETCH]}], "'resource_servers[0].client_secret'"),
        ([{"client_id": "rs", "client_secret": "short", "resources": [FETCH]}], "at least 32 characters"),
        (
            [{"client_id": "rs", "client_secret_sha256": "abc", "resources": [FETCH]}],
            "'resource_servers[0].client_secret_sha256' must be 64 hexadecimal",
        ),
        (
            [{"client_id": "rs", "client_secret": FETCH_SECRET, "resources": []}],
            "'resource_servers[0].resources'",
        ),
        (
            [{"client_id": "rs", "client_secret": FETCH_SECRET, "resources": ["https://other.test/mcp"]}],
            "'resource_servers[0].resources' entry 'https://other.test/mcp' is not one of the resources",
        ),
        (
            [{"client_id": "https://rs.example.com/", "client_secret": FETCH_SECRET, "resources": [FETCH]}],
            "'resource_servers[0].client_id' must not be a URL",
        ),
        (
            [{"client_id": "rs", "client_secret": FETCH_SECRET, "resources": [FETCH]}] * 2,
            "'resource_servers[1].client_id' 'rs' appears twice",
        ),
        (
            [{"client_id": "rs", "client_secret": FETCH_SECRET, "resources": [FETCH], "extra": 1}],
            "'resource_servers[0].extra' is not a known setting",
        ),
    ],
)
def test_resource_server_settings_errors_name_the_key(key_file, value, message):
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        make_settings("redis://127.0.0.1:1/0", key_file, resource_servers=value)
    assert message in str(error.value)


def test_resource_servers_keep_only_a_hash_of_the_secret(key_file):
    settings = make_settings("redis://127.0.0.1:1/0", key_file, resource_servers=RESOURCE_SERVERS)
    fetch, echo = settings.resource_servers
    assert fetch.client_secret_sha256 == hashlib.sha256(FETCH_SECRET.encode()).hexdigest()
    assert FETCH_SECRET not in repr(settings)
    assert fetch.resources == (f"https://{FETCH}/mcp",)
    # A host names its resource too.
    assert echo.resources == (f"https://{ECHO}/mcp",)
