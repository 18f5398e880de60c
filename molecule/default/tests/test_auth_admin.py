"""Issue 16 on the real gateway: a client manages itself through Traefik (RFC 7592) and its
token dies with it; the signing key rotates through playbooks/auth-admin.yml, the old key's
tokens stay valid until its retirement and fail after it."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import REDIRECT_URI, GatewayUser, pinned_transport, tool_json

DOMAIN = "gateway.test"
AUTH = f"https://auth.{DOMAIN}"
ECHO = f"https://echo.{DOMAIN}/mcp"
PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "auth-admin.yml"


def alice(gateway) -> GatewayUser:
    return GatewayUser(*gateway, "alice", "alice-password")


async def mcp_status(gateway, token: str) -> int:
    """What the MCP route answers a bare request with this token: 401 when /verify refuses it."""
    async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=30) as http:
        response = await http.post(
            ECHO,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        )
        return response.status_code


def kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


async def token_of_a_new_sign_in(gateway) -> str:
    user = alice(gateway)
    async with user.session(ECHO) as session:
        assert tool_json(await session.call_tool("whoami", {}))["user_id"] == "alice"
    return user.storage.tokens.access_token


# -- (a) RFC 7592 through Traefik ----------------------------------------------------------------------


def test_a_client_reads_updates_and_deletes_itself_and_its_token_dies_with_it(gateway):
    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=30) as http:
            registered = await http.post(
                f"{AUTH}/register",
                json={
                    "client_name": "Self-managing client",
                    "redirect_uris": [REDIRECT_URI],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "none",
                },
            )
            assert registered.status_code == 201, registered.text
            client = registered.json()
            uri, bearer = (
                client["registration_client_uri"],
                {"Authorization": f"Bearer {client['registration_access_token']}"},
            )
            assert uri == f"{AUTH}/register/{client['client_id']}"

            read = await http.get(uri, headers=bearer)
            assert read.status_code == 200, read.text
            assert read.json() == client
            assert (await http.get(uri)).status_code == 401

            body = {
                k: v
                for k, v in client.items()
                if k not in ("registration_access_token", "registration_client_uri")
            }
            updated = await http.put(uri, json={**body, "client_name": "Renamed client"}, headers=bearer)
            assert updated.status_code == 200, updated.text
            assert updated.json()["client_name"] == "Renamed client"

            # The SDK flow with this registration (no new one): sign in, consent, token, a tool call.
            user = alice(gateway)
            user.storage.client = OAuthClientInformationFull.model_validate(updated.json())
            async with user.session(ECHO) as session:
                assert tool_json(await session.call_tool("whoami", {}))["user_id"] == "alice"
            token = user.storage.tokens.access_token
            assert (await mcp_status(gateway, token)) != 401

            deleted = await http.delete(uri, headers=bearer)
            assert deleted.status_code == 204
            # The very next request with its token is refused at the MCP route.
            assert (await mcp_status(gateway, token)) == 401
            assert (await http.get(uri, headers=bearer)).status_code == 401

    anyio.run(go)


# -- (b) key rotation through the playbook ---------------------------------------------------------------


def auth_admin(command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(PLAYBOOK),
            "-e",
            json.dumps({"auth_admin_command": command}),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def eventually_status(gateway, token: str, expected: int, seconds: float = 15) -> int:
    """Workers look at the key directory every 2 s: a retirement reaches them all within seconds."""
    deadline = time.monotonic() + seconds
    while True:
        status = anyio.run(mcp_status, gateway, token)
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_a_rotated_key_signs_and_the_old_keys_tokens_live_until_its_retirement(gateway):
    old_token = anyio.run(token_of_a_new_sign_in, gateway)
    old_kid = kid(old_token)

    rotated = auth_admin("keys rotate")
    assert rotated.returncode == 0, rotated.stdout[-3000:] + rotated.stderr[-2000:]
    new_kid = re.search(r"signing with ([A-Za-z0-9_-]+)", rotated.stdout).group(1)
    assert new_kid != old_kid

    async def jwks():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway)) as http:
            return [key["kid"] for key in (await http.get(f"{AUTH}/.well-known/jwks.json")).json()["keys"]]

    assert anyio.run(jwks) == [new_kid, old_kid]
    new_token = anyio.run(token_of_a_new_sign_in, gateway)
    assert kid(new_token) == new_kid
    # Until its retirement, the old key's token is still accepted.
    assert anyio.run(mcp_status, gateway, old_token) != 401

    # Too early (the access-token lifetime has not passed): refused, nothing changes.
    early = auth_admin("keys retire")
    assert early.returncode != 0
    assert "not yet" in early.stdout + early.stderr
    assert anyio.run(mcp_status, gateway, old_token) != 401

    forced = auth_admin("keys retire --force")
    assert forced.returncode == 0, forced.stdout[-3000:] + forced.stderr[-2000:]
    assert f"retired {old_kid}" in forced.stdout
    assert eventually_status(gateway, old_token, 401) == 401
    assert anyio.run(mcp_status, gateway, new_token) != 401
    assert anyio.run(jwks) == [new_kid]
