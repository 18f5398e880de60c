"""The auth service and its Redis on the converged host, and what Traefik routes to them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOMAIN = "gateway.test"
AUTH = f"auth.{DOMAIN}"
MCP_HOST = f"echo.{DOMAIN}"  # an MCP host of the catalogue
SECRETS = "/opt/mcp-gateway/auth/secrets"
INTERNAL_CA_DIR = "/opt/mcp-gateway/internal-ca"
INTERNAL_CA = f"{INTERNAL_CA_DIR}/ca.pem"


@pytest.mark.parametrize("container", ["auth-auth-1", "auth-redis-1"])
def test_containers_are_healthy(docker_json, container):
    state = docker_json(f"inspect {container}")[0]["State"]
    assert state["Health"]["Status"] == "healthy"


def test_redis_is_internal_and_unpublished(docker_json):
    redis = docker_json("inspect auth-redis-1")[0]
    assert not any(redis["NetworkSettings"]["Ports"].values())
    assert set(redis["NetworkSettings"]["Networks"]) == {"gateway-backend"}
    assert docker_json("network inspect gateway-backend")[0]["Internal"] is True


def test_redis_requires_its_password(host):
    cmd = host.run("docker exec auth-redis-1 redis-cli ping")
    assert "NOAUTH" in cmd.stdout + cmd.stderr
    appendonly = host.run(
        "docker exec auth-redis-1 sh -c "
        '\'redis-cli --no-auth-warning -a "$(sed -n "s/^requirepass //p" /usr/local/etc/redis/redis.conf)" '
        "info persistence'"
    )
    assert "aof_enabled:1" in appendonly.stdout


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        (f"{SECRETS}/signing-key.pem", "10001"),
        (f"{SECRETS}/config.json", "10001"),
        (f"{SECRETS}/redis-password", "root"),
        ("/opt/mcp-gateway/auth/redis.conf", "999"),
    ],
)
def test_secret_files_are_private(host, path, owner):
    f = host.file(path)
    assert f.mode == 0o600
    assert str(f.uid) == owner or f.user == owner
    assert host.file(SECRETS).mode == 0o700


def test_authorization_server_metadata_through_traefik(https):
    status, body = https(AUTH, "/.well-known/oauth-authorization-server")
    assert status == 200
    meta = json.loads(body)
    assert meta["issuer"] == f"https://{AUTH}"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["registration_endpoint"] == f"https://{AUTH}/register"
    # The role's default: clients may use Client ID Metadata Documents beside registration.
    assert meta["client_id_metadata_document_supported"] is True


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
def test_protected_resource_metadata_on_the_mcp_host(https, path):
    status, body = https(MCP_HOST, path)
    assert status == 200
    meta = json.loads(body)
    assert meta["resource"] == f"https://{MCP_HOST}/mcp"
    assert meta["authorization_servers"] == [f"https://{AUTH}"]


def test_verify_is_not_routed_publicly(https):
    assert https(AUTH, "/verify")[0] == 404
    assert https(AUTH, "/health")[0] == 404


def test_verify_answers_traefik_on_the_docker_network_over_tls(host, docker_json):
    """As Traefik's ForwardAuth calls it: https://auth:8000/verify, HTTP/2, the certificate
    verified with the internal CA (gateway_internal_ca_dir) and the name `auth`."""
    address = docker_json("inspect auth-auth-1")[0]["NetworkSettings"]["Networks"]["public"]["IPAddress"]
    cmd = host.run(
        f"curl -sS --http2 --cacert {INTERNAL_CA} --resolve auth:8000:{address} -o /dev/null -D - "
        f"-H 'X-Forwarded-Host: {MCP_HOST}' -H 'Authorization: Bearer forged' https://auth:8000/verify"
    )
    assert cmd.stdout.startswith("HTTP/2 401"), (cmd.stdout, cmd.stderr)
    assert f'resource_metadata="https://{MCP_HOST}/.well-known/oauth-protected-resource"' in cmd.stdout
    assert 'error="invalid_token"' in cmd.stdout
    # No plain HTTP on the service's port.
    plain = host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' http://{address}:8000/verify")
    assert plain.rc != 0 or plain.stdout != "401", plain.stdout


def test_the_internal_ca_key_and_the_services_tls_key_are_private(host):
    ca_key = host.file(f"{INTERNAL_CA_DIR}/ca-key.pem")
    assert (ca_key.mode, ca_key.user) == (0o600, "root")
    tls_key = host.file(f"{SECRETS}/tls-key.pem")
    assert (tls_key.mode, tls_key.uid) == (0o600, 10001)
    certificate = host.run(f"openssl x509 -in {SECRETS}/tls-cert.pem -noout -issuer -ext subjectAltName")
    assert "MCP gateway internal CA" in certificate.stdout
    assert "DNS:auth" in certificate.stdout
    chain = host.run(f"openssl verify -CAfile {INTERNAL_CA} {SECRETS}/tls-cert.pem")
    assert chain.rc == 0, chain.stdout + chain.stderr


def test_auth_logs_are_json_without_secrets(host):
    logs = host.run("docker logs auth-auth-1 2>&1").stdout
    password = host.file(f"{SECRETS}/redis-password").content_string.strip()
    assert password not in logs
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)


def test_the_auth_image_runs_the_locked_versions(host):
    """The image installs services/auth/requirements.lock, as the production build does."""
    lock = (Path(__file__).resolve().parents[3] / "services/auth/requirements.lock").read_text()
    locked = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock, re.MULTILINE))
    freeze = host.run("docker exec auth-auth-1 pip list --format=json")
    assert freeze.rc == 0, freeze.stderr
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(freeze.stdout)}
    for name, version in locked.items():
        key = name.lower().replace("_", "-")
        if key in installed:
            assert installed[key] == version, f"{name}: image {installed[key]}, lock {version}"
    assert installed["mcp"] == locked["mcp"]
    assert installed["uvicorn"] == locked["uvicorn"]
    assert installed["granian"] == locked["granian"]  # the HTTP server (__main__.server)
