"""Everything the auth service keeps, in Redis. One place for the key layout.

Keys (all under the ``mcpgw:`` prefix):

- ``client:<client_id>``         registered client (JSON): client_unused_ttl until its first token
                                 exchange, then the refresh-token TTL from each exchange
- ``cimd:<sha256(url)>``          a checked Client ID Metadata Document (JSON), its cache time
- ``authreq:<id>``               pending authorization request waiting for a login (JSON), login TTL
- ``code:<sha256(code)>``        authorization code (JSON), single use (GETDEL), code TTL
- ``codeused:<sha256(code)>``    a redeemed code: the family of its tokens, for replay detection
- ``rt:<sha256(token)>``         live refresh token (JSON), refresh TTL
- ``rtused:<sha256(token)>``     a rotated refresh token: its family, for reuse detection
- ``revoked:jti:<jti>``          a revoked access token, until it would have expired
- ``revoked:fam:<family>``       a revoked token family (every access and refresh token of a grant)
- ``loginfail-pair:<h(user, address)>`` / ``loginfail-ip:<address>`` / ``loginfail-user:<h(user)>``
                                 failed-login counters, for the login failure window
- ``upstream:<sha256(state)>``  a sign-in at GitHub or an OpenID provider in progress (JSON):
                                 pending request, browser binding, PKCE verifier, nonce; single use, login TTL
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from redis.asyncio import Redis

PREFIX = "mcpgw:"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    def __init__(self, redis: Redis, *, refresh_ttl: int, access_ttl: int) -> None:
        self.redis = redis
        self.refresh_ttl = refresh_ttl
        self.access_ttl = access_ttl

    async def _get(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(PREFIX + key)
        return json.loads(raw) if raw else None

    async def _take(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.getdel(PREFIX + key)
        return json.loads(raw) if raw else None

    async def _get_str(self, key: str) -> str | None:
        raw = await self.redis.get(PREFIX + key)
        return raw.decode() if isinstance(raw, bytes) else raw

    # -- clients ---------------------------------------------------------------------
    async def get_client(self, client_id: str) -> dict[str, Any] | None:
        return await self._get(f"client:{client_id}")

    async def put_client(self, client_id: str, data: dict[str, Any], ttl: int | None = None) -> None:
        await self.redis.set(f"{PREFIX}client:{client_id}", json.dumps(data), ex=ttl)

    async def touch_client(self, client_id: str, ttl: int) -> None:
        await self.redis.expire(f"{PREFIX}client:{client_id}", ttl)

    async def get_client_document(self, url: str) -> dict[str, Any] | None:
        return await self._get(f"cimd:{token_hash(url)}")

    async def put_client_document(self, url: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}cimd:{token_hash(url)}", json.dumps(data), ex=ttl)

    # -- pending authorization requests ------------------------------------------------
    async def put_authreq(self, request_id: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}authreq:{request_id}", json.dumps(data), ex=ttl)

    async def get_authreq(self, request_id: str) -> dict[str, Any] | None:
        return await self._get(f"authreq:{request_id}")

    async def take_authreq(self, request_id: str) -> dict[str, Any] | None:
        return await self._take(f"authreq:{request_id}")

    # -- sign-ins at an upstream identity provider (github, oidc) --------------------------
    async def put_upstream_state(self, state: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}upstream:{token_hash(state)}", json.dumps(data), ex=ttl)

    async def get_upstream_state(self, state: str) -> dict[str, Any] | None:
        return await self._get(f"upstream:{token_hash(state)}")

    async def take_upstream_state(self, state: str) -> dict[str, Any] | None:
        """Single use: the first callback with this state wins."""
        return await self._take(f"upstream:{token_hash(state)}")

    # -- authorization codes -------------------------------------------------------------
    async def put_code(self, code: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}code:{token_hash(code)}", json.dumps(data), ex=ttl)

    async def get_code(self, code: str) -> dict[str, Any] | None:
        return await self._get(f"code:{token_hash(code)}")

    async def take_code(self, code: str) -> dict[str, Any] | None:
        """Single use: whoever gets it first wins, every later attempt gets None."""
        return await self._take(f"code:{token_hash(code)}")

    async def mark_code_used(self, code: str, family: str, ttl: int) -> None:
        await self.redis.set(f"{PREFIX}codeused:{token_hash(code)}", family, ex=ttl)

    async def used_code_family(self, code: str) -> str | None:
        return await self._get_str(f"codeused:{token_hash(code)}")

    # -- refresh tokens --------------------------------------------------------------------
    async def put_refresh(self, token: str, data: dict[str, Any]) -> None:
        await self.redis.set(f"{PREFIX}rt:{token_hash(token)}", json.dumps(data), ex=self.refresh_ttl)

    async def get_refresh(self, token: str) -> dict[str, Any] | None:
        return await self._get(f"rt:{token_hash(token)}")

    async def rotate_refresh(self, token: str) -> dict[str, Any] | None:
        """Take a refresh token out of use, remembering its family for reuse detection."""
        digest = token_hash(token)
        data = await self._take(f"rt:{digest}")
        if data is None:
            return None
        await self.redis.set(f"{PREFIX}rtused:{digest}", data["family"], ex=self.refresh_ttl)
        return data

    async def used_refresh_family(self, token: str) -> str | None:
        return await self._get_str(f"rtused:{token_hash(token)}")

    async def delete_refresh(self, token: str) -> None:
        await self.redis.delete(f"{PREFIX}rt:{token_hash(token)}")

    # -- revocation ----------------------------------------------------------------------------
    async def revoke_family(self, family: str) -> None:
        await self.redis.set(f"{PREFIX}revoked:fam:{family}", "1", ex=self.refresh_ttl + self.access_ttl)

    async def revoke_jti(self, jti: str, ttl: int) -> None:
        await self.redis.set(f"{PREFIX}revoked:jti:{jti}", "1", ex=max(ttl, 1))

    async def family_revoked(self, family: str) -> bool:
        return bool(await self.redis.exists(f"{PREFIX}revoked:fam:{family}"))

    async def any_revoked(self, jti: str, family: str) -> bool:
        """The one Redis round trip of /verify."""
        return bool(await self.redis.exists(f"{PREFIX}revoked:jti:{jti}", f"{PREFIX}revoked:fam:{family}"))

    # -- login rate limiting -----------------------------------------------------------------
    # Three counters per failed sign-in (login.py explains the policy). User names are
    # hashed: a key's size does not depend on what a stranger typed.
    @staticmethod
    def _login_keys(username: str, address: str) -> tuple[str, str, str]:
        user = token_hash(username)[:32]
        pair = token_hash(f"{username}\0{address}")[:32]
        return (
            f"{PREFIX}loginfail-pair:{pair}",
            f"{PREFIX}loginfail-ip:{address}",
            f"{PREFIX}loginfail-user:{user}",
        )

    async def login_lockout(self, username: str, address: str, limits: tuple[int, int, int]) -> int:
        """Seconds until this user name may try again from this address; 0 when it may now.
        `limits`: failures allowed per (user, address) pair, per address, per user."""
        keys = self._login_keys(username, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            answers = await pipe.execute()
        locked = [
            ttl
            for count, ttl, limit in zip(answers[0::2], answers[1::2], limits, strict=True)
            if count is not None and int(count) >= limit
        ]
        return max((max(ttl, 1) for ttl in locked), default=0)

    async def record_login_failure(
        self, username: str, address: str, window: int, limits: tuple[int, int, int]
    ) -> int:
        """Count a failure on all three counters; the attempts left before one of them locks."""
        keys = self._login_keys(username, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
            answers = await pipe.execute()
        return min(limit - int(count) for count, limit in zip(answers[0::2], limits, strict=True))

    async def clear_login_failures(self, username: str, address: str) -> None:
        """After a successful sign-in: this user at this address starts afresh. The address
        and user counters stay: the failures they hold may be someone else's."""
        await self.redis.delete(self._login_keys(username, address)[0])
