"""RFC 7592: a registered client reads, updates and deletes its own registration at
https://<issuer>/register/<client_id>, with the registration access token it got from
RFC 7591 registration. Every error case the RFC names, as a client sees it."""

from __future__ import annotations

import json

import pytest

from .conftest import ISSUER, REDIRECT_URI, Flow, pkce_pair

pytestmark = pytest.mark.anyio

OTHER_REDIRECT = "http://127.0.0.1:40000/callback"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(flow: Flow, **extra) -> dict:
    client = await flow.register(**extra)
    return client


def metadata_of(client: dict) -> dict:
    """What a client sends back in an update: everything but the server-assigned fields."""
    dropped = ("registration_access_token", "registration_client_uri", "client_id_issued_at")
    return {k: v for k, v in client.items() if k not in dropped and k != "client_secret_expires_at"}


async def put(flow: Flow, client: dict, body: dict, token: str | None = None):
    return await flow.http.put(
        client["registration_client_uri"],
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **bearer(token or client["registration_access_token"])},
    )


def assert_invalid_token(response) -> None:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert response.headers["cache-control"] == "no-store"


# -- registration (RFC 7592 section 3) ------------------------------------------------------


async def test_registration_returns_the_configuration_uri_and_token(flow: Flow):
    client = await register(flow)
    assert client["registration_client_uri"] == f"{ISSUER}/register/{client['client_id']}"
    assert len(client["registration_access_token"]) >= 40


async def test_the_registration_access_token_is_stored_hashed(flow: Flow, service):
    client = await register(flow)
    token = client["registration_access_token"].encode()
    async for key in service.redis.scan_iter(match="mcpgw:*"):
        if await service.redis.type(key) == b"string":
            assert token not in await service.redis.get(key), key


# -- read (section 2.1) --------------------------------------------------------------------


async def test_a_client_reads_its_registration(flow: Flow):
    client = await register(flow, client_name="Reader", contacts=["ops@example.com"])
    response = await flow.http.get(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == client


async def test_reading_without_a_token_is_401_with_a_bearer_challenge(flow: Flow):
    """RFC 6750 3.1: a request without credentials gets the challenge, without an error code."""
    client = await register(flow)
    response = await flow.http.get(client["registration_client_uri"])
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]


@pytest.mark.parametrize("header", ["Bearer wrong-token", "bearer wrong-token", "Basic Zm9vOmJhcg=="])
async def test_reading_with_a_wrong_token_is_invalid_token(flow: Flow, header):
    client = await register(flow)
    response = await flow.http.get(client["registration_client_uri"], headers={"Authorization": header})
    if header.startswith("Basic"):
        # Another scheme is no bearer token at all (RFC 6750 3.1).
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    else:
        assert_invalid_token(response)
    assert client["client_id"] not in response.text


async def test_a_token_for_another_client_is_refused_like_an_unknown_client(flow: Flow):
    """The token is its own client's credential for its own URI only. The answer at another
    client's URI is the same whether that client exists or not: nothing about it leaks."""
    mine = await register(flow)
    theirs = await register(flow)
    token = bearer(mine["registration_access_token"])
    other = await flow.http.get(theirs["registration_client_uri"], headers=token)
    unknown = await flow.http.get(f"{ISSUER}/register/5a1f9c40-0000-4000-8000-000000000000", headers=token)
    for response in (other, unknown):
        assert_invalid_token(response)
    assert other.json() == unknown.json()
    assert other.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    # Neither side was harmed: both tokens still work at their own URIs.
    for client in (mine, theirs):
        own = await flow.http.get(
            client["registration_client_uri"], headers=bearer(client["registration_access_token"])
        )
        assert own.status_code == 200


async def test_an_unknown_client_is_401_without_a_token_too(flow: Flow):
    response = await flow.http.get(f"{ISSUER}/register/no-such-client")
    assert response.status_code == 401


