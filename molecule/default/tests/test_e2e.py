"""End to end, from the controller: the official MCP Python SDK client through Traefik.

The test host's address is where the gateway answers; its names (echo.gateway.test, ...)
are pinned to it, and certificates are checked against Pebble's issuing root.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import GatewayUser, pinned_transport, tool_json

DOMAIN = "gateway.test"
ECHO = f"https://echo.{DOMAIN}/mcp"
FETCH = f"https://fetch.{DOMAIN}/mcp"


def user(gateway, name):
    address, ca_file = gateway
    return GatewayUser(address, ca_file, name, f"{name}-password")


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


def test_no_token_gets_401_with_resource_metadata(gateway):
    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway)) as http:
            return await http.post(ECHO, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    response = run(go)
    assert response.status_code == 401
    assert (
        response.headers["www-authenticate"]
        == f'Bearer resource_metadata="https://echo.{DOMAIN}/.well-known/oauth-protected-resource"'
    )


def test_oauth_endpoints_answer_without_a_token(gateway):
    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway)) as http:
            meta = await http.get(f"https://echo.{DOMAIN}/.well-known/oauth-protected-resource/mcp")
            server = await http.get(f"https://auth.{DOMAIN}/.well-known/oauth-authorization-server")
            register = await http.post(
                f"https://auth.{DOMAIN}/register",
                json={"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"},
            )
            return meta, server, register

    meta, server, register = run(go)
    assert meta.status_code == 200
    assert meta.json()["resource"] == ECHO
    assert server.status_code == 200
    assert register.status_code == 201


def test_sdk_client_discovers_registers_logs_in_and_calls_tools(gateway):
    alice = user(gateway, "alice")

    async def go():
        async with alice.session(ECHO) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            whoami = tool_json(await session.call_tool("whoami", {}))
            echoed = (await session.call_tool("echo", {"text": "through the gateway"})).content[0].text
            return tools, whoami, echoed

    tools, whoami, echoed = run(go)
    assert {"headers", "whoami", "replica", "echo"} <= tools
    assert whoami["user_id"] == "alice"
    assert whoami["user_name"] == "Alice Example"
    assert echoed == "through the gateway"
    assert alice.storage.tokens.refresh_token


def test_spoofed_identity_headers_never_reach_the_backend(gateway):
    alice = user(gateway, "alice")
    spoofed = {
        "X-User-Id": "mallory",
        "X-User-Name": "Mallory",
        "X-Auth-Token": "forged",
        "X_User_Id": "mallory",
        "X.User.Id": "mallory",
    }

    async def go():
        async with alice.session(ECHO, headers=spoofed) as session:
            return tool_json(await session.call_tool("headers", {}))

    received = {name.lower(): value for name, value in run(go).items()}
    assert received["x-user-id"] == "alice"
    assert received["x-user-name"] == "Alice Example"
    assert received["x-auth-token"] not in ("forged", "")
    assert received["x-auth-token"] == alice.storage.tokens.access_token
    assert "x_user_id" not in received
    assert "x.user.id" not in received
    assert "mallory" not in json.dumps(received).lower()


def test_user_outside_the_allow_list_gets_403(gateway):
    bob = user(gateway, "bob")

    async def go():
        async with httpx2.AsyncClient(transport=bob.transport(), auth=bob.oauth(ECHO), timeout=60) as http:
            return await http.post(
                ECHO,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Accept": "application/json, text/event-stream"},
            )

    response = run(go)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_two_replicas_both_receive_traffic(gateway):
    alice = user(gateway, "alice")

    async def go():
        names = set()
        async with alice.session(ECHO) as session:
            for _ in range(8):
                names.add((await session.call_tool("replica", {})).content[0].text)
        return names

    assert len(run(go)) == 2


def test_sticky_cookie_keeps_a_client_on_one_replica(gateway):
    alice = user(gateway, "alice")

    async def go():
        names = set()
        async with alice.session(f"https://sticky.{DOMAIN}/mcp") as session:
            for _ in range(8):
                names.add((await session.call_tool("replica", {})).content[0].text)
        return names

    assert len(run(go)) == 1


def test_fetch_server_fetches_a_page_served_inside_the_test_host(gateway, host):
    """The fetch server reaches out of its own network (to the test host, as to the Internet)."""
    alice = user(gateway, "alice")
    # The test host as seen from the fetch server's network: that network's gateway address.
    address = host.run(
        "docker network inspect mcp-fetch --format '{{(index .IPAM.Config 0).Gateway}}'"
    ).stdout.strip()
    page = host.run(
        "mkdir -p /tmp/e2e-page && echo 'page served inside the test host' > /tmp/e2e-page/index.html && "
        "(cd /tmp/e2e-page && nohup python3 -m http.server 8765 >/dev/null 2>&1 &) && sleep 1"
    )
    assert page.rc == 0, page.stderr

    async def go():
        async with alice.session(FETCH) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            url = f"http://{address}:8765/index.html"
            result = await session.call_tool("fetch", {"url": url, "raw": True})
            return tools, result

    try:
        tools, result = run(go)
    finally:
        host.run("pkill -f 'http.server 8765'")
    assert "fetch" in tools
    assert not result.is_error, result.content[0].text
    assert "page served inside the test host" in result.content[0].text


def test_token_for_fetch_is_refused_on_echo(gateway):
    alice = user(gateway, "alice")

    async def go():
        async with alice.session(FETCH) as session:
            await session.list_tools()
        token = alice.storage.tokens.access_token
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway)) as http:
            return await http.post(
                ECHO,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
            )

    response = run(go)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_bob_is_refused_on_echo_but_served_on_fetch(gateway):
    bob = user(gateway, "bob")

    async def go():
        async with bob.session(FETCH) as session:
            return {tool.name for tool in (await session.list_tools()).tools}

    assert "fetch" in run(go)
