"""Revoking many grants at once: every grant of a client, of a user, or signed in before a
time. Their access tokens fail /verify at once, which still sends its one Redis command
(a read of the token's jti and family: the revocation revokes each family it finds);
their refresh tokens and codes stop; grants signed in afterwards work.

(The ways in are RFC 7592's DELETE and the operator's commands, tested in their own files;
here the store's revocations are called directly.)
"""

from __future__ import annotations

import hashlib
import json
import time

import anyio
import pytest

from .conftest import ISSUER, Flow

pytestmark = pytest.mark.anyio


async def next_second() -> None:
    """Sign-ins count by the second (`auth_time`); one in the same second as a revocation
    counts as before it (never the other way round). Tests that sign in again wait."""
    await anyio.sleep(1.05 - time.time() % 1)


async def test_revoking_a_client_ends_all_its_grants_and_no_other(flow: Flow, service):
    client, first = await flow.tokens_for()
    _, second = await flow.tokens_for(username="bob")
    await service.store.revoke_client(client["client_id"])
    assert (await flow.verify(first["access_token"])).status_code == 401
    refreshed = await flow.refresh(client["client_id"], first["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    # Another client's grant is untouched.
    assert (await flow.verify(second["access_token"])).status_code == 200


async def test_revoking_a_user_ends_their_grants_in_every_client(flow: Flow, service):
    client_a, alice_a = await flow.tokens_for()
    client_b, alice_b = await flow.tokens_for()
    _, bob = await flow.tokens_for(username="bob")
    await service.store.revoke_user("alice")
    for tokens, client in ((alice_a, client_a), (alice_b, client_b)):
        assert (await flow.verify(tokens["access_token"])).status_code == 401
        assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code == 400
    assert (await flow.verify(bob["access_token"])).status_code == 200


async def test_a_user_signs_in_again_after_a_revocation(flow: Flow, service):
    await flow.tokens_for()
    await service.store.revoke_user("alice")
    await next_second()
    client, tokens = await flow.tokens_for()
    assert (await flow.verify(tokens["access_token"])).status_code == 200
    assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code == 200


async def test_revoking_before_a_time_keeps_later_sign_ins(flow: Flow, service):
    client, old = await flow.tokens_for()
    await next_second()
    cutoff = int(time.time())
    await next_second()
    newer_client, new = await flow.tokens_for(username="bob")
    await service.store.revoke_before(cutoff)
    assert (await flow.verify(old["access_token"])).status_code == 401
    assert (await flow.refresh(client["client_id"], old["refresh_token"])).status_code == 400
    assert (await flow.verify(new["access_token"])).status_code == 200
    assert (await flow.refresh(newer_client["client_id"], new["refresh_token"])).status_code == 200


async def test_an_earlier_cutoff_never_undoes_a_later_one(flow: Flow, service):
    _, tokens = await flow.tokens_for()
    await service.store.revoke_before(int(time.time()) + 0)
    await service.store.revoke_before(int(time.time()) - 3600)
    assert (await flow.verify(tokens["access_token"])).status_code == 401


async def test_a_refreshed_grant_stays_revoked(flow: Flow, service):
    """The sign-in time travels with the grant: tokens from a refresh after the sign-in are
    revoked with it."""
    client, tokens = await flow.tokens_for()
    refreshed = (await flow.refresh(client["client_id"], tokens["refresh_token"])).json()
    await service.store.revoke_user("alice")
    assert (await flow.verify(refreshed["access_token"])).status_code == 401


async def test_access_tokens_carry_the_sign_in_time(flow: Flow, service):
    before = int(time.time())
    client, tokens = await flow.tokens_for()
    claims = service.key.decode(tokens["access_token"], ISSUER)
    assert before <= claims["auth_time"] <= claims["iat"]
    await anyio.sleep(1.1)
    refreshed = (await flow.refresh(client["client_id"], tokens["refresh_token"])).json()
    again = service.key.decode(refreshed["access_token"], ISSUER)
    assert again["auth_time"] == claims["auth_time"]
    assert again["iat"] > claims["iat"]


async def command_counts(redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


async def test_verify_still_reads_two_keys_with_one_mget(flow: Flow, service, mget_calls):
    """The hot path is as before: one read of the token's jti and family, an MGET of two keys
    (an MGET of the client, user and time markers too cost /verify a third of its
    throughput)."""
    _, tokens = await flow.tokens_for()
    mget_calls.clear()
    before = await command_counts(service.redis)
    assert (await flow.verify(tokens["access_token"])).status_code == 200
    after = await command_counts(service.redis)
    counted = {
        name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)
    }
    counted.pop("info", None)
    assert counted == {"mget": 1}
    (keys,) = mget_calls
    assert [key.rsplit(":", 2)[1] for key in keys] == ["jti", "fam"]


async def test_a_grant_made_while_its_client_is_revoked_is_revoked_too(flow: Flow, service, monkeypatch):
    """The race: a code exchange that passed its checks before the revocation and writes its
    grant after the revocation looked for grants. The grant is checked again once written."""
    client, code, verifier = await flow.code_for()
    exchange = service.provider.exchange_authorization_code

    async def revoked_in_between(*args):
        await service.store.revoke_client(client["client_id"])
        return await exchange(*args)

    monkeypatch.setattr(service.provider, "exchange_authorization_code", revoked_in_between)
    response = await flow.token(client["client_id"], code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert await service.store.list_grants() == []


async def test_a_grant_from_before_the_upgrade_stops_refreshing(flow: Flow, service):
    """Grants issued before revocation by client, user or time existed have no sign-in time
    (and no index): their refresh tokens stop at once; their access tokens, which /verify
    cannot tie to the client, end with their lifetime (access_token_ttl)."""
    client, tokens = await flow.tokens_for()
    key = f"mcpgw:rt:{hashlib.sha256(tokens['refresh_token'].encode()).hexdigest()}"
    data = json.loads(await service.redis.get(key))
    del data["auth_time"]
    await service.redis.set(key, json.dumps(data), keepttl=True)
    await service.redis.delete(*[k async for k in service.redis.scan_iter(match="mcpgw:grants:*")])
    await service.store.revoke_user("alice")
    assert (await flow.refresh(client["client_id"], tokens["refresh_token"])).status_code == 400


async def test_grants_are_listed_with_who_signed_in_where(flow: Flow, service):
    client, _ = await flow.tokens_for()
    grants = await service.store.list_grants()
    assert len(grants) == 1
    grant = grants[0]
    assert grant["client_id"] == client["client_id"]
    assert grant["subject"] == "alice"
    assert grant["resource"] == "https://fetch.gateway.test/mcp"
    assert grant["scopes"] == ["mcp"]
    assert isinstance(grant["auth_time"], int)
