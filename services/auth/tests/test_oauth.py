"""The OAuth endpoints against a real Redis: success and error paths."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import jwt
import pytest

from .conftest import ECHO, FETCH, ISSUER, REDIRECT_URI, pkce_pair

pytestmark = pytest.mark.anyio


def _query(response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["location"]).query).items()}


# -- discovery -------------------------------------------------------------------------------


async def test_authorization_server_metadata(client):
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert meta["token_endpoint"] == f"{ISSUER}/token"
    assert meta["registration_endpoint"] == f"{ISSUER}/register"
    assert meta["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"


async def test_openid_discovery_is_the_authorization_server_metadata_and_promises_no_id_tokens(client):
    """No ID tokens are issued, so the OpenID path (which MCP clients try after RFC 8414's)
    serves the same RFC 8414 document, without the ID-token fields of OpenID Discovery."""
    oidc = (await client.get("/.well-known/openid-configuration")).json()
    oauth = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert oidc == oauth
    for field in (
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
        "userinfo_endpoint",
        "claims_supported",
    ):
        assert field not in oidc
    assert "openid" not in oidc["scopes_supported"]


async def test_asking_for_openid_is_an_unknown_scope(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1], scope="openid mcp")
    assert _query(response)["error"] == "invalid_scope"


async def test_jwks_publishes_the_signing_key(client, service):
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] == service.key.kid
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
async def test_protected_resource_metadata_for_each_host(client, path):
    response = await client.get(path, headers={"X-Forwarded-Host": FETCH})
    assert response.status_code == 200
    meta = response.json()
    assert meta["resource"] == f"https://{FETCH}/mcp"
    assert meta["authorization_servers"] == [ISSUER]
    assert meta["bearer_methods_supported"] == ["header"]
    echo = (await client.get(path, headers={"X-Forwarded-Host": ECHO})).json()
    assert echo["resource"] == f"https://{ECHO}/mcp"


async def test_protected_resource_metadata_unknown_host_or_path(client):
    assert (
        await client.get("/.well-known/oauth-protected-resource", headers={"X-Forwarded-Host": "x.test"})
    ).status_code == 404
    response = await client.get(
        "/.well-known/oauth-protected-resource/other", headers={"X-Forwarded-Host": FETCH}
    )
    assert response.status_code == 404


# -- registration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "http://127.0.0.1:8765/callback",
        "http://localhost:8765/callback",
        "http://[::1]:8765/callback",
        "com.example.app:/oauth/callback",
    ],
)
async def test_registration_accepts_allowed_redirect_uris(flow, uri):
    client = await flow.register(redirect_uris=[uri])
    assert client["client_id"]
    assert client["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example.com/callback", "http is allowed only on loopback"),
        ("javascript:alert(1)//", "forbidden scheme"),
        ("https://app.example.com/cb#frag", "must not have a fragment"),
    ],
)
async def test_registration_refuses_bad_redirect_uris(client, uri, reason):
    response = await client.post(
        "/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_redirect_uri"
    assert reason in body["error_description"]


async def test_registration_needs_redirect_uris(client):
    response = await client.post("/register", json={"client_name": "x", "token_endpoint_auth_method": "none"})
    assert response.status_code == 400


# -- authorization -----------------------------------------------------------------------------


async def test_authorize_sends_the_user_to_the_login_form(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{ISSUER}/login?request=")


async def test_authorize_unknown_client_is_not_redirected(flow):
    response = await flow.authorize("no-such-client", pkce_pair()[1])
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_authorize_requires_pkce(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], None)
    assert response.status_code == 302
    assert _query(response)["error"] == "invalid_request"


async def test_authorize_refuses_plain_pkce(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], "x" * 43, code_challenge_method="plain")
    assert _query(response)["error"] == "invalid_request"


async def test_authorize_refuses_an_unregistered_redirect_uri(flow):
    client = await flow.register()
    response = await flow.authorize(
        client["client_id"], pkce_pair()[1], redirect_uri="http://127.0.0.1:9/other"
    )
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_authorize_requires_a_resource(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1], resource=None)
    query = _query(response)
    assert query["error"] == "invalid_request"
    assert "resource" in query["error_description"]
    assert query["state"] == "state-123"


async def test_authorize_refuses_an_unknown_resource(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1], resource="https://evil.test/mcp")
    assert _query(response)["error"] == "invalid_target"


async def test_authorize_refuses_an_unknown_scope(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1], scope="admin")
    assert _query(response)["error"] == "invalid_scope"


# -- login ------------------------------------------------------------------------------------------


async def test_login_returns_code_state_and_issuer(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    done = await flow.login(response.headers["location"])
    assert done.status_code == 302
    assert done.headers["location"].startswith(REDIRECT_URI + "?")
    query = _query(done)
    assert query["state"] == "state-123"
    assert query["iss"] == ISSUER
    assert len(query["code"]) >= 32


async def test_login_page_headers_and_escaping(flow):
    client = await flow.register(client_name="<script>alert(1)</script>")
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    page = await flow.http.get(response.headers["location"])
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "form-action 'self'" in page.headers["content-security-policy"]


async def test_login_with_an_expired_request(client):
    assert (await client.get("/login?request=nope")).status_code == 400


async def test_login_without_the_browser_cookie_is_refused(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    page = await flow.http.get(response.headers["location"])
    import re

    fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
    flow.http.cookies.clear()
    post = await flow.http.post("/login", data={**fields, "username": "alice", "password": "alice-password"})
    assert post.status_code == 403


async def test_login_with_a_wrong_csrf_token_is_refused(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    page = await flow.http.get(response.headers["location"])
    import re

    fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
    fields["csrf"] = "forged"
    post = await flow.http.post("/login", data={**fields, "username": "alice", "password": "alice-password"})
    assert post.status_code == 403


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("mallory", "whatever")])
async def test_login_with_bad_credentials(flow, username, password):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    done = await flow.login(response.headers["location"], username=username, password=password)
    assert done.status_code == 401
    assert "Wrong user name or password" in done.text
    assert "location" not in done.headers


async def test_failed_logins_are_rate_limited(flow):
    client = await flow.register()
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    for _ in range(3):
        assert (await flow.login(response.headers["location"], password="wrong")).status_code == 401
    blocked = await flow.login(response.headers["location"], password="alice-password")
    assert blocked.status_code == 429


# -- token: authorization code ------------------------------------------------------------------------


async def test_token_is_a_jwt_for_the_requested_resource(flow, service):
    client, tokens = await flow.tokens_for()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"]
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == service.key.kid
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == f"https://{FETCH}/mcp"
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "alice"
    assert claims["client_id"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == 900


async def test_token_with_a_wrong_verifier_fails(flow):
    client, code, _ = await flow.code_for()
    response = await flow.token(client["client_id"], code, pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_replay_fails_and_revokes_the_first_tokens(flow):
    client, code, verifier = await flow.code_for()
    first = await flow.token(client["client_id"], code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    assert (await flow.verify(access)).status_code == 200
    replay = await flow.token(client["client_id"], code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await flow.verify(access)).status_code == 401
    assert (await flow.refresh(client["client_id"], first.json()["refresh_token"])).status_code == 400


async def test_code_redeemed_by_another_client_fails(flow):
    _, code, verifier = await flow.code_for()
    other = await flow.register()
    response = await flow.token(other["client_id"], code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_with_a_wrong_redirect_uri_fails(flow):
    client, code, verifier = await flow.code_for()
    response = await flow.token(
        client["client_id"], code, verifier, redirect_uri="http://127.0.0.1:33418/other"
    )
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}


async def test_expired_code_fails(flow, service):
    client, code, verifier = await flow.code_for()
    from mcp_gateway_auth.store import PREFIX, token_hash

    key = f"{PREFIX}code:{token_hash(code)}"
    data = json.loads(await service.redis.get(key))
    data["expires_at"] = time.time() - 1
    await service.redis.set(key, json.dumps(data), ex=60)
    response = await flow.token(client["client_id"], code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_lifetime_is_at_most_ten_minutes(flow, service):
    _, code, _ = await flow.code_for()
    from mcp_gateway_auth.store import PREFIX, token_hash

    ttl = await service.redis.ttl(f"{PREFIX}code:{token_hash(code)}")
    assert 0 < ttl <= 600


# -- token: refresh -------------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(flow):
    client, tokens = await flow.tokens_for()
    response = await flow.refresh(client["client_id"], tokens["refresh_token"])
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    assert (await flow.verify(fresh["access_token"])).status_code == 200


async def test_refresh_token_reuse_revokes_the_family(flow):
    client, tokens = await flow.tokens_for()
    fresh = (await flow.refresh(client["client_id"], tokens["refresh_token"])).json()
    reuse = await flow.refresh(client["client_id"], tokens["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The whole family is gone: the new access token and the new refresh token.
    assert (await flow.verify(fresh["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], fresh["refresh_token"])).status_code == 400


async def test_refresh_by_another_client_fails(flow):
    _, tokens = await flow.tokens_for()
    other = await flow.register()
    response = await flow.refresh(other["client_id"], tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# -- revocation (RFC 7009) ---------------------------------------------------------------------------------


async def test_revoking_the_access_token_revokes_the_grant(flow):
    client, tokens = await flow.tokens_for()
    response = await flow.http.post(
        "/revoke", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert response.status_code == 200
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code == 400


async def test_revoking_the_refresh_token_revokes_the_grant(flow):
    client, tokens = await flow.tokens_for()
    response = await flow.http.post(
        "/revoke",
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": client["client_id"],
        },
    )
    assert response.status_code == 200
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code == 400


async def test_revoking_an_unknown_token_answers_200(flow):
    client = await flow.register()
    response = await flow.http.post("/revoke", data={"token": "nothing", "client_id": client["client_id"]})
    assert response.status_code == 200


async def test_another_client_cannot_revoke_my_token(flow):
    _, tokens = await flow.tokens_for()
    other = await flow.register()
    await flow.http.post("/revoke", data={"token": tokens["access_token"], "client_id": other["client_id"]})
    assert (await flow.verify(tokens["access_token"])).status_code == 200


async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
