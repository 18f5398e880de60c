"""Everything the auth service keeps, in Redis. One place for the key layout.

Keys (all under the ``mcpgw:`` prefix):

- ``client:<client_id>``         registered client (JSON): client_unused_ttl until its first token
                                 exchange, then the refresh-token TTL from each exchange
- ``cimd:<sha256(url)>``          a checked Client ID Metadata Document (JSON), its cache time
- ``authreq:<id>``               pending authorization request waiting for a login (JSON), login TTL
- ``code:<sha256(code)>``        authorization code (JSON), single use (TAKE_ONCE), code TTL
- ``codeused:<sha256(code)>``    a redeemed code: the family of its tokens, for replay detection
- ``rt:<sha256(token)>``         live refresh token (JSON), refresh TTL
- ``rtused:<sha256(token)>``     a rotated refresh token (TAKE_ONCE): its family, for reuse detection
- ``grant:<family>``             a grant (a sign-in's token family, JSON): client, user, resource,
                                 scopes, sign-in time; refresh TTL from its last token (the operator's view)
- ``grants:client:<h(client_id)>`` / ``grants:user:<h(user id)>``
                                 the families of a client's / a user's grants (sets), refresh TTL
- ``revoked:jti:<jti>``          a revoked access token, until it would have expired
- ``revoked:fam:<family>``       a revoked token family (every access and refresh token of a grant)
- ``revoked:client:<h(client_id)>`` / ``revoked:user:<h(user id)>`` / ``revoked:all``
                                 a time (epoch seconds): every grant of that client / user / everyone
                                 signed in at or before it is revoked (RFC 7592 DELETE, the
                                 operator's commands). Kept for refresh TTL + access TTL, by when
                                 every token of such a grant has expired or failed to refresh.

Revoking by client, user or time sets its marker, then revokes the family of every grant
it finds (the index sets; the grant records for a time): /verify keeps its one read (MGET) of a
token's jti and family. Code exchanges, refreshes and introspection read the markers too,
and a grant is checked against them again once written (a concurrent exchange).
- ``loginfail-pair:<h(user, address)>`` / ``loginfail-ip:<address>`` / ``loginfail-user:<h(user)>``
                                 failed-login counters, for the login failure window
- ``upstream:<sha256(state)>``  a sign-in at GitHub or an OpenID provider in progress (JSON):
                                 pending request, browser binding, PKCE verifier, nonce; single use, login TTL
- ``consentreq:<id>``            a signed-in user's pending answer on the consent page (JSON): the
                                 authorization request, the identity, CSRF token, browser binding; login TTL
- ``approval:<h(user)>:<h(client_id)>:<h(resource)>``
                                 a remembered "Allow" (JSON: who, which client and redirect URI,
                                 which MCP server, scopes, when), consent TTL
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from redis.asyncio import Redis

PREFIX = "mcpgw:"

# Take a single-use record (an authorization code, a refresh token) and mark it used, in
# one step: Redis runs a script atomically, so of concurrent requests exactly one takes
# the record, and every other one finds the used-marker and revokes the family at once.
# KEYS: the record, its used-marker. ARGV: the family to remember ("": the record's own
# `family`), the marker's TTL, the revocation's TTL, the revoked-family key prefix.
# Returns {1, record}, {2, family} for a reuse (the family is revoked), or {0}.
TAKE_ONCE = """
local record = redis.call('GETDEL', KEYS[1])
if record then
  local family = ARGV[1]
  if family == '' then family = cjson.decode(record)['family'] end
  redis.call('SET', KEYS[2], family, 'EX', ARGV[2])
  return {1, record}
end
local family = redis.call('GET', KEYS[2])
if family then
  redis.call('SET', ARGV[4] .. family, '1', 'EX', ARGV[3])
  return {2, family}
