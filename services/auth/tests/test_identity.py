"""Identities in tokens (groups reach /verify) and the settings of the upstream identity providers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import ConfigError
from mcp_gateway_auth.keys import SigningKey

from .conftest import FETCH, HASHES, ISSUER, Flow, make_settings

TEAM = "team.gateway.test"


@pytest.fixture
async def team_flow(redis_server, key_file) -> AsyncIterator[Flow]:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    settings = make_settings(
        redis_server,
        key_file,
        resources=[{"host": FETCH}, {"host": TEAM, "allowed_groups": ["staff"]}],
        users=[
            {"username": "alice", "password_hash": HASHES["alice"], "groups": ["staff", "ops"]},
            {"username": "bob", "password_hash": HASHES["bob"], "groups": ["visitors"]},
        ],
    )
    app = GatewayAuth(settings, redis, SigningKey.from_file(key_file))
    transport = httpx2.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Flow(http)
    await redis.aclose()


async def _team_token(flow: Flow, username: str) -> dict:
    client, code, verifier = await flow.code_for(username, resource=f"https://{TEAM}/mcp")
    response = await flow.token(client["client_id"], code, verifier, resource=f"https://{TEAM}/mcp")
    assert response.status_code == 200, response.text
    return {"client": client, **response.json()}


@pytest.mark.anyio
async def test_a_group_member_passes_verify_and_a_non_member_gets_403(team_flow):
    alice = await _team_token(team_flow, "alice")
    assert (await team_flow.verify(alice["access_token"], host=TEAM)).status_code == 200
    bob = await _team_token(team_flow, "bob")
    denied = await team_flow.verify(bob["access_token"], host=TEAM)
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]


@pytest.mark.anyio
async def test_groups_survive_a_refresh(team_flow):
    alice = await _team_token(team_flow, "alice")
    refreshed = await team_flow.refresh(alice["client"]["client_id"], alice["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    assert (await team_flow.verify(access, host=TEAM)).status_code == 200


# -- settings --------------------------------------------------------------------------------
def _settings(tmp_path, **overrides):
    key = tmp_path / "key.pem"
    key.write_text("unused")
    return make_settings("redis://127.0.0.1:1/0", key, **overrides)


GITHUB = {"client_id": "Iv1.abc", "client_secret": "s3cret", "allowed_users": ["octocat"]}
OIDC = {
    "discovery_url": "https://idp.example.com/realms/main",
    "client_id": "gateway",
    "client_secret": "s3cret",
    "allowed_groups": ["staff"],
}


def test_github_settings(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    github = {"client_id": "Iv1.abc", "client_secret_file": str(secret), "allowed_users": ["OctoCat"]}
    settings = _settings(tmp_path, identity_providers=["github"], github=github)
    assert settings.github.client_secret == "from-a-file"
    assert settings.github.allowed_users == ("octocat",)
    assert settings.github.url == "https://github.com"
    assert "from-a-file" not in repr(settings)


def test_oidc_settings(tmp_path):
    settings = _settings(tmp_path, identity_providers=["oidc"], oidc=OIDC)
    assert (
        settings.oidc.discovery_url == "https://idp.example.com/realms/main/.well-known/openid-configuration"
    )
    assert settings.oidc.issuer == "https://idp.example.com/realms/main"
    assert settings.oidc.scopes == ("openid", "email", "profile")
    assert settings.oidc.groups_claim == "groups"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("provider", "section", "message"),
    [
        ("github", None, "'github' is required"),
        (
            "github",
            {**GITHUB, "allowed_users": []},
            "'github.allowed_users' and 'github.allowed_orgs' must not both",
        ),
        ("github", {k: v for k, v in GITHUB.items() if k != "allowed_users"}, "'github.allowed_users'"),
        ("github", {**GITHUB, "client_id": ""}, "'github.client_id' is required"),
        ("github", {k: v for k, v in GITHUB.items() if k != "client_secret"}, "'github.client_secret'"),
        (
            "github",
            {**GITHUB, "client_secret": None, "client_secret_file": "/nonexistent"},
            "client_secret_file",
        ),
        ("github", {**GITHUB, "api_url": "http://api.example.com"}, "'github.api_url' must be an https://"),
        ("github", {**GITHUB, "allowed_user": ["x"]}, "'github.allowed_user' is not a known setting"),
        ("oidc", {**OIDC, "allowed_groups": []}, "must not all be empty"),
        (
            "oidc",
            {**OIDC, "discovery_url": "http://idp.example.com"},
            "'oidc.discovery_url' must be an https://",
        ),
        ("oidc", {k: v for k, v in OIDC.items() if k != "discovery_url"}, "'oidc.discovery_url' is required"),
        ("oidc", {**OIDC, "scopes": ["email"]}, "'oidc.scopes' must include openid"),
        ("oidc", {**OIDC, "allowed_emails": "a@example.com"}, None),
        ("oidc", {**OIDC, "ca_file": "/nonexistent/ca.pem"}, "'oidc.ca_file'"),
        ("saml", None, "'identity_providers' entry 'saml' is not supported"),
    ],
)
def test_invalid_upstream_settings_name_the_key(tmp_path, provider, section, message):
    overrides = {"identity_providers": [provider]}
    if section is not None:
        overrides["github" if provider == "github" else "oidc"] = section
    if message is None:
        _settings(tmp_path, **overrides)  # a string is split into a list
        return
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        _settings(tmp_path, **overrides)
    assert message in str(error.value)


def test_loopback_http_discovery_is_allowed_for_tests(tmp_path):
    oidc = {**OIDC, "discovery_url": "http://127.0.0.1:8080/.well-known/openid-configuration"}
    assert _settings(tmp_path, identity_providers=["oidc"], oidc=oidc).oidc.issuer == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"identity_provider": "local"}, "'identity_provider' was renamed to 'identity_providers'"),
        ({"identity_providers": []}, "'identity_providers' must be a non-empty list"),
        ({"identity_providers": "local"}, "'identity_providers' must be a non-empty list"),
        ({"identity_providers": ["local", "local"]}, "names a provider twice"),
        ({"gateway_name": ""}, "'gateway_name' must be a non-empty string"),
        ({"gateway_name": "x" * 81}, "'gateway_name' must be a non-empty string of at most 80"),
    ],
)
def test_invalid_identity_settings_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=r"^auth config: ") as error:
        _settings(tmp_path, **overrides)
    assert message in str(error.value)


def test_local_and_upstream_providers_together(tmp_path):
    oidc = {**OIDC, "user_id_prefix": "sso:"}
    settings = _settings(
        tmp_path, identity_providers=["local", "oidc"], oidc=oidc, gateway_name="Example Corp"
    )
    assert settings.identity_providers == ("local", "oidc")
    assert settings.oidc.display_name == "idp.example.com"
    assert settings.gateway_name == "Example Corp"
    assert settings.github is None
    assert settings.oidc.user_id_prefix == "sso:"
