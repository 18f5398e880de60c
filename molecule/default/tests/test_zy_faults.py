"""Faults (issue 13): a part of the gateway stops or restarts under a signed-in user.

The gateway fails closed while the auth service or its Redis is away (never the backend's
answer without a checked token), and comes back by itself: clients and refresh tokens
survive a Redis restart, certificates survive a Traefik restart (no new order), and every
container returns after the Engine restarts. The seconds each recovery took are printed at
the end of the run (conftest.py) and recorded in the README.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import GatewayUser, pinned_transport

DOMAIN = "gateway.test"
ECHO = f"https://echo.{DOMAIN}/mcp"
AUTH = f"https://auth.{DOMAIN}"
ACME_JSON = "/opt/mcp-gateway/traefik/acme/acme.json"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture(scope="module")
def alice(gateway) -> GatewayUser:
    """Alice, signed in to echo (her client holds an access and a refresh token)."""
    user = GatewayUser(*gateway, "alice", "alice-password")

    async def go():
        async with user.session(ECHO) as session:
            await session.list_tools()

    anyio.run(go)
    assert user.storage.tokens
    assert user.storage.tokens.refresh_token
    return user


def echo_status(gateway, token: str | None) -> tuple[int, str]:
    async def go():
        headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=10) as http:
            try:
                response = await http.post(ECHO, json=PING, headers=headers)
            except httpx2.TransportError as error:
                return 0, repr(error)
            return response.status_code, response.text

    return anyio.run(go)


def until(check, seconds: float = 90) -> float:
    """Seconds until check() holds (polled); fails after `seconds`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "did not recover in time"
        time.sleep(0.25)
    return round(time.monotonic() - start, 1)


def containers(host, project: str, service: str) -> str:
    return host.run(
        f"docker ps -aq --filter label=com.docker.compose.project={project} "
        f"--filter label=com.docker.compose.service={service} | tr '\\n' ' '"
    ).stdout.strip()


class RequestLoop:
    """A bounded request loop beside a fault: one MCP ping with `token` every 50 ms (at most
    `limit` requests), counting the answers by status (0: no answer) and the backend
    answers among them."""

    def __init__(self, gateway, token: str | None, limit: int = 3000) -> None:
        self.gateway, self.token, self.limit = gateway, token, limit
        self.statuses: Counter[int] = Counter()
        self.backend_answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: anyio.run(self._run), daemon=True)

    async def _run(self) -> None:
        headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        async with httpx2.AsyncClient(transport=pinned_transport(*self.gateway), timeout=5) as http:
            for _ in range(self.limit):
                if self._stop.is_set():
                    break
                try:
                    response = await http.post(ECHO, json=PING, headers=headers)
                    self.statuses[response.status_code] += 1
                    self.backend_answers += '"result"' in response.text
                except httpx2.TransportError:
                    self.statuses[0] += 1
                await anyio.sleep(0.05)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def summary(self) -> str:
        return ", ".join(
            f"{status or 'no answer'}: {count}" for status, count in sorted(self.statuses.items())
        )


def test_fault_auth_service_stopped_fails_closed(host, gateway, alice, figures):
    token = alice.storage.tokens.access_token
    assert echo_status(gateway, token)[0] == 200
    auth = containers(host, "auth", "auth")
    assert host.run(f"docker stop {auth}").rc == 0
    try:
        with RequestLoop(gateway, token) as signed_in, RequestLoop(gateway, None) as anonymous:
            time.sleep(3)
    finally:
        assert host.run(f"docker start {auth}").rc == 0
    figures["auth stopped, 3 s: requests with a token"] = signed_in.summary()
    figures["auth stopped, 3 s: requests without a token"] = anonymous.summary()
    for loop in (signed_in, anonymous):
        assert sum(loop.statuses.values()) > 10
        assert set(loop.statuses) <= {401, 500, 502, 503, 504}, loop.statuses
        assert loop.backend_answers == 0
    figures["auth started → MCP request served (s)"] = until(lambda: echo_status(gateway, token)[0] == 200)


