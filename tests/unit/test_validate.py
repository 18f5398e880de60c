"""The roles' own checks (tasks/validate.yml): every failing one is named, numbers given as
strings (as -e passes them) are compared as numbers."""

from __future__ import annotations

from .conftest import failing_checks, render_var


def test_traefik_defaults_pass_once_the_dashboard_has_users():
    assert failing_checks("traefik") == ["traefik_dashboard_users"]
    assert failing_checks("traefik", traefik_dashboard_users=["admin:$2y$05$hash"]) == []


def test_traefik_names_every_bad_setting():
    assert failing_checks(
        "traefik",
        traefik_dashboard_enabled=False,
        traefik_acme_email="not-an-address",
        traefik_rate_limit_mcp={"average": -1, "burst": 0, "period": "1s"},
        traefik_oauth_max_request_body_bytes="1000",
        traefik_hsts_seconds="-5",
        traefik_docker_endpoint="docker.sock",
    ) == [
        "traefik_acme_email",
        "traefik_rate_limit_mcp",
        "traefik_oauth_max_request_body_bytes",
        "traefik_docker_endpoint",
        "traefik_hsts_seconds",
    ]


def test_traefik_refuses_an_open_dashboard():
    assert failing_checks(
        "traefik",
        traefik_dashboard_enabled=True,
        traefik_dashboard_auth="basic",
        traefik_dashboard_users=[],
    ) == ["traefik_dashboard_users"]


def test_auth_defaults_pass():
    assert failing_checks("auth", _auth_redis_password="x") == []


def test_auth_compares_numbers_given_as_strings():
    assert failing_checks(
        "auth",
        _auth_redis_password="x",
        auth_code_ttl="900",
        auth_access_token_ttl="3600",
        auth_refresh_token_ttl="600",
    ) == ["auth_code_ttl", "auth_refresh_token_ttl"]


def test_traefik_mounts_a_socket_endpoint_read_only_and_a_tcp_one_not_at_all():
    socket = render_var(
        "traefik", "_traefik_container_volumes", traefik_docker_endpoint="unix:///run/proxy.sock"
    )
    assert socket[0] == "/run/proxy.sock:/run/proxy.sock:ro"
    tcp = render_var("traefik", "_traefik_container_volumes", traefik_docker_endpoint="tcp://proxy:2375")
    assert not any("sock" in volume for volume in tcp)
    assert (
        render_var("traefik", "_traefik_config_base", traefik_docker_endpoint="tcp://proxy:2375")[
            "providers"
        ]["docker"]["endpoint"]
        == "tcp://proxy:2375"
    )
