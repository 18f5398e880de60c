"""What `site.yml -i inventory/prod` leaves on a fresh Debian 12 and a fresh Debian 13 host.

Every test runs on both hosts (testinfra's `host`), except the playbook runs at the end,
which cover both at once.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml
from packaging.version import Version

from tests.e2e.gateway_client import GatewayUser, pinned_transport

COMPOSE_MIN = Version("2.18.0")
DOCKER_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)
SECRETS = "/opt/mcp-gateway/auth/secrets"
AUTH_UID = 10001


# -- Docker from Docker's apt repository --------------------------------------------------------------
def test_docker_packages_come_from_the_repository(host):
    for name in DOCKER_PACKAGES:
        package = host.package(name)
        assert package.is_installed, name
        assert package.version.endswith("+mcpgw1"), f"{name} {package.version} is not the stand-in's"
    # The distribution's engine is not there (the role removes it; the stand-ins replace it).
    for name in ("docker.io", "containerd", "runc"):
        assert not host.package(name).is_installed, name
    policy = host.run("apt-cache policy docker-ce").stdout
    assert "http://apt.prod.test/linux/debian" in policy


def test_the_source_is_deb822_and_signed_by_the_checked_key(host):
    source = host.file("/etc/apt/sources.list.d/docker.sources")
    assert source.exists
    assert "URIs: http://apt.prod.test/linux/debian" in source.content_string
    assert "Signed-By: /etc/apt/keyrings/docker.asc" in source.content_string
    assert host.package("python3-debian").is_installed
    key = host.file("/etc/apt/keyrings/docker.asc")
    assert key.mode == 0o644
    assert key.user == "root"


def test_the_engine_runs_under_systemd_with_the_compose_plugin(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled
    version = host.run("docker compose version --short")
    assert version.rc == 0, version.stderr
    assert Version(version.stdout.strip().lstrip("v")) >= COMPOSE_MIN
    owner = host.run("dpkg -S /usr/libexec/docker/cli-plugins/docker-compose")
    assert owner.stdout.startswith("docker-compose-plugin:")


# -- images from the registry --------------------------------------------------------------------------
TRAEFIK_VERSION = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "roles/traefik/defaults/main.yml").read_text()
)["traefik_version"]


@pytest.mark.parametrize(
    "image", [f"traefik:v{TRAEFIK_VERSION}", "redis:7.4-alpine", "registry.prod.test:5000/mcpgw/auth:0.1.0"]
)
def test_images_were_pulled_from_the_registry(host, image):
    # A pulled image has a repository digest; a loaded or built one has none.
    digests = host.run(f"docker image inspect --format '{{{{json .RepoDigests}}}}' {image}")
    assert digests.rc == 0, digests.stderr
    assert "sha256:" in digests.stdout
    mirrors = host.run("docker info --format '{{json .RegistryConfig.Mirrors}}'").stdout
    assert "https://registry.prod.test:5000/" in mirrors


# -- what users and clients see ------------------------------------------------------------------------
def test_http_redirects_to_https(host, domain):
    cmd = host.run(
        f"curl -sS -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --resolve fetch.{domain}:80:127.0.0.1 "
        f"'http://fetch.{domain}/mcp?x=1'"
    )
    assert cmd.stdout == f"301 https://fetch.{domain}/mcp?x=1"


def test_certificate_comes_from_the_acme_server(address, domain, pebble_root):
    context = ssl.create_default_context(cafile=pebble_root)
    for attempt in range(30):  # the first certificate may still be on its way
        try:
            with (
                socket.create_connection((address, 443), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=f"fetch.{domain}") as tls,
            ):
                cert = tls.getpeercert()
            break
        except (ssl.SSLError, OSError):
            if attempt == 29:
                raise
            anyio.run(anyio.sleep, 1)
    issuer = dict(item[0] for item in cert["issuer"])
    assert issuer["commonName"].startswith("Pebble Intermediate CA")
    assert ("DNS", f"fetch.{domain}") in cert["subjectAltName"]


def test_mcp_route_without_a_token_gets_401_with_resource_metadata(address, domain, pebble_root):
    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(address, pebble_root)) as http:
            return await http.post(
                f"https://fetch.{domain}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
            )

    response = anyio.run(go)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="https://fetch.{domain}/.well-known/oauth-protected-resource"'
    )


def test_the_sdk_client_signs_in_and_lists_tools(address, domain, pebble_root, secret):
    alice = GatewayUser(address, pebble_root, "alice", secret("alice-password"))

    async def go():
        async with alice.session(f"https://fetch.{domain}/mcp") as session:
            return {tool.name for tool in (await session.list_tools()).tools}

    assert "fetch" in anyio.run(go)


# -- secrets -------------------------------------------------------------------------------------------
def test_secret_files_are_private(host):
    secrets = host.file(SECRETS)
    assert secrets.mode == 0o700
    assert secrets.user == "root"
    for name in ("signing-key.pem", "config.json", "redis-password"):
        f = host.file(f"{SECRETS}/{name}")
        assert f.mode == 0o600, name
        # root, or the auth service's own user for what its container reads.
        assert f.user == "root" or f.uid == AUTH_UID, name
    for path in (
        "/opt/mcp-gateway/traefik/dynamic/middlewares.yml",
        "/opt/mcp-gateway/traefik/acme/acme.json",
    ):
        f = host.file(path)
        assert f.mode == 0o600, path
        assert f.user == "root", path


def _playbook(env, *args):
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    converge = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(converge), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _recaps(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(prod-\w+)\s*:\s*(ok=.*)$", output, re.MULTILINE))


def test_check_mode_on_the_converged_hosts_reports_no_change(ansible_env):
    run = _playbook(ansible_env, "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recaps = _recaps(run.stdout)
    assert set(recaps) == {"prod-bookworm", "prod-trixie"}, run.stdout[-2000:]
    for name, recap in recaps.items():
        assert re.search(r"changed=0\b", recap), f"{name}: {recap}\n{run.stdout[-4000:]}"


def test_a_key_with_another_fingerprint_stops_the_role_before_the_repository(ansible_env):
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    run = _playbook(ansible_env, "--check", "-e", f"docker_apt_gpg_key_fingerprint={wrong}")
    assert run.returncode != 0
    message = f"not docker_apt_gpg_key_fingerprint {wrong}: the repository is not added"
    assert message in run.stdout + run.stderr
    for name, recap in _recaps(run.stdout).items():
        assert "failed=1" in recap, f"{name}: {recap}"


def test_no_secret_appears_in_the_output_of_a_run_that_changes_them(ansible_env, secret, tmp_path):
    """New secrets in check mode with --diff and -v: the tasks that hold them report a change,
    and neither the new nor the old values, nor the generated ones, are printed."""
    new_user_hash = "$2b$10$" + "N" * 53
    new_dashboard_hash = "admin:$2b$10$" + "D" * 53
    extra = tmp_path / "new-secrets.yml"
    extra.write_text(
        "vault_auth_local_users:\n"
        f"  - {{username: alice, password_hash: '{new_user_hash}'}}\n"
        f"vault_traefik_dashboard_users: ['{new_dashboard_hash}']\n"
    )
    run = _playbook(ansible_env, "--check", "--diff", "-v", "-e", f"@{extra}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for name, recap in _recaps(run.stdout).items():
        assert not re.search(r"changed=0\b", recap), f"{name} saw no change: the test would prove nothing"
    output = run.stdout + run.stderr
    vault = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "inventory/group_vars/gateway/vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;"), "the vault file is encrypted"
    redis_passwords = [
        subprocess.run(
            ["docker", "exec", name, "cat", f"{SECRETS}/redis-password"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for name in ("prod-bookworm", "prod-trixie")
    ]
    secrets = [
        new_user_hash,
        new_dashboard_hash,
        "$2b$",
        secret("alice-password"),
        secret("dashboard-password"),
    ]
    for value in secrets + redis_passwords:
        assert value not in output


def test_redis_password_stays_out_of_the_logs(host):
    password = host.file(f"{SECRETS}/redis-password").content_string.strip()
    assert len(password) >= 32
    logs = host.run("docker logs auth-auth-1 2>&1").stdout + host.run("docker logs auth-redis-1 2>&1").stdout
    assert password not in logs