async def test_a_client_id_metadata_document_has_no_configuration_endpoint(flow: Flow):
    client = await register(flow)
    token = bearer(client["registration_access_token"])
    for uri in (
        f"{ISSUER}/register/https://app.example.com/client.json",
        f"{ISSUER}/register/https%3A%2F%2Fapp.example.com%2Fc",
    ):
        assert_invalid_token(await flow.http.get(uri, headers=token))
        assert_invalid_token(await flow.http.delete(uri, headers=token))


async def test_other_methods_are_405(flow: Flow):
    client = await register(flow)
    response = await flow.http.post(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"]), json={}
    )
    assert response.status_code == 405


# -- update (section 2.2) ------------------------------------------------------------------


async def test_a_client_updates_its_name_and_redirect_uris(flow: Flow):
    client = await register(flow, client_name="Before")
    body = {**metadata_of(client), "client_name": "After", "redirect_uris": [OTHER_REDIRECT]}
    response = await put(flow, client, body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["client_name"] == "After"
    assert updated["redirect_uris"] == [OTHER_REDIRECT]
    # The same client, the same credentials.
    for field in ("client_id", "client_id_issued_at", "registration_access_token", "registration_client_uri"):
        assert updated[field] == client[field]
    read = await flow.http.get(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert read.json() == updated
    # The authorization server uses the new redirect URIs, and only those.
    challenge = pkce_pair()[1]
    assert (
        await flow.authorize(client["client_id"], challenge, redirect_uri=OTHER_REDIRECT)
    ).status_code == 302
    old = await flow.authorize(client["client_id"], challenge, redirect_uri=REDIRECT_URI)
    assert old.status_code == 400


async def test_fields_left_out_of_an_update_are_removed(flow: Flow):
    client = await register(
        flow, client_uri="https://app.example.com/", contacts=["ops@example.com"], software_id="x-1"
    )
    body = {
        k: v for k, v in metadata_of(client).items() if k not in ("client_uri", "contacts", "software_id")
    }
    response = await put(flow, client, body)
    assert response.status_code == 200, response.text
    for field in ("client_uri", "contacts", "software_id"):
        assert field not in response.json()
        read = await flow.http.get(
            client["registration_client_uri"], headers=bearer(client["registration_access_token"])
        )
        assert field not in read.json()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("redirect_uris", ["http://app.example.com/callback"], "invalid_redirect_uri"),
        ("redirect_uris", ["https://app.example.com/cb#x"], "invalid_redirect_uri"),
        ("redirect_uris", [f"http://127.0.0.1:{8000 + n}/cb" for n in range(11)], "invalid_client_metadata"),
        ("redirect_uris", [], "invalid_client_metadata"),
        ("client_name", "x" * 201, "invalid_client_metadata"),
        ("contacts", [f"a{n}@example.com" for n in range(6)], "invalid_client_metadata"),
        ("grant_types", ["authorization_code", "client_credentials"], "invalid_client_metadata"),
        ("scope", "mcp admin", "invalid_client_metadata"),
        ("token_endpoint_auth_method", "private_key_jwt", "invalid_client_metadata"),
        ("jwks", {"keys": []}, "invalid_client_metadata"),
    ],
)
async def test_an_update_is_checked_like_a_registration(flow: Flow, field, value, error):
    client = await register(flow, client_name="Kept")
    refused = await flow.http.post("/register", json={**metadata_of(client), "client_id": None, field: value})
    assert refused.status_code == 400
    assert refused.json()["error"] == error
    response = await put(flow, client, {**metadata_of(client), field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"] == refused.json()["error_description"]
    read = await flow.http.get(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert read.json() == client


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "someone-else"},
        {"client_id": None},
        {"registration_access_token": "not-the-token"},
        {"client_secret": "a-secret-of-my-choosing"},
    ],
)
async def test_an_update_must_name_this_client_and_its_own_credentials(flow: Flow, change):
    client = await register(flow)
    body = {k: v for k, v in {**metadata_of(client), **change}.items() if v is not None}
    response = await put(flow, client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    field = next(iter(change))
    assert f"'{field}'" in response.json()["error_description"]


async def test_an_update_may_repeat_the_token_and_the_secret(flow: Flow):
    client = await register(flow, token_endpoint_auth_method="client_secret_basic")
    body = {
        **metadata_of(client),
        "registration_access_token": client["registration_access_token"],
        "client_name": "Again",
    }
    response = await put(flow, client, body)
    assert response.status_code == 200, response.text
    updated = response.json()
    # A confidential client keeps its secret: it is never the client's to choose.
    assert updated["client_secret"] == client["client_secret"]
    assert updated["client_secret_expires_at"] == client["client_secret_expires_at"]


async def test_a_public_client_that_becomes_confidential_gets_a_secret(flow: Flow):
    client = await register(flow)
    assert "client_secret" not in client
    response = await put(
        flow, client, {**metadata_of(client), "token_endpoint_auth_method": "client_secret_post"}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["client_secret"]) >= 32
    back = await put(flow, client, {**metadata_of(response.json()), "token_endpoint_auth_method": "none"})
    assert back.status_code == 200, back.text
    assert "client_secret" not in back.json()


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"'])
async def test_an_update_that_is_not_a_json_object_is_invalid_client_metadata(flow: Flow, content):
    client = await register(flow)
    response = await flow.http.put(
        client["registration_client_uri"],
        content=content,
        headers={"Content-Type": "application/json", **bearer(client["registration_access_token"])},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_an_update_with_a_wrong_token_is_invalid_token(flow: Flow):
    client = await register(flow)
    response = await put(flow, client, metadata_of(client), token="wrong")
    assert_invalid_token(response)


async def test_an_oversized_update_is_413(flow: Flow):
    client = await register(flow)
    response = await put(flow, client, {**metadata_of(client), "client_name": "x" * 70000})
    assert response.status_code == 413


# -- delete (section 2.3) -------------------------------------------------------------------


async def test_a_client_deletes_itself_and_its_tokens_stop_working(flow: Flow):
    client, tokens = await flow.tokens_for()
    other, others = await flow.tokens_for()
    # flow.tokens_for registers through flow.register: the registration carries the token.
    response = await flow.http.delete(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert response.status_code == 204
    assert response.content == b""
    # Its access token fails at the gateway, its refresh token no longer refreshes ...
    assert (await flow.verify(tokens["access_token"])).status_code == 401
    refreshed = await flow.refresh(client["client_id"], tokens["refresh_token"])
    assert refreshed.status_code in (400, 401)
    # ... it is gone for the authorization endpoint and for its own configuration endpoint ...
    assert (await flow.authorize(client["client_id"], pkce_pair()[1])).status_code == 400
    again = await flow.http.get(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert_invalid_token(again)
    deleted_twice = await flow.http.delete(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    assert_invalid_token(deleted_twice)
    # ... and every other client goes on.
    assert (await flow.verify(others["access_token"])).status_code == 200
    assert (await flow.refresh(other["client_id"], others["refresh_token"])).status_code == 200


async def test_a_pending_code_of_a_deleted_client_cannot_be_redeemed(flow: Flow):
    client, code, verifier = await flow.code_for()
    await flow.http.delete(
        client["registration_client_uri"], headers=bearer(client["registration_access_token"])
    )
    response = await flow.token(client["client_id"], code, verifier)
    assert response.status_code in (400, 401)
    assert "access_token" not in response.text


async def test_deleting_with_a_wrong_token_changes_nothing(flow: Flow):
    client, tokens = await flow.tokens_for()
    other = await register(flow)
    for token in ("wrong", other["registration_access_token"]):
        assert_invalid_token(await flow.http.delete(client["registration_client_uri"], headers=bearer(token)))
    assert (await flow.verify(tokens["access_token"])).status_code == 200
