"""The operator's commands (`mcp-gateway-auth clients|grants|consents ...`), run as an
operator runs them, against the Redis of a running service: what they print, and what a
client sees afterwards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from mcp_gateway_auth.__main__ import main

from .conftest import ECHO, FETCH, HASHES, ISSUER, Flow, pkce_pair

pytestmark = pytest.mark.anyio

DOCUMENT_CLIENT = "https://app.example.com/client.json"


@pytest.fixture
def config(redis_server, key_file, tmp_path, monkeypatch) -> Path:
    """The service's configuration file, as the commands read it inside its container."""
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "issuer": ISSUER,
                "resources": [{"host": FETCH}, {"host": ECHO}],
                "signing_key_file": str(key_file),
                "redis_url": redis_server,
                "users": [{"username": "alice", "password_hash": HASHES["alice"]}],
            }
        )
    )
    monkeypatch.setenv("AUTH_CONFIG", str(path))
    return path


async def cli(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def cli_json(capsys, *argv: str):
    code, out = await cli(capsys, *argv, "--json")
    assert code == 0, out
    return json.loads(out)


# -- clients ---------------------------------------------------------------------------------------


async def test_clients_list_shows_registered_and_document_clients(flow: Flow, service, config, capsys):
    client = await flow.register(client_name="Claude Desktop")
    await service.store.put_client_document(
        DOCUMENT_CLIENT,
        {
            "client_id": DOCUMENT_CLIENT,
            "client_name": "Doc App",
            "redirect_uris": ["https://app.example.com/cb"],
        },
        600,
    )
    code, out = await cli(capsys, "clients", "list")
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split() == ["CLIENT_ID", "NAME", "KIND", "AUTH", "REDIRECTS", "REGISTERED", "EXPIRES"]
    assert any(row.startswith(client["client_id"]) and "Claude Desktop" in row for row in rows)
    clients = await cli_json(capsys, "clients", "list")
    by_id = {row["client_id"]: row for row in clients}
    assert by_id[client["client_id"]]["kind"] == "registered"
    assert by_id[client["client_id"]]["redirects"] == ["http://127.0.0.1:33418"]
    assert by_id[DOCUMENT_CLIENT]["kind"] == "metadata document"


async def test_clients_show_never_prints_a_secret(flow: Flow, config, capsys):
    client = await flow.register(token_endpoint_auth_method="client_secret_post")
    code, out = await cli(capsys, "clients", "show", client["client_id"])
    assert code == 0, out
    assert "(set)" in out
    for secret in (client["client_secret"], client["registration_access_token"]):
        assert secret not in out
    assert "registration_access_token" not in out
    shown = await cli_json(capsys, "clients", "show", client["client_id"])
    assert shown["grants"] == 0
    assert shown["redirect_uris"] == ["http://127.0.0.1:33418/callback"]


async def test_clients_show_counts_grants_and_users(flow: Flow, config, capsys):
    client, _ = await flow.tokens_for()
    shown = await cli_json(capsys, "clients", "show", client["client_id"])
    assert (shown["grants"], shown["users"], shown["consents"]) == (1, ["alice"], 1)


async def test_an_unknown_client_is_exit_1(config, service, capsys):
    for action in ("show", "revoke"):
        code, out = await cli(capsys, "clients", action, "no-such-client")
        assert code == 1
        assert "no client 'no-such-client'" in out


async def test_clients_revoke_deletes_the_client_and_ends_its_tokens(flow: Flow, config, capsys):
    client, tokens = await flow.tokens_for()
    _other, others = await flow.tokens_for()
    code, out = await cli(capsys, "clients", "revoke", client["client_id"])
    assert code == 0, out
    assert f"deleted client {client['client_id']}: 1 grant(s) revoked, 1 consent(s) withdrawn" in out
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code in (400, 401)
    assert (await flow.authorize(client["client_id"], pkce_pair()[1])).status_code == 400
    assert (await flow.verify(others["access_token"])).status_code == 200


async def test_clients_revoke_ends_a_document_clients_grants(flow: Flow, service, config, capsys):
    """A metadata-document client is nobody's to delete: its grants end, its cached document
    goes (it is fetched and checked again if it comes back)."""
    await service.store.put_client_document(
        DOCUMENT_CLIENT,
        {
            "client_id": DOCUMENT_CLIENT,
            "client_name": "Doc App",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "mcp",
        },
        600,
    )
    verifier, challenge = pkce_pair()
    authorize = await flow.authorize(DOCUMENT_CLIENT, challenge)
    assert authorize.status_code == 302, authorize.text
    done = await flow.login(authorize.headers["location"])
    code = done.headers["location"].split("code=")[1].split("&")[0]
    tokens = (await flow.token(DOCUMENT_CLIENT, code, verifier)).json()
    assert (await flow.verify(tokens["access_token"])).status_code == 200
    status, out = await cli(capsys, "clients", "revoke", DOCUMENT_CLIENT)
    assert status == 0, out
    assert f"revoked client {DOCUMENT_CLIENT}: 1 grant(s) revoked" in out
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert await service.store.get_client_document(DOCUMENT_CLIENT) is None


# -- grants ----------------------------------------------------------------------------------------


async def test_grants_list_shows_who_signed_in_where(flow: Flow, config, capsys):
    alice_client, _ = await flow.tokens_for()
    await flow.tokens_for(username="bob", resource=f"https://{ECHO}/mcp")
    code, out = await cli(capsys, "grants", "list")
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split() == [
        "USER",
        "NAME",
        "CLIENT_ID",
        "RESOURCE",
        "SCOPES",
        "SIGNED_IN",
        "LAST_USED",
        "EXPIRES",
    ]
    assert len(rows) == 2
    grants = await cli_json(capsys, "grants", "list", "--user", "alice")
    assert [(g["user"], g["client_id"], g["resource"]) for g in grants] == [
        ("alice", alice_client["client_id"], f"https://{FETCH}/mcp")
    ]
    assert grants[0]["signed_in"].endswith("Z")
    assert await cli_json(capsys, "grants", "list", "--client", alice_client["client_id"]) == grants


async def test_revoked_grants_are_not_listed(flow: Flow, config, capsys):
    client, tokens = await flow.tokens_for()
    await flow.http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": client["client_id"]})
    assert await cli_json(capsys, "grants", "list") == []


async def test_grants_revoke_user_ends_their_tokens_everywhere_at_once(flow: Flow, config, capsys):
    _, alice_fetch = await flow.tokens_for()
    _, alice_echo = await flow.tokens_for(resource=f"https://{ECHO}/mcp")
    _, bob = await flow.tokens_for(username="bob")
    code, out = await cli(capsys, "grants", "revoke", "--user", "alice")
    assert code == 0, out
    assert out.strip() == "revoked every grant of user alice: 2 active grant(s) ended"
    assert (await flow.verify(alice_fetch["access_token"])).status_code == 401
    assert (await flow.verify(alice_echo["access_token"], host=ECHO)).status_code == 401
    assert (await flow.verify(bob["access_token"])).status_code == 200
    assert [g["user"] for g in await cli_json(capsys, "grants", "list")] == ["bob"]


async def test_grants_revoke_client(flow: Flow, config, capsys):
    client, tokens = await flow.tokens_for()
    _, others = await flow.tokens_for()
    result = await cli_json(capsys, "grants", "revoke", "--client", client["client_id"])
    assert result["grants_revoked"] == 1
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    assert (await flow.verify(others["access_token"])).status_code == 200
    # The client itself stays registered: its next sign-in works.
    await anyio.sleep(1.05 - time.time() % 1)
    verifier, challenge = pkce_pair()
    response = await flow.authorize(client["client_id"], challenge)
    done = await flow.login(response.headers["location"])
    code = done.headers["location"].split("code=")[1].split("&")[0]
    assert (await flow.token(client["client_id"], code, verifier)).status_code == 200


async def test_grants_revoke_before_a_time(flow: Flow, config, capsys):
    _, old = await flow.tokens_for()
    code, out = await cli(capsys, "grants", "revoke", "--before", "now")
    assert code == 0, out
    assert "1 active grant(s) ended" in out
    assert (await flow.verify(old["access_token"])).status_code == 401


async def test_grants_revoke_refuses_the_future_and_bad_times(config, service, capsys):
    code, out = await cli(capsys, "grants", "revoke", "--before", "2999-01-01T00:00:00Z")
    assert code == 1
    assert "must not be in the future" in out
    with pytest.raises(SystemExit) as exited:
        await cli(capsys, "grants", "revoke", "--before", "yesterday")
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        await cli(capsys, "grants", "revoke")  # one of --user, --client, --before


# -- consents --------------------------------------------------------------------------------------


async def test_consents_list_and_revoke(flow: Flow, config, capsys):
    client, _ = await flow.tokens_for()
    consents = await cli_json(capsys, "consents", "list", "--user", "alice")
    assert [(c["user"], c["client_id"], c["resource"]) for c in consents] == [
        ("alice", client["client_id"], f"https://{FETCH}/mcp")
    ]
    assert await cli_json(capsys, "consents", "list", "--user", "bob") == []
    code, out = await cli(capsys, "consents", "revoke", "--user", "alice", "--client", client["client_id"])
    assert code == 0, out
    assert out.startswith("withdrew 1 consent(s) of user alice, client ")
    # Asked again next time.
    response = await flow.authorize(client["client_id"], pkce_pair()[1])
    signed_in = await flow.login(response.headers["location"], consent=None)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"].startswith(f"{ISSUER}/consent?")


async def test_consents_revoke_needs_a_user_or_a_client(config, capsys):
    code, out = await cli(capsys, "consents", "revoke")
    assert code == 2
    assert "--user or --client" in out


# -- configuration ---------------------------------------------------------------------------------


async def test_a_missing_configuration_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTH_CONFIG", str(tmp_path / "nothing.json"))
    code, out = await cli(capsys, "grants", "list")
    assert code == 2
    assert "auth config: cannot read" in out
