"""The Traefik edge on the converged host: redirect, TLS from Pebble, ACME storage, API state."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

DOMAIN = "gateway.test"
HOSTS = [f"traefik.{DOMAIN}", f"auth.{DOMAIN}", f"fetch.{DOMAIN}", f"echo.{DOMAIN}"]
DASHBOARD = f"traefik.{DOMAIN}"
ROOT = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"
ACME_JSON = "/opt/mcp-gateway/traefik/acme/acme.json"
CREDENTIALS = "admin:molecule-dashboard"


@pytest.mark.parametrize("name", HOSTS)
def test_http_get_redirects_permanently_to_https(http, name):
    status, headers = http(f"http://{name}/anything", resolve=f"{name}:80:127.0.0.1")
    assert status == 301
    assert headers["location"] == f"https://{name}/anything"


@pytest.mark.parametrize("name", HOSTS)
def test_http_post_redirects_with_308(http, name):
    status, headers = http(f"http://{name}/anything", method="POST", resolve=f"{name}:80:127.0.0.1")
    assert status == 308
    assert headers["location"] == f"https://{name}/anything"


def test_certificate_is_issued_by_pebble_for_the_host(host):
    cmd = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {DASHBOARD} -CAfile {ROOT} "
        f"-verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName"
    )
    assert cmd.rc == 0, cmd.stderr
    assert re.search(r"issuer=.*Pebble Intermediate", cmd.stdout), cmd.stdout
    assert f"DNS:{DASHBOARD}" in cmd.stdout
    assert "TRAEFIK DEFAULT CERT" not in cmd.stdout


def test_chain_verifies_against_pebbles_root_with_curl(https):
    status, _ = https(DASHBOARD)
    assert status == 401


def test_unknown_sni_is_refused(host):
    # sniStrict: no certificate, no handshake (never Traefik's default certificate).
    cmd = host.run("openssl s_client -connect 127.0.0.1:443 -servername unknown.gateway.test </dev/null 2>&1")
    assert "BEGIN CERTIFICATE" not in cmd.stdout


def test_tls_1_1_is_refused_and_1_2_accepted(host):
    old = host.run(f"openssl s_client -connect 127.0.0.1:443 -servername {DASHBOARD} -tls1_1 </dev/null 2>&1")
    assert "BEGIN CERTIFICATE" not in old.stdout
    new = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {DASHBOARD} -tls1_2 "
        f"-CAfile {ROOT} </dev/null 2>&1"
    )
    assert "Verify return code: 0 (ok)" in new.stdout


def test_acme_json_is_private_and_holds_the_certificate(host):
    acme = host.file(ACME_JSON)
    assert acme.mode == 0o600
    assert acme.user == "root"
    data = json.loads(acme.content_string)
    domains = [c["domain"]["main"] for c in data["letsencrypt"]["Certificates"]]
    assert domains.count(DASHBOARD) == 1


def test_certificate_was_obtained_once(host):
    """Converge, the idempotence run and this verify: no domain is ordered again once it has
    its certificate. When Traefik first starts, several routers naming one host may each
    start an order for it, within seconds (a race of Traefik's own, traefik/traefik#6871:
    seen once for auth.gateway.test in a fresh-clone run); a later order is a re-order."""
    logs = host.run("docker logs traefik-traefik-1 2>&1")
    orders: dict[str, list[datetime.datetime]] = {}
    for line in logs.stdout.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            found = re.search(r"Certificates obtained for domains \[([^\]]*)\]", entry.get("message", ""))
            if found:
                when = datetime.datetime.fromisoformat(entry["time"])
                for domain in found.group(1).split():
                    orders.setdefault(domain, []).append(when)
    assert DASHBOARD in orders, logs.stdout[-2000:]
    late = {
        domain: [str(when) for when in times]
        for domain, times in orders.items()
        if max(times) - min(times) > datetime.timedelta(seconds=60)
    }
    assert not late, late


def test_dashboard_needs_credentials(https):
    assert https(DASHBOARD, "/dashboard/")[0] == 401
    assert https(DASHBOARD, "/api/rawdata")[0] == 401
    assert https(DASHBOARD, "/dashboard/", extra="-u admin:wrong")[0] == 401
    assert https(DASHBOARD, "/dashboard/", extra=f"-u {CREDENTIALS}")[0] == 200


def test_secure_headers_on_the_dashboard(host):
    cmd = host.run(
        f"curl -sS -o /dev/null -D - --cacert {ROOT} --resolve {DASHBOARD}:443:127.0.0.1 "
        f"-u {CREDENTIALS} https://{DASHBOARD}/dashboard/"
    )
    headers = cmd.stdout.lower()
    assert "strict-transport-security: max-age=31536000; includesubdomains; preload" in headers
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: deny" in headers


@pytest.mark.parametrize("kind", ["routers", "middlewares", "services"])
def test_everything_in_traefiks_api_is_enabled(https, kind):
    status, body = https(DASHBOARD, f"/api/http/{kind}", extra=f"-u {CREDENTIALS}")
    assert status == 200
    items = json.loads(body)
    assert items, f"no {kind} in Traefik's API"
    broken = {item["name"]: item.get("error") for item in items if item.get("status") != "enabled"}
    assert not broken


def test_expected_middlewares_exist(https):
    _, body = https(DASHBOARD, "/api/http/middlewares", extra=f"-u {CREDENTIALS}")
    names = {item["name"] for item in json.loads(body)}
    assert {"mcp-auth@file", "secure-headers@file", "ip-allowlist@file", "cors@file"} <= names
    mcp_auth = next(item for item in json.loads(body) if item["name"] == "mcp-auth@file")
    assert mcp_auth["forwardAuth"]["authResponseHeaders"] == ["X-User-Id", "X-User-Name", "X-Auth-Token"]
    assert not mcp_auth["forwardAuth"].get("trustForwardHeader", False)


def test_traefik_calls_the_auth_service_over_tls(https):
    """ForwardAuth and the OAuth routes reach the auth service over TLS, trusting the
    internal CA, as Traefik holds them (its API); its servers are UP over https."""
    _, body = https(DASHBOARD, "/api/http/middlewares/mcp-auth@file", extra=f"-u {CREDENTIALS}")
    forward = json.loads(body)["forwardAuth"]
    assert forward["address"] == "https://auth:8000/verify"
    assert forward["tls"]["ca"].startswith("-----BEGIN CERTIFICATE-----")
    _, body = https(DASHBOARD, "/api/http/services/auth@docker", extra=f"-u {CREDENTIALS}")
    service = json.loads(body)
    assert service["loadBalancer"]["serversTransport"] == "auth@file"
    assert service["serverStatus"], service
    assert {url.split("://")[0] for url in service["serverStatus"]} == {"https"}
    # UP: Traefik's health check reached /health over TLS through that transport (its API
    # does not list servers transports themselves).
    assert set(service["serverStatus"].values()) == {"UP"}


def test_internal_entrypoint_is_not_published(docker_json):
    ports = docker_json("inspect traefik-traefik-1")[0]["NetworkSettings"]["Ports"]
    published = sorted(port for port, bindings in ports.items() if bindings)
    assert published == ["443/tcp", "80/tcp"]


def test_ping_and_metrics_answer_on_the_internal_entrypoint(host):
    # Reachable from the host through the container network only (never published).
    ping = host.run("curl -sSf --max-time 5 http://172.30.0.2:8082/ping")
    assert ping.rc == 0, ping.stderr
    assert ping.stdout == "OK"
    metrics = host.run("curl -sSf --max-time 5 http://172.30.0.2:8082/metrics")
    assert metrics.rc == 0, metrics.stderr
    assert "traefik_entrypoint_requests_total" in metrics.stdout


def test_access_log_is_json_and_rotated(host):
    log = host.file("/opt/mcp-gateway/traefik/logs/access.log")
    assert log.exists
    lines = log.content_string.splitlines()
    assert lines, "the access log is empty"
    first = json.loads(lines[0])
    assert "RequestHost" in first
    assert "Authorization" not in log.content_string
    rotate = host.file("/etc/logrotate.d/mcp-gateway-traefik")
    assert "rotate 14" in rotate.content_string
    assert host.run("logrotate --debug /etc/logrotate.d/mcp-gateway-traefik").rc == 0


def test_check_mode_on_the_converged_host_reports_no_change():
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    converge = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    run = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(converge), "--check", "--diff"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recap = re.search(r"^gw1\s*:.*$", run.stdout, re.MULTILINE)
    assert recap, run.stdout[-2000:]
    assert re.search(r"changed=0\b", recap.group(0)), run.stdout[-4000:]


def test_ambiguous_encoded_paths_are_refused(https):
    assert https(DASHBOARD, "/dashboard%2F..%2Fapi", extra=f"-u {CREDENTIALS}")[0] == 400
