"""Issue 13, through the real edge: each finding of the attack on a running gateway, shown
fixed the way an attacker (or a browser-based client) meets it. Named by finding number."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import GatewayUser, pinned_transport, tool_json

DOMAIN = "gateway.test"
AUTH = f"https://auth.{DOMAIN}"
ECHO = f"https://echo.{DOMAIN}/mcp"
DASHBOARD = f"https://traefik.{DOMAIN}/dashboard/"
ECHO_METADATA = f'resource_metadata="https://echo.{DOMAIN}/.well-known/oauth-protected-resource"'
SPRAY = Path(__file__).parent / "scripts" / "spray_logins.py"
TRAEFIK = "172.30.0.2"  # Traefik's fixed address on the public network (group_vars)
# Over traefik_oauth_max_request_body_bytes (64 KiB), small enough that the whole request
# is sent before Traefik answers 413 and closes the connection.
LARGE = 100 * 1024


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


async def _request(gateway, method: str, url: str, **kwargs) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=30) as http:
        return await http.request(method, url, **kwargs)


def request(gateway, method: str, url: str, **kwargs) -> httpx2.Response:
    return run(lambda: _request(gateway, method, url, **kwargs))


def burst(gateway, method: str, url: str, count: int) -> list[httpx2.Response]:
    """`count` requests at once from the controller (one client address)."""

    async def go():
        limits = httpx2.Limits(max_connections=50)
        async with httpx2.AsyncClient(
            transport=pinned_transport(*gateway), timeout=30, limits=limits
        ) as http:
            responses: list[httpx2.Response] = []

            async def one():
                responses.append(await http.request(method, url))

            async with anyio.create_task_group() as group:
                for _ in range(count):
                    group.start_soon(one)
            return responses

    try:
        return run(go)
    finally:
        time.sleep(4)  # the buckets refill before the next test (burst / average < 4 s)


def echo_headers(gateway, headers: dict[str, str]) -> dict[str, str]:
    """What the echo backend received, with these extra request headers."""
    alice = GatewayUser(*gateway, "alice", "alice-password")

    async def go():
        async with alice.session(ECHO, headers=headers) as session:
            return tool_json(await session.call_tool("headers", {}))

    return {name.lower(): value for name, value in run(go).items()}


def auth_log(host) -> list[dict]:
    """The auth service's JSON log lines."""
    output = host.run("docker logs auth-auth-1 2>&1").stdout
    return [json.loads(line) for line in output.splitlines() if line[:1] == "{"]


# -- finding 1: anyone could lock every user out ----------------------------------------------------


@pytest.fixture(scope="module")
def spray(host):
    """26 failed sign-ins with random user names, from a container on the public network."""
    script = SPRAY.read_text()
    assert "PYEOF" not in script
    host.run(f"cat > /tmp/spray_logins.py <<'PYEOF'\n{script}\nPYEOF")
    # An address of its own on every run (outside Docker's range of the public network), so
    # that a second verify run is not paused by the first one's failures.
    address = f"172.30.0.{20 + secrets.randbelow(100)}"
    cmd = host.run(
        f"docker run --rm --network public --ip {address} --add-host auth.{DOMAIN}:{TRAEFIK} "
        "-v /opt/mcp-gateway/acme-test-ca/issuing-root.pem:/ca.pem:ro -v /tmp/spray_logins.py:/spray.py:ro "
        "--entrypoint /opt/auth/bin/python mcpgw/auth:0.1.0 /spray.py 26"
    )
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def test_finding_1_a_sprayer_pauses_only_its_own_address(spray):
    # auth_login_max_failures_per_address (25) failures, then the form pauses that address.
    assert spray["statuses"] == [401] * 25 + [429]
    assert int(spray["retry_after"]) > 800


def test_finding_1_everyone_else_still_signs_in(spray, gateway):
    alice = GatewayUser(*gateway, "alice", "alice-password")

    async def go():
        async with alice.session(ECHO) as session:
            return {tool.name for tool in (await session.list_tools()).tools}

    assert "whoami" in run(go)