def test_fault_redis_stopped_fails_closed(host, gateway, alice, figures):
    token = alice.storage.tokens.access_token
    redis = containers(host, "auth", "redis")
    assert host.run(f"docker stop {redis}").rc == 0
    try:
        with RequestLoop(gateway, token) as loop:
            time.sleep(3)
    finally:
        assert host.run(f"docker start {redis}").rc == 0
    figures["Redis stopped, 3 s: requests with a token"] = loop.summary()
    assert sum(loop.statuses.values()) > 10
    assert set(loop.statuses) == {503}, loop.statuses
    assert loop.backend_answers == 0
    figures["Redis started → MCP request served (s)"] = until(lambda: echo_status(gateway, token)[0] == 200)


def auth_status(gateway) -> int:
    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=10) as http:
            return (await http.get(f"{AUTH}/.well-known/oauth-authorization-server")).status_code

    return anyio.run(go)


def test_fault_clients_and_refresh_tokens_survive_a_redis_restart(host, gateway, alice, figures):
    redis = containers(host, "auth", "redis")
    assert host.run(f"docker restart {redis}").rc == 0
    until(lambda: echo_status(gateway, alice.storage.tokens.access_token)[0] == 200)
    # The auth service's own routes return once its health check (which asks Redis) passes
    # again: Traefik routes to healthy containers only.
    figures["Redis restarted → the auth service's routes answer (s)"] = until(
        lambda: auth_status(gateway) == 200
    )

    async def refresh():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=10) as http:
            return await http.post(
                f"{AUTH}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": alice.storage.tokens.refresh_token,
                    "client_id": alice.storage.client.client_id,
                    "resource": ECHO,
                },
            )

    response = anyio.run(refresh)
    assert response.status_code == 200, response.text
    assert echo_status(gateway, response.json()["access_token"])[0] == 200


def _served_serial(host) -> str:
    cmd = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername echo.{DOMAIN} </dev/null 2>/dev/null "
        "| openssl x509 -noout -serial"
    )
    return cmd.stdout.strip()


def _issued(host) -> int:
    pebble = containers(host, "acme-test-ca", "pebble")
    return host.run(f"docker logs {pebble} 2>&1").stdout.count("Issued certificate serial")


def test_fault_traefik_restart_keeps_its_certificates(host, gateway, alice, figures):
    serial, issued = _served_serial(host), _issued(host)
    digest = hashlib.sha256(host.file(ACME_JSON).content).hexdigest()
    assert serial.startswith("serial=")
    traefik = containers(host, "traefik", "traefik")
    token = alice.storage.tokens.access_token
    with RequestLoop(gateway, token) as loop:
        assert host.run(f"docker restart {traefik}").rc == 0
        figures["Traefik restarted → MCP request served (s)"] = until(
            lambda: echo_status(gateway, token)[0] == 200
        )
    figures["Traefik restart: requests seen"] = loop.summary()
    assert set(loop.statuses) <= {0, 200, 404, 502, 503}, loop.statuses
    assert _served_serial(host) == serial
    assert hashlib.sha256(host.file(ACME_JSON).content).hexdigest() == digest
    assert host.file(ACME_JSON).mode == 0o600
    assert _issued(host) == issued, "Traefik ordered a certificate again"


def test_fault_every_container_returns_after_the_engine_restarts(host, gateway, alice, figures):
    before = host.run("docker ps --format '{{.Names}}' | sort").stdout
    token = alice.storage.tokens.access_token
    start = time.monotonic()
    with RequestLoop(gateway, token) as loop:
        assert host.run("systemctl restart docker").rc == 0
        until(lambda: echo_status(gateway, token)[0] == 200, 120)
        figures["Engine restarted → MCP request served (s)"] = round(time.monotonic() - start, 1)
    figures["Engine restart: requests seen"] = loop.summary()
    until(lambda: host.run("docker ps --format '{{.Names}}' | sort").stdout == before, 120)
    until(lambda: not host.run("docker ps --filter health=starting -q").stdout.strip(), 120)
    assert not host.run("docker ps --filter health=unhealthy --format '{{.Names}}'").stdout.strip()
    assert loop.backend_answers == loop.statuses[200]
