"""/verify's revocation checks, batched into one MGET per event-loop turn
(verify.RevocationBatch): each request gets its own answer, and failures stay closed."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.keys import SigningKey

from .conftest import FETCH, ISSUER, Flow, make_settings

pytestmark = pytest.mark.anyio


def _signed(service: GatewayAuth, jti: str, family: str = "family-1") -> str:
    now = int(time.time())
    return service.key.sign(
        {
            "iss": ISSUER,
            "sub": "alice",
            "aud": f"https://{FETCH}/mcp",
            "client_id": "c",
            "fam": family,
            "jti": jti,
            "iat": now,
            "exp": now + 300,
        }
    )


async def test_concurrent_checks_get_their_own_answers(flow, service, mget_calls):
    """Replies come back in order: a revoked token among many concurrent ones is the one
    refused (by its jti, or by its family), and the checks went in fewer MGETs than requests."""
    tokens = [_signed(service, f"jti-{n}", family=f"fam-{n}") for n in range(60)]
    await service.store.revoke_jti("jti-17", 60)
    await service.store.revoke_family("fam-42")
    mget_calls.clear()
    responses = await asyncio.gather(*(flow.verify(token) for token in tokens))
    assert sum(len(keys) for keys in mget_calls) == 2 * 60
    assert len(mget_calls) < 60
    refused = {n for n, response in enumerate(responses) if response.status_code != 200}
    assert refused == {17, 42}
    assert all(r.status_code == 401 for n, r in enumerate(responses) if n in refused)


async def test_a_lost_connection_is_replaced(flow, service):
    token = _signed(service, "jti-reconnect")
    assert (await flow.verify(token)).status_code == 200
    await service.redis.client_kill_filter(_type="normal", skipme=True)
    assert (await flow.verify(token)).status_code == 200
    await service.store.revoke_jti("jti-reconnect", 60)
    assert (await flow.verify(token)).status_code == 401


async def test_a_silent_redis_fails_closed(redis_server, key_file):
    """A server that accepts and never answers: 503 after the socket timeout, never 200."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3, socket_connect_timeout=0.3)
    service = GatewayAuth(make_settings(redis_server, key_file), redis, SigningKey.from_file(key_file))
    token = _signed(service, "jti-silent")
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=service), base_url=ISSUER) as http:
        started = time.monotonic()
        response = await Flow(http).verify(token)
        assert response.status_code == 503
        assert "x-user-id" not in response.headers
        assert time.monotonic() - started < 5
    server.close()
    await redis.aclose()


async def test_a_wrong_password_fails_closed(redis_server, key_file):
    wrong = redis_server.replace("redis://:", "redis://:wrong", 1)
    redis = Redis.from_url(wrong)
    service = GatewayAuth(make_settings(redis_server, key_file), redis, SigningKey.from_file(key_file))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=service), base_url=ISSUER) as http:
        assert (await Flow(http).verify(_signed(service, "jti-auth"))).status_code == 503
    await redis.aclose()
