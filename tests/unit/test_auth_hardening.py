"""The auth role's hardening variables (issue 13), rendered and read by the service's own parser."""

from __future__ import annotations

import json

import pytest

from mcp_gateway_auth.config import ConfigError, settings_from_dict

from .conftest import failing_checks, render_var


def _config(**overrides):
    config = render_var("auth", "_auth_config", _auth_redis_password="x", **overrides)
    # What the role writes: to_nice_json of this dict.
    return json.loads(json.dumps(config))


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (
            {"gateway_traefik_ipv4_address": "172.30.0.2", "gateway_network_public_subnet": "172.30.0.0/24"},
            ["172.30.0.2"],
        ),
        (
            {"gateway_traefik_ipv4_address": "", "gateway_network_public_subnet": "172.30.0.0/24"},
            ["172.30.0.0/24"],
        ),
        ({"gateway_traefik_ipv4_address": "", "gateway_network_public_subnet": ""}, []),
        ({}, []),
    ],
)
def test_trusted_proxies_default_to_the_gateways_proxy(network, expected):
    config = _config(**network)
    assert config["trusted_proxies"] == expected
    assert settings_from_dict(config).trusted_proxies == tuple(expected)


def test_login_limits_reach_the_service():
    settings = settings_from_dict(_config())
    assert (
        settings.login_max_failures,
        settings.login_max_failures_per_address,
        settings.login_max_failures_per_user,
        settings.login_failure_window,
    ) == (5, 25, 100, 900)
    settings = settings_from_dict(
        _config(
            auth_login_max_failures=3,
            auth_login_max_failures_per_address=10,
            auth_login_max_failures_per_user=50,
            auth_trusted_proxies=["10.0.0.0/8"],
        )
    )
    assert (settings.login_max_failures_per_address, settings.login_max_failures_per_user) == (10, 50)
    assert settings.trusted_proxies == ("10.0.0.0/8",)


def test_a_user_ceiling_below_the_pair_limit_is_refused():
    with pytest.raises(ConfigError, match="'login_max_failures_per_user' must be at least"):
        settings_from_dict(_config(auth_login_max_failures=10, auth_login_max_failures_per_user=5))


def test_the_body_cap_reaches_the_service():
    assert settings_from_dict(_config()).max_body_bytes == 65536
    assert settings_from_dict(_config(auth_max_body_bytes=32768)).max_body_bytes == 32768
    with pytest.raises(ConfigError, match="'max_body_bytes' must be an integer of at least 4096"):
        settings_from_dict(_config(auth_max_body_bytes=100))


def test_the_unused_client_lifetime_reaches_the_service():
    assert settings_from_dict(_config()).client_unused_ttl == 86400
    assert settings_from_dict(_config(auth_client_unused_ttl=3600)).client_unused_ttl == 3600


def _settings_check(**overrides) -> list[str]:
    """The variables the role's early settings check refuses with these variables."""
    return failing_checks("auth", _auth_redis_password="x", **overrides)


def test_the_role_refuses_limits_the_service_would_refuse():
    assert _settings_check() == []
    assert _settings_check(auth_login_max_failures=10, auth_login_max_failures_per_user=5) == [
        "auth_login_max_failures_per_user"
    ]
    assert _settings_check(auth_login_max_failures_per_address=2, auth_max_body_bytes="100") == [
        "auth_login_max_failures_per_address",
        "auth_max_body_bytes",
    ]
