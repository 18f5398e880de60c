"""The auth role's identity-provider variables, rendered and read by the service's own parser."""

from __future__ import annotations

import json

import pytest

from mcp_gateway_auth.config import ConfigError, settings_from_dict

from .conftest import render_var


def _config(**overrides):
    config = render_var("auth", "_auth_config", _auth_redis_password="x", **overrides)
    # What the role writes: to_nice_json of this dict.
    return json.loads(json.dumps(config))


def test_local_has_no_upstream_sections():
    config = _config()
    assert config["identity_providers"] == ["local"]
    assert config["gateway_name"] == "MCP gateway"
    assert config["github"] is None
    assert config["oidc"] is None
    assert settings_from_dict(config).github is None


def test_github_settings_reach_the_service():
    config = _config(
        auth_identity_providers=["github"],
        auth_github_client_id="Iv1.abc",
        auth_github_client_secret="s3cret",
        auth_github_allowed_users=["OctoCat"],
    )
    assert config["oidc"] is None
    settings = settings_from_dict(config)
    assert settings.identity_providers == ("github",)
    assert settings.github.client_secret == "s3cret"
    assert settings.github.allowed_users == ("octocat",)
    assert settings.github.api_url == "https://api.github.com"


def test_oidc_settings_reach_the_service():
    config = _config(
        auth_identity_providers=["oidc"],
        auth_oidc_discovery_url="https://sso.example.com/realms/main",
        auth_oidc_client_id="gateway",
        auth_oidc_client_secret="s3cret",
        auth_oidc_allowed_groups=["mcp-users"],
        auth_oidc_groups_claim="realm_access.roles",
    )
    settings = settings_from_dict(config)
    assert settings.oidc.issuer == "https://sso.example.com/realms/main"
    assert settings.oidc.scopes == ("openid", "email", "profile")
    assert settings.oidc.allowed_groups == ("mcp-users",)
    assert settings.oidc.groups_claim == "realm_access.roles"
    assert settings.oidc.display_name == "sso.example.com"


def test_local_and_oidc_side_by_side_reach_the_service():
    config = _config(
        auth_identity_providers=["local", "oidc"],
        auth_gateway_name="Example Corp MCP",
        auth_oidc_discovery_url="https://sso.example.com",
        auth_oidc_client_id="gateway",
        auth_oidc_client_secret="s3cret",
        auth_oidc_allowed_groups=["staff"],
        auth_oidc_display_name="Example SSO",
        auth_oidc_user_id_prefix="sso:",
    )
    assert config["github"] is None
    settings = settings_from_dict(config)
    assert settings.identity_providers == ("local", "oidc")
    assert settings.gateway_name == "Example Corp MCP"
    assert settings.oidc.display_name == "Example SSO"
    assert settings.oidc.user_id_prefix == "sso:"


def test_the_role_defaults_for_github_are_a_config_error_in_the_service():
    # The role's assert catches this first; the service refuses it too.
    config = _config(auth_identity_providers=["github"])
    with pytest.raises(ConfigError, match="github"):
        settings_from_dict(config)