end
return {0}
"""


# Raise a revocation time marker (KEYS[1]) to ARGV[1] with TTL ARGV[2]; never lower it.
RAISE_MARKER = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


# What a grant's record holds (from its refresh token's data; never a token).
GRANT_FIELDS = ("family", "client_id", "subject", "name", "resource", "scopes", "auth_time", "expires_at")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def short_hash(value: str) -> str:
    """A key part for a value of any size (client ids can be 2 KB URLs, user ids long)."""
    return token_hash(value)[:32]


def direct_revocation_keys(family: str, jti: str) -> tuple[str, str]:
    """What /verify reads (MGET): the access token's own revocation and its grant's."""
    return f"{PREFIX}revoked:jti:{jti}", f"{PREFIX}revoked:fam:{family}"


def revocation_keys(client_id: str, subject: str, family: str, jti: str | None = None) -> tuple[str, ...]:
    """Everything that decides whether a grant's token is revoked, read with one MGET off
    the hot path: the three time markers (client, user, everyone), then the grant's family
    and (for an access token) its jti."""
    keys = (
        f"{PREFIX}revoked:client:{short_hash(client_id)}",
        f"{PREFIX}revoked:user:{short_hash(subject)}",
        f"{PREFIX}revoked:all",
        f"{PREFIX}revoked:fam:{family}",
    )
    return (*keys, f"{PREFIX}revoked:jti:{jti}") if jti else keys


def revoked_by(values: list[Any], auth_time: int) -> bool:
    """The MGET answer for revocation_keys: a marker at or after the sign-in, or a direct
    revocation. A sign-in in the same second as a revocation counts as before it."""
    markers, direct = values[:3], values[3:]
    return any(value is not None for value in direct) or any(
        value is not None and int(value) >= auth_time for value in markers
    )


class Store:
    def __init__(self, redis: Redis, *, refresh_ttl: int, access_ttl: int) -> None:
        self.redis = redis
        self.refresh_ttl = refresh_ttl
        self.access_ttl = access_ttl
        self._take_once = redis.register_script(TAKE_ONCE)
        self._raise_marker = redis.register_script(RAISE_MARKER)

    async def _take_once_or_revoke(self, key: str, used_key: str, family: str = "") -> tuple[Any, bool]:
        """(the record, False) for the one who takes it; (None, True) for a reuse, whose
        family is revoked in the same step; (None, False) when nothing is known."""
        answer = await self._take_once(
            keys=[PREFIX + key, PREFIX + used_key],
            args=[family, self.refresh_ttl, self.refresh_ttl + self.access_ttl, f"{PREFIX}revoked:fam:"],
        )
        if answer[0] == 1:
            return json.loads(answer[1]), False
        return None, answer[0] == 2

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

    async def replace_client(self, client_id: str, data: dict[str, Any]) -> bool:
        """Overwrite an existing client's record, keeping its TTL; False if it is gone."""
        return bool(
            await self.redis.set(f"{PREFIX}client:{client_id}", json.dumps(data), xx=True, keepttl=True)
        )

    async def delete_client(self, client_id: str) -> bool:
        return bool(await self.redis.delete(f"{PREFIX}client:{client_id}"))

    async def touch_client(self, client_id: str, ttl: int) -> None:
        await self.redis.expire(f"{PREFIX}client:{client_id}", ttl)

    async def get_client_document(self, url: str) -> dict[str, Any] | None:
        return await self._get(f"cimd:{token_hash(url)}")

    async def delete_client_document(self, url: str) -> None:
        await self.redis.delete(f"{PREFIX}cimd:{token_hash(url)}")

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

    # -- the consent page ----------------------------------------------------------------------
    async def put_consent_request(self, request_id: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}consentreq:{request_id}", json.dumps(data), ex=ttl)

    async def get_consent_request(self, request_id: str) -> dict[str, Any] | None:
        return await self._get(f"consentreq:{request_id}")

    async def take_consent_request(self, request_id: str) -> dict[str, Any] | None:
        """Single use: the first answer wins."""
        return await self._take(f"consentreq:{request_id}")

    @staticmethod
    def _approval_key(subject: str, client_id: str, resource: str) -> str:
        return f"approval:{short_hash(subject)}:{short_hash(client_id)}:{short_hash(resource)}"

    async def put_approval(self, data: dict[str, Any], ttl: int) -> None:
        key = self._approval_key(data["subject"], data["client_id"], data["resource"])
        await self.redis.set(PREFIX + key, json.dumps(data), ex=ttl)

    async def get_approval(self, subject: str, client_id: str, resource: str) -> dict[str, Any] | None:
        return await self._get(self._approval_key(subject, client_id, resource))

    def _approval_pattern(self, subject: str | None, client_id: str | None, resource: str | None) -> str:
        parts = [short_hash(value) if value is not None else "*" for value in (subject, client_id, resource)]
        return f"{PREFIX}approval:{':'.join(parts)}"

    async def list_approvals(
        self, subject: str | None = None, client_id: str | None = None, resource: str | None = None
    ) -> list[dict[str, Any]]:
        pattern = self._approval_pattern(subject, client_id, resource)
        keys = [key async for key in self.redis.scan_iter(match=pattern, count=500)]
        values = await self.redis.mget(keys) if keys else []
        return [json.loads(value) for value in values if value]

    async def delete_approvals(
        self, subject: str | None = None, client_id: str | None = None, resource: str | None = None
    ) -> int:
        pattern = self._approval_pattern(subject, client_id, resource)
        keys = [key async for key in self.redis.scan_iter(match=pattern, count=500)]
        return int(await self.redis.delete(*keys)) if keys else 0

    # -- authorization codes -------------------------------------------------------------
    async def put_code(self, code: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{PREFIX}code:{token_hash(code)}", json.dumps(data), ex=ttl)

    async def get_code(self, code: str) -> dict[str, Any] | None:
        return await self._get(f"code:{token_hash(code)}")

    async def take_code(self, code: str, family: str) -> tuple[dict[str, Any] | None, bool]:
        """Single use: whoever takes it first gets it, remembered as used by `family`; every
        later (or concurrent) attempt gets (None, True) and revokes that family."""
        digest = token_hash(code)
        return await self._take_once_or_revoke(f"code:{digest}", f"codeused:{digest}", family)

    async def used_code_family(self, code: str) -> str | None:
        return await self._get_str(f"codeused:{token_hash(code)}")

    # -- refresh tokens --------------------------------------------------------------------
    async def put_refresh(self, token: str, data: dict[str, Any], client_ttl: int | None = None) -> None:
        """A refresh token, its grant's record and the grant in its client's and user's
        index (all for refresh TTL); with `client_ttl`, the registered client is kept that
        long too. One round trip."""
        grant = {key: data[key] for key in GRANT_FIELDS if key in data}
        family = data["family"]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{PREFIX}rt:{token_hash(token)}", json.dumps(data), ex=self.refresh_ttl)
            pipe.set(
                f"{PREFIX}grant:{family}",
                json.dumps({**grant, "last_used": int(time.time())}),
                ex=self.refresh_ttl,
            )
            for index in (self._client_grants(data["client_id"]), self._user_grants(data["subject"])):
                pipe.sadd(index, family)
                pipe.expire(index, self.refresh_ttl)
            if client_ttl is not None:
                pipe.expire(f"{PREFIX}client:{data['client_id']}", client_ttl)
            await pipe.execute()

    @staticmethod
    def _client_grants(client_id: str) -> str:
        return f"{PREFIX}grants:client:{short_hash(client_id)}"

    @staticmethod
    def _user_grants(subject: str) -> str:
        return f"{PREFIX}grants:user:{short_hash(subject)}"

    async def get_refresh(self, token: str) -> dict[str, Any] | None:
        return await self._get(f"rt:{token_hash(token)}")

    async def rotate_refresh(self, token: str) -> tuple[dict[str, Any] | None, bool]:
        """Take a refresh token out of use, remembering its family for reuse detection; a
        reuse (also a concurrent one) gets (None, True) and revokes the family."""
        digest = token_hash(token)
        return await self._take_once_or_revoke(f"rt:{digest}", f"rtused:{digest}")

    async def used_refresh_family(self, token: str) -> str | None:
        return await self._get_str(f"rtused:{token_hash(token)}")

    async def delete_refresh(self, token: str) -> None:
        await self.redis.delete(f"{PREFIX}rt:{token_hash(token)}")

    # -- grants (the operator's view of who signed in where) ----------------------------------------
    async def list_grants(self) -> list[dict[str, Any]]:
        """Every grant still on record (revoked ones included: see grants_revoked)."""
        keys = [key async for key in self.redis.scan_iter(match=f"{PREFIX}grant:*", count=500)]
        if not keys:
            return []
        values = await self.redis.mget(keys)
        return [json.loads(value) for value in values if value]

    async def grants_revoked(self, grants: list[dict[str, Any]]) -> list[bool]:
        """For each grant, whether it is revoked (its family, or a marker of its client, its
        user or everyone at or after its sign-in)."""
        if not grants:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for grant in grants:
                pipe.mget(revocation_keys(grant["client_id"], grant["subject"], grant["family"]))
            answers = await pipe.execute()
        return [
            revoked_by(values, grant.get("auth_time", 0))
            for values, grant in zip(answers, grants, strict=True)
        ]

    # -- revocation ----------------------------------------------------------------------------
    async def revoke_family(self, family: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{PREFIX}revoked:fam:{family}", "1", ex=self.refresh_ttl + self.access_ttl)
            pipe.delete(f"{PREFIX}grant:{family}")
            await pipe.execute()

    async def revoke_jti(self, jti: str, ttl: int) -> None:
        await self.redis.set(f"{PREFIX}revoked:jti:{jti}", "1", ex=max(ttl, 1))

    async def is_revoked(
        self, client_id: str, subject: str, family: str, auth_time: int, jti: str | None = None
    ) -> bool:
        """One MGET (verify.py batches the same for /verify)."""
        values = await self.redis.mget(revocation_keys(client_id, subject, family, jti))
        return revoked_by(values, auth_time)

    async def _mark(self, key: str, at: int | None) -> bool:
        """Raise a time marker to `at` (default: now); False if it was already later."""
        when = int(time.time()) if at is None else at
        return bool(
            await self._raise_marker(keys=[PREFIX + key], args=[when, self.refresh_ttl + self.access_ttl])
        )

    async def _revoke_families(self, families: set[str] | list[str]) -> None:
        if not families:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for family in families:
                pipe.set(f"{PREFIX}revoked:fam:{family}", "1", ex=self.refresh_ttl + self.access_ttl)
                pipe.delete(f"{PREFIX}grant:{family}")
            await pipe.execute()

    async def revoke_client(self, client_id: str) -> None:
        """Every grant of the client signed in until now: the marker first (so a grant written
        meanwhile finds it), then every family of its index."""
        await self._mark(f"revoked:client:{short_hash(client_id)}", None)
        await self._revoke_families(await self._members(self._client_grants(client_id)))

    async def revoke_user(self, subject: str) -> None:
        """Every grant of the user, in every client, signed in until now."""
        await self._mark(f"revoked:user:{short_hash(subject)}", None)
        await self._revoke_families(await self._members(self._user_grants(subject)))

    async def revoke_before(self, at: int) -> None:
        """Every grant signed in at or before `at` (epoch seconds), whoever and wherever (a
        scan of the grant records: the operator's command, not a request's)."""
        await self._mark("revoked:all", at)
        families = [grant["family"] for grant in await self.list_grants() if grant.get("auth_time", 0) <= at]
        await self._revoke_families(families)

    async def _members(self, key: str) -> set[str]:
        return {
            member.decode() if isinstance(member, bytes) else member
            for member in await self.redis.smembers(key)
        }

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