def test_finding_1_the_service_counts_the_clients_address_not_traefiks(spray, host):
    lines = auth_log(host)
    failed = [line for line in lines if line.get("message") == "login failed"]
    limited = [line for line in lines if line.get("message") == "login rate limited"]
    assert spray["address"] != TRAEFIK
    assert sum(line["address"] == spray["address"] for line in failed) == 25
    assert any(line["address"] == spray["address"] for line in limited)
    assert all(line["address"] != TRAEFIK for line in failed + limited)


# -- finding 4: login audit events were lost --------------------------------------------------------


def test_finding_4_failed_logins_are_json_lines_with_user_and_address(spray, host):
    lines = auth_log(host)
    failed = [line for line in lines if line.get("message") == "login failed"]
    assert failed, "no 'login failed' event in the auth service's log"
    event = failed[-1]
    assert event["level"] == "info"
    assert event["logger"] == "mcp_gateway_auth.login"
    assert event["username"].startswith("u")
    assert {"time", "address"} <= event.keys()


# -- findings 2 and 3: Redis could be filled, /revoke read any body ---------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/register", {"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "x" * LARGE}),
        ("/authorize", {"client_id": "x", "state": "s" * LARGE}),
        ("/revoke", {"token": "t" * LARGE}),
        ("/token", {"grant_type": "refresh_token", "refresh_token": "r" * LARGE}),
    ],
)
def test_finding_2_and_3_a_large_body_is_413_at_the_edge(gateway, path, body):
    kwargs = {"json": body} if path == "/register" else {"data": body}
    response = request(gateway, "POST", AUTH + path, **kwargs)
    assert response.status_code == 413
    assert "strict-transport-security" in response.headers


def test_finding_2_the_auth_service_is_rate_limited_per_address(gateway):
    # More than the burst (60) and a second's average (20) at once.
    responses = burst(gateway, "GET", AUTH + "/.well-known/oauth-authorization-server", 200)
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {200, 429}
    assert all(int(r.headers["retry-after"]) >= 0 for r in limited)


def test_the_mcp_routes_are_rate_limited_before_the_auth_check(gateway):
    # More than the burst (300) and a second's average (100) at once.
    responses = burst(gateway, "GET", ECHO, 1000)
    statuses = {r.status_code for r in responses}
    assert statuses == {401, 429}, statuses
    assert all("retry-after" in r.headers for r in responses if r.status_code == 429)


# -- finding 5: backends reached each other -------------------------------------------------------


def _address(docker_json, container: str, network: str) -> str:
    return docker_json(f"inspect {container}")[0]["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_finding_5_the_fetch_server_reaches_no_other_backend(host, docker_json):
    targets = {
        "echo replica 1": (_address(docker_json, "mcp-echo-server-1", "mcp-echo"), 8000),
        "echo replica 2": (_address(docker_json, "mcp-echo-server-2", "mcp-echo"), 8000),
        "auth service": (_address(docker_json, "auth-auth-1", "public"), 8000),
        "auth's redis": (_address(docker_json, "auth-redis-1", "gateway-backend"), 6379),
    }
    probe = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
        "    print('open')\n"
        "except OSError as error:\n"
        "    print('closed', error)\n"
    )
    for name, (address, port) in targets.items():
        cmd = host.run(f'docker exec mcp-fetch-server-1 /opt/proxy/bin/python -c "{probe}" {address} {port}')
        assert cmd.rc == 0, cmd.stderr
        assert cmd.stdout.startswith("closed"), f"{name} at {address}:{port} is reachable from fetch"


def test_finding_5_traefiks_metrics_are_refused_to_the_services(host, docker_json):
    traefik = _address(docker_json, "traefik-traefik-1", "mcp-fetch")
    probe = (
        "import urllib.request, urllib.error, sys\n"
        "try:\n"
        "    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
    )
    for path in ("/metrics", "/ping"):
        cmd = host.run(
            f'docker exec mcp-fetch-server-1 /opt/proxy/bin/python -c "{probe}" http://{traefik}:8082{path}'
        )
        assert cmd.stdout.strip() == "403", (path, cmd.stdout, cmd.stderr)


# -- finding 6: errors redirected to any self-registered https URI ----------------------------------


