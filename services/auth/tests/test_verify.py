"""/verify, Traefik's ForwardAuth endpoint: what a request through the gateway gets."""

from __future__ import annotations

import re
import time

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import settings_from_dict
from mcp_gateway_auth.keys import SigningKey

from .conftest import ECHO, FETCH, ISSUER, Flow, make_settings

pytestmark = pytest.mark.anyio

METADATA = f'resource_metadata="https://{FETCH}/.well-known/oauth-protected-resource"'


def _signed(service: GatewayAuth, key: SigningKey | None = None, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": f"https://{FETCH}/mcp",
        "client_id": "c",
        "name": "Alice A.",
        "fam": "family-1",
        "jti": f"jti-{time.monotonic_ns()}",
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    return (key or service.key).sign(claims)


async def test_no_token_gets_401_with_resource_metadata(flow):
    response = await flow.verify(None)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert METADATA in challenge
    assert "error=" not in challenge


async def test_a_basic_credential_is_not_a_bearer_token(flow):
    response = await flow.http.get(
        "/verify", headers={"X-Forwarded-Host": FETCH, "Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}
    )
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


async def test_garbage_token_gets_invalid_token(flow):
    response = await flow.verify("not-a-jwt")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert METADATA in response.headers["www-authenticate"]


async def test_valid_token_gets_200_and_identity_headers(flow):
    _, tokens = await flow.tokens_for()
    response = await flow.verify(tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["x-user-id"] == "alice"
    assert response.headers["x-user-name"] == "Alice A."
    assert response.headers["x-auth-token"] == tokens["access_token"]
    assert response.headers["cache-control"] == "no-store"


async def test_bearer_scheme_is_case_insensitive(flow):
    _, tokens = await flow.tokens_for()
    response = await flow.http.get(
        "/verify", headers={"X-Forwarded-Host": FETCH, "Authorization": f"bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200


async def test_token_for_another_host_is_refused(flow):
    _, tokens = await flow.tokens_for()  # issued for fetch
    response = await flow.verify(tokens["access_token"], host=ECHO)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert f"https://{ECHO}/.well-known/oauth-protected-resource" in response.headers["www-authenticate"]


async def test_expired_token_is_refused(flow, service):
    token = _signed(service, exp=int(time.time()) - 5, iat=int(time.time()) - 400)
    response = await flow.verify(token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_from_another_key_is_refused(flow, service):
    assert (await flow.verify(_signed(service, key=SigningKey.generate()))).status_code == 401


async def test_token_from_another_issuer_is_refused(flow, service):
    assert (await flow.verify(_signed(service, iss="https://evil.test"))).status_code == 401


async def test_token_without_jti_is_refused(flow, service):
    now = int(time.time())
    token = service.key.sign(
        {"iss": ISSUER, "sub": "a", "aud": f"https://{FETCH}/mcp", "iat": now, "exp": now + 60}
    )
    assert (await flow.verify(token)).status_code == 401


async def test_revocation_is_seen_even_for_a_cached_token(flow, service):
    token = _signed(service)
    assert (await flow.verify(token)).status_code == 200  # now cached
    await service.store.revoke_jti(service.key.decode(token, ISSUER)["jti"], 60)
    assert (await flow.verify(token)).status_code == 401


async def test_cached_token_expires(flow, service):
    token = _signed(service, exp=int(time.time()) + 1)
    assert (await flow.verify(token)).status_code == 200
    time.sleep(1.1)
    assert (await flow.verify(token)).status_code == 401


async def test_unknown_host_gets_a_plain_challenge(flow):
    _, tokens = await flow.tokens_for()
    response = await flow.verify(tokens["access_token"], host="other.test")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_forwarded_host_fails_closed(flow):
    _, tokens = await flow.tokens_for()
    response = await flow.http.get("/verify", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401


async def test_user_not_allowed_on_a_host_gets_403(flow):
    _, bob = await flow.tokens_for("bob", resource=f"https://{ECHO}/mcp")
    response = await flow.verify(bob["access_token"], host=ECHO)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    _, alice = await flow.tokens_for("alice", resource=f"https://{ECHO}/mcp")
    assert (await flow.verify(alice["access_token"], host=ECHO)).status_code == 200


async def test_redis_down_fails_closed(redis_server, key_file):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    service = GatewayAuth(make_settings(redis_server, key_file), dead, SigningKey.from_file(key_file))
    token = _signed(service)
    transport = httpx2.ASGITransport(app=service)
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await Flow(http).verify(token)
        assert response.status_code == 503
        assert "x-user-id" not in response.headers
        assert (await http.get("/health")).status_code == 503
    await dead.aclose()


async def test_identity_header_names_are_configurable(redis_server, key_file):
    settings = make_settings(redis_server, key_file, verify_headers={"user_id": "Remote-User"})
    redis = Redis.from_url(redis_server)
    service = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    transport = httpx2.ASGITransport(app=service)
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await Flow(http).verify(_signed(service))
    assert response.status_code == 200
    assert response.headers["remote-user"] == "alice"
    assert response.headers["x-user-name"] == "Alice A."
    await redis.aclose()


async def test_verify_ignores_the_method_and_body(flow, service):
    token = _signed(service)
    response = await flow.http.post(
        "/verify", headers={"X-Forwarded-Host": FETCH, "Authorization": f"Bearer {token}"}, content=b"{}"
    )
    assert response.status_code == 200


def test_config_errors_name_the_key(key_file):
    with pytest.raises(ValueError, match="'issuer' is required"):
        settings_from_dict({"resources": [], "signing_key_file": str(key_file), "redis_url": "redis://x"})
    with pytest.raises(ValueError, match=re.escape("'resources[0].host' is required")):
        settings_from_dict(
            {"issuer": ISSUER, "resources": [{}], "signing_key_file": str(key_file), "redis_url": "redis://x"}
        )
    with pytest.raises(ValueError, match="'code_ttl' must be at most 600"):
        settings_from_dict(
            {"issuer": ISSUER, "resources": [], "signing_key_file": "k", "redis_url": "r", "code_ttl": 3600}
        )
    with pytest.raises(ValueError, match="'issuer' must be an https:// URL"):
        settings_from_dict(
            {"issuer": "http://auth.test", "resources": [], "signing_key_file": "k", "redis_url": "r"}
        )


def test_password_hashes_argon2_and_bcrypt():
    import bcrypt
    from argon2 import PasswordHasher

    from mcp_gateway_auth.login import verify_password

    argon = PasswordHasher(time_cost=1, memory_cost=8192).hash("s3cret")
    assert verify_password("s3cret", argon)
    assert not verify_password("wrong", argon)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    assert verify_password("s3cret", hashed)
    assert not verify_password("wrong", hashed)
    assert not verify_password("s3cret", "plain-text-is-not-a-hash")
