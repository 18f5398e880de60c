"""The auth role's variables of issue 16 ("The auth service, complete"), rendered and read
by the service's own parser; the new public routes."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible.errors import AnsibleFilterError

from mcp_gateway_auth.config import settings_from_dict
from mcpgw import auth as auth_config

from .conftest import ROOT, failing_checks, render_var

SECRET = "a-random-resource-server-secret-0123456789"
FETCH = {"host": "fetch.gateway.test"}


def _config(**overrides):
    config = render_var("auth", "_auth_config", _auth_redis_password="x", **overrides)
    # What the role writes: to_nice_json of this dict.
    return json.loads(json.dumps(config))


def test_the_introspection_and_client_configuration_endpoints_are_routed():
    labels = render_var("auth", "_auth_labels", _auth_redis_password="x", auth_resources=[FETCH])
    rule = labels["traefik.http.routers.auth-oauth.rule"]
    assert "PathPrefix(`/introspect`)" in rule
    # /register covers RFC 7592's /register/<client_id>.
    assert "PathPrefix(`/register`)" in rule


def test_resource_servers_reach_the_service_with_their_secrets_hashed():
    config = _config(
        auth_resources=[FETCH],
        auth_resource_servers=[
            {"client_id": "billing", "client_secret": SECRET, "resources": ["fetch.gateway.test"]}
        ],
    )
    assert config["resource_servers"] == [
        {
            "client_id": "billing",
            "client_secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "resources": ["fetch.gateway.test"],
        }
    ]
    assert SECRET not in json.dumps(config)
    (server,) = settings_from_dict(config).resource_servers
    assert server.resources == ("https://fetch.gateway.test/mcp",)


def test_no_resource_servers_by_default():
    assert _config()["resource_servers"] == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"client_secret": SECRET, "resources": ["x"]}, "entry 0 (None): key 'client_id': is required"),
        (
            {"client_id": "rs", "client_secret": "short", "resources": ["x"]},
            "key 'client_secret': is required",
        ),
        ({"client_id": "rs", "client_secret": SECRET, "resources": []}, "key 'resources'"),
        ({"client_id": "rs", "client_secret_sha256": "xyz", "resources": ["x"]}, "64 hexadecimal digits"),
        ({"client_id": "rs", "client_secret": SECRET, "resources": ["x"], "scope": "x"}, "key 'scope'"),
    ],
)
def test_a_bad_resource_server_names_the_entry_and_key(entry, message):
    with pytest.raises(AnsibleFilterError, match=r"^auth_resource_servers: ") as error:
        auth_config.auth_resource_servers([entry])
    assert message in str(error.value)


def test_a_resource_server_may_be_given_by_the_hash_of_its_secret():
    digest = hashlib.sha256(SECRET.encode()).hexdigest().upper()
    (entry,) = auth_config.auth_resource_servers(
        [{"client_id": "rs", "client_secret_sha256": digest, "resources": ["x"]}]
    )
    assert entry["client_secret_sha256"] == digest.lower()


def test_the_consent_page_is_routed():
    labels = render_var("auth", "_auth_labels", _auth_redis_password="x", auth_resources=[FETCH])
    assert "PathPrefix(`/consent`)" in labels["traefik.http.routers.auth-oauth.rule"]


def test_consent_settings_reach_the_service():
    settings = settings_from_dict(_config())
    assert (settings.consent, settings.consent_ttl) == ("always", 2592000)
    settings = settings_from_dict(_config(auth_consent="upstream", auth_consent_ttl=3600))
    assert (settings.consent, settings.consent_ttl) == ("upstream", 3600)


KEYS_DIR = "/var/lib/mcp-gateway-auth/signing-keys"


def test_rotated_signing_keys_live_on_a_volume_the_role_keeps():
    """`keys rotate` writes into the container; a re-run of site.yml (or a new container)
    must not undo it: a named volume, which Compose keeps, over the image's directory."""
    assert _config()["signing_keys_dir"] == KEYS_DIR
    assert _config()["signing_key_file"] == "/run/secrets/signing-key.pem"
    compose = render_var("auth", "_auth_compose", _auth_redis_password="x")
    assert f"signing-keys:{KEYS_DIR}" in compose["services"]["auth"]["volumes"]
    assert "signing-keys" in compose["volumes"]
    assert compose["services"]["auth"]["read_only"] is True


def test_the_image_gives_the_key_directory_to_the_service_user():
    """A new named volume starts as a copy of the image's directory, owner and mode included."""
    dockerfile = (ROOT / "services" / "auth" / "Dockerfile").read_text()
    assert f"install -d -o 10001 -g 10001 -m 0700 {KEYS_DIR}" in dockerfile


GITHUB = {
    "auth_identity_providers": ["github"],
    "auth_github_client_id": "Iv1.abc",
    "auth_github_client_secret": "s3cret",
}


def test_github_organisations_reach_the_service():
    settings = settings_from_dict(_config(**GITHUB, auth_github_allowed_orgs=["Octo-Org"]))
    assert settings.github.allowed_orgs == ("octo-org",)
    assert settings.github.allowed_users == ()


def _github_check(**overrides) -> list[str]:
    """The variables the role's settings check refuses with these github settings."""
    return failing_checks("auth", _auth_redis_password="x", **{**GITHUB, **overrides})


def test_the_role_takes_github_organisations_instead_of_users():
    assert _github_check(auth_github_allowed_orgs=["octo-org"]) == []
    assert _github_check(auth_github_allowed_users=["octocat"]) == []
    assert _github_check() == ["auth_github_allowed_users"]