def test_finding_6_an_error_for_a_self_registered_web_client_is_our_page(gateway):
    registered = request(
        gateway,
        "POST",
        AUTH + "/register",
        json={"redirect_uris": ["https://app.example.com/callback"], "client_name": "Claude Desktop"},
    )
    assert registered.status_code == 201
    response = request(
        gateway,
        "GET",
        AUTH + "/authorize",
        params={
            "response_type": "code",
            "client_id": registered.json()["client_id"],
            "redirect_uri": "https://app.example.com/callback",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "scope": "Your account is locked - call +1-555-0100 now",
        },
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "<code>invalid_scope</code>" in response.text
    assert "app.example.com" in response.text
    assert "555" not in response.text


# -- finding 7: security headers where they matter most ---------------------------------------------


@pytest.mark.parametrize("url", [ECHO, DASHBOARD, AUTH + "/.well-known/oauth-authorization-server"])
def test_finding_7_every_answer_carries_hsts_and_no_server_banner(gateway, url):
    response = request(gateway, "GET", url)
    assert response.status_code == (200 if "well-known" in url else 401)
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers


# -- finding 8: OAuth error conformance -------------------------------------------------------------


def test_finding_8_an_unknown_client_at_token_is_401_with_www_authenticate(gateway):
    response = request(
        gateway,
        "POST",
        AUTH + "/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://127.0.0.1:9/cb"},
        auth=("no-such-client", "secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_finding_8_an_unknown_grant_type_is_unsupported_grant_type(gateway):
    registered = request(
        gateway,
        "POST",
        AUTH + "/register",
        json={"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"},
    )
    response = request(
        gateway,
        "POST",
        AUTH + "/token",
        data={
            "grant_type": "password",
            "client_id": registered.json()["client_id"],
            "username": "a",
            "password": "b",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# -- finding 9: browser-based clients ---------------------------------------------------------------


def test_finding_9_a_preflight_from_an_allowed_origin_is_answered_before_the_auth_check(gateway):
    headers = {
        "Origin": "https://inspector.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
    }
    allowed = request(gateway, "OPTIONS", ECHO, headers=headers)
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == "https://inspector.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = request(gateway, "OPTIONS", ECHO, headers={**headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "url",
    [
        f"https://echo.{DOMAIN}/.well-known/oauth-protected-resource/mcp",
        AUTH + "/.well-known/oauth-authorization-server",
    ],
)
def test_finding_9_discovery_documents_are_readable_from_any_origin(gateway, url):
    response = request(gateway, "GET", url, headers={"Origin": "https://inspector.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


# -- finding 10: the lower findings -----------------------------------------------------------------


def test_finding_10_two_authorization_headers_are_invalid_request(gateway):
    headers = [("Authorization", "Bearer one"), ("Authorization", "Bearer two")]
    response = request(
        gateway, "POST", ECHO, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert ECHO_METADATA in response.headers["www-authenticate"]


def test_finding_10_a_host_with_the_default_port_is_the_same_resource(gateway):
    response = request(gateway, "POST", ECHO, headers={"Host": f"echo.{DOMAIN}:443"}, json={})
    assert response.status_code == 401
    assert ECHO_METADATA in response.headers["www-authenticate"]


def test_finding_10_a_clients_forwarded_header_never_reaches_a_backend(gateway):
    received = echo_headers(gateway, {"Forwarded": "for=203.0.113.9;proto=https", "X-Real-Ip": "203.0.113.9"})
    assert "forwarded" not in received
    assert received.get("x-real-ip") != "203.0.113.9"


def test_finding_10_a_token_in_the_url_is_refused_and_never_logged(gateway, host):
    marker, token = secrets.token_hex(8), "leak-" + secrets.token_hex(16)
    response = request(gateway, "GET", f"{ECHO}/{marker}", params={"access_token": token})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    log = "/opt/mcp-gateway/traefik/logs/access.log"
    for _ in range(20):  # the access log is written in batches
        lines = [line for line in host.file(log).content_string.splitlines() if marker in line]
        if lines:
            break
        time.sleep(0.5)
    assert len(lines) == 1, "the request is not in the access log"
    assert token not in lines[0]
    assert json.loads(lines[0])["RequestPath"] == f"/mcp/{marker}"
