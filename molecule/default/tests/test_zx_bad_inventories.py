"""Bad input gets a clear error before anything changes (issue 13).

One run of playbooks/gateway.yml against the converged test host under many names, each
name an inventory with one bad value: every one of them stops in the check play with a
message that names the variable, nothing is reported changed, and the host is as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ECHO = {"name": "echo", "image": "mcpgw/echo:0.1.0", "source": "registry"}

# (the variable the message must name, the bad setting)
BAD: list[tuple[str, dict]] = [
    ("gateway_domain", {"gateway_domain": "Not A Domain"}),
    ("gateway_network_public_name", {"gateway_network_public_name": "bad name!"}),
    ("gateway_network_backend_name", {"gateway_network_backend_name": "public"}),
    ("gateway_network_public_subnet", {"gateway_network_public_subnet": "300.1.0.0/24"}),
    ("gateway_traefik_ipv4_address", {"gateway_traefik_ipv4_address": "10.9.9.9"}),
    ("gateway_identity_headers", {"gateway_identity_headers": {"user_id": "X User"}}),
    ("gateway_acme_resolver", {"gateway_acme_resolver": "bad resolver!"}),
    ("gateway_middlewares_extra", {"gateway_middlewares_extra": "a string"}),
    ("mcp_services", {"mcp_services": [{**ECHO, "name": "Echo_1"}]}),
    ("replicas", {"mcp_services": [{**ECHO, "replicas": 0}]}),
    ("port", {"mcp_services": [{**ECHO, "port": 70000}]}),
    ("imgae", {"mcp_services": [{**ECHO, "imgae": "typo"}]}),
    ("is used by two entries", {"mcp_services": [ECHO, ECHO]}),
    ("path", {"mcp_services": [{**ECHO, "path": "mcp"}]}),
    ("archive", {"mcp_services": [{**ECHO, "source": "archive"}]}),
    ("environment", {"mcp_services": [{**ECHO, "environment": ["A=1"]}]}),
    ("traefik_log_level", {"traefik_log_level": "LOUD"}),
    ("traefik_tls_min_version", {"traefik_tls_min_version": "VersionTLS10"}),
    ("traefik_acme_email", {"traefik_acme_email": "nobody"}),
    ("traefik_acme_ca_server", {"traefik_acme_ca_server": "http://ca.example/dir"}),
    ("traefik_rate_limit_mcp", {"traefik_rate_limit_mcp": {"average": -1, "burst": 0}}),
    ("traefik_oauth_max_request_body_bytes", {"traefik_oauth_max_request_body_bytes": 100}),
    ("traefik_hsts_seconds", {"traefik_hsts_seconds": -1}),
    ("traefik_dashboard_users", {"traefik_dashboard_users": []}),
    ("traefik_http_port", {"traefik_http_port": "eighty"}),
    ("traefik_dashboard_auth", {"traefik_dashboard_auth": "none"}),
    ("traefik_image_source", {"traefik_image_source": "ftp"}),
    ("traefik_docker_endpoint", {"traefik_docker_endpoint": "/var/run/docker.sock"}),
    ("auth_issuer", {"auth_issuer": "http://auth.example"}),
    ("auth_code_ttl", {"auth_code_ttl": 900}),
    ("auth_access_token_ttl", {"auth_access_token_ttl": 10}),
    ("auth_refresh_token_ttl", {"auth_refresh_token_ttl": 60}),
    ("auth_identity_providers", {"auth_identity_providers": []}),
    ("auth_identity_providers", {"auth_identity_providers": ["local", "saml"]}),
    ("auth_local_users", {"auth_local_users": [{"username": "a", "password_hash": "x"}] * 2}),
    ("auth_login_max_failures_per_address", {"auth_login_max_failures_per_address": 1}),
    ("auth_max_body_bytes", {"auth_max_body_bytes": 100}),
    ("auth_log_level", {"auth_log_level": "LOUD"}),
    ("auth_oidc_discovery_url", {"auth_oidc_discovery_url": "http://idp.example"}),
    ("auth_oidc_scopes", {"auth_oidc_scopes": ["email"]}),
    ("auth_oidc_user_id_prefix", {"auth_oidc_user_id_prefix": ""}),
    ("auth_consent", {"auth_consent": "sometimes"}),
    ("docker_install_source", {"docker_install_source": "snap"}),
    ("docker_service_state", {"docker_service_state": "paused"}),
    ("acme_test_ca_resolve_to", {"acme_test_ca_resolve_to": ""}),
]

SNAPSHOT = (
    "docker ps -a --format '{{.ID}} {{.Names}} {{.State}} {{.Image}}' | sort; "
    "docker network ls --format '{{.ID}} {{.Name}}' | sort; "
    "find /opt/mcp-gateway -xdev -path '*/logs' -prune -o -printf '%p %m %U %s %T@\\n' | sort | sha256sum"
)


def _failures(result: dict) -> dict[str, list[str]]:
    """Per host, the text of every failed task result."""
    failed: dict[str, list[str]] = {}
    for play in result["plays"]:
        for task in play["tasks"]:
            for name, res in task["hosts"].items():
                if res.get("failed"):
                    failed.setdefault(name, []).append(json.dumps(res))
    return failed


@pytest.fixture(scope="module")
def bad_run(host, tmp_path_factory, figures):
    molecule_inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    gw1 = yaml.safe_load(Path(molecule_inventory).read_text())["all"]["hosts"]["gw1"]
    gw1 = {**gw1, "ansible_host": "gw1"}  # every name reaches the same container
    hosts = {f"bad{index:02d}": {**gw1, **setting} for index, (_, setting) in enumerate(BAD)}
    inventory = tmp_path_factory.mktemp("bad") / "bad.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"gateway": {"hosts": hosts}}}}))
    before = host.run(SNAPSHOT).stdout
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_FORKS": "8",
        "ANSIBLE_NOCOLOR": "1",
    }
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(Path(molecule_inventory).parent),
            "-i",
            str(inventory),
            "--limit",
            "bad*",
            str(ROOT / "playbooks" / "gateway.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    after = host.run(SNAPSHOT).stdout
    result, _ = json.JSONDecoder().raw_decode(run.stdout)  # warnings may follow the document
    refused = sum(1 for name in hosts if name in _failures(result))
    figures["bad inventories refused, by name, in one run"] = (
        f"{refused} of {len(BAD)} (exit {run.returncode})"
    )
    return run.returncode, result, before, after


def test_the_run_fails(bad_run):
    returncode, _, _, _ = bad_run
    assert returncode == 2


@pytest.mark.parametrize(("index", "expected"), [(i, name) for i, (name, _) in enumerate(BAD)])
def test_each_bad_value_is_refused_by_name(bad_run, index, expected):
    _, result, _, _ = bad_run
    name = f"bad{index:02d}"
    messages = _failures(result).get(name, [])
    assert messages, f"{name} ({BAD[index][1]}) was not refused"
    assert any(expected in message for message in messages), messages
    stats = result["stats"][name]
    assert stats["changed"] == 0
    assert stats["failures"] >= 1


def test_nothing_changed_on_the_host(bad_run):
    _, _, before, after = bad_run
    assert after == before
