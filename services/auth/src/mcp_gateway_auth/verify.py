"""/verify: Traefik's ForwardAuth endpoint, as a bare ASGI application.

Every request through the gateway passes here, so the hot path has no framework: read
three headers, check the token (a signature check the first time a token is seen, a
dictionary look-up afterwards), check revocation with one Redis round trip (the token's
jti and its grant's family: revoking a client, a user or everyone before a time revokes
each of their families, store.py), answer.
Anything unexpected fails closed: 401 for a token problem, 503 when Redis or the key
cannot be used, never 200.

The revocation check is the one Redis command of the hot path, and redis-py's general
machinery (connection pool, retry wrapper, parser, a timeout per reply) costs more than
the command itself (`make bench` measured it). So the checks of concurrent requests are
sent together, one MGET per event-loop turn (RevocationBatch), through the service's
redis-py client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from redis.asyncio import Redis

from .config import Settings, normalize_host
from .keys import KeyRing
from .store import Store, direct_revocation_keys

log = logging.getLogger("mcp_gateway_auth.verify")

ASGIScope = dict[str, Any]


def _token_in_query(query: bytes) -> bool:
    """Whether a query string carries an `access_token` (RFC 6750 2.3); parsed only when
    there is one (MCP requests rarely have a query)."""
    return bool(query) and any(
        name == "access_token" for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    )


class Verified(NamedTuple):
    """A token whose signature, issuer and expiry were checked, with the keys its
    revocation check asks for (computed once)."""

    claims: dict[str, Any]
    revocation_keys: tuple[str, str]

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Verified:
        return cls(claims, direct_revocation_keys(claims.get("fam", ""), claims["jti"]))


class VerifiedTokenCache:
    """Tokens whose signature, issuer and expiry were checked: token -> Verified.

    Bounded (least recently added are dropped first); an entry is dropped at its expiry.
    Revocation is never cached: it is checked in Redis on every request.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, Verified] = OrderedDict()

    def get(self, token: str, now: float) -> Verified | None:
        verified = self._entries.get(token)
        if verified is not None and verified.claims["exp"] <= now:
            del self._entries[token]
            return None
        return verified

    def put(self, token: str, verified: Verified) -> None:
        if self.size <= 0:
            return
        self._entries[token] = verified
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class RevocationBatch:
    """The revocation keys (`revoked:jti:<jti>`, `revoked:fam:<family>`) of every request of an
    event-loop turn, read with one MGET: one command, one round trip, one reply and one
    timeout for all of them (a pipeline of one EXISTS per check cost 29-31 µs of CPU per
    check against the MGET's 23-26, in-process, 32 at a time). Each request still sees the
    revocations written before its own check (nothing is cached); an error fails every
    request of the batch (closed)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pending: list[tuple[Verified, asyncio.Future[bool]]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def is_revoked(self, verified: Verified) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._send)
        self.pending.append((verified, future))
        return future

    def _send(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self.tasks.discard)

    async def _execute(self, batch: list[tuple[Verified, asyncio.Future[bool]]]) -> None:
        try:
            values = await self.redis.mget([key for verified, _ in batch for key in verified.revocation_keys])
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error if isinstance(error, Exception) else ConnectionError())
            if not isinstance(error, Exception):
                raise
            return
        # Two keys per request, in order: revoked when either is set (the markers are strings).
        for index, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(values[2 * index] is not None or values[2 * index + 1] is not None)


class VerifyApp:
    def __init__(self, settings: Settings, store: Store, key: KeyRing) -> None:
        self.settings = settings
        self.store = store
        self.key = key
        self.cache = VerifiedTokenCache(settings.verify_cache_size)
        self.key_removals = key.removals
        self.revocation = RevocationBatch(store.redis)
        headers = settings.verify_headers
        self.h_user_id = headers["user_id"].lower().encode()
        self.h_user_name = headers["user_name"].lower().encode()
        self.h_token = headers["token"].lower().encode()
        # Audience of every configured host, precomputed: host -> accepted `aud` values.
        self.audiences = {
            host: {resource.url, f"https://{host}", f"https://{host}/"}
            for host, resource in settings.resources.items()
        }

    async def __call__(self, scope: ASGIScope, receive: Any, send: Any) -> None:
        authorization = forwarded_host = uri = b""
        authorizations = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                authorizations += 1
            elif name == b"x-forwarded-host":
                forwarded_host = value
            elif name == b"x-forwarded-uri":
                uri = value
        # Cheap checks before the token's: a second Authorization header (this check would
        # see one, the backend perhaps the other) and a token in the URI (the MCP spec and
        # RFC 9700 forbid it: URIs end up in logs and Referer headers) are refused.
        ambiguous = (
            authorizations > 1
            or _token_in_query(uri.partition(b"?")[2])
            or _token_in_query(scope["query_string"])
        )
        try:
            status, headers = await self.check(authorization, forwarded_host, ambiguous)
        except Exception:
            log.exception("verify failed closed")
            status, headers = 503, [(b"cache-control", b"no-store")]
        headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _challenge(
        self, host: str, error: str | None, status: int = 401
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        value = f'Bearer resource_metadata="https://{host}/.well-known/oauth-protected-resource"'
        if error == "invalid_token":
            value += ', error="invalid_token"'
        elif error == "invalid_request":
            value += (
                ', error="invalid_request", error_description="one Authorization header, '
                'and no access_token in the URI"'
            )
        elif error == "insufficient_scope":
            value += ', error="insufficient_scope", error_description="this user may not use this server"'
        return status, [(b"www-authenticate", value.encode()), (b"cache-control", b"no-store")]

    async def check(
        self, authorization: bytes, forwarded_host: bytes, ambiguous: bool = False
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        host = normalize_host(forwarded_host.decode("latin-1"))
        resource = self.settings.resources.get(host)
        if resource is None:
            # Not a host this gateway serves: no resource metadata to point at.
            return 401, [(b"www-authenticate", b"Bearer"), (b"cache-control", b"no-store")]
        if ambiguous:
            return self._challenge(host, "invalid_request")
        if authorization[:7].lower() != b"bearer ":
            return self._challenge(host, None)
        token = authorization[7:].strip().decode("latin-1")
        now = time.time()
        # A key rotation reaches this process within seconds (keys.KeyRing); a retired key's
        # tokens must not outlive it in the cache.
        self.key.refresh()
        if self.key.removals != self.key_removals:
            self.key_removals = self.key.removals
            self.cache.clear()
        verified = self.cache.get(token, now)
        if verified is None:
            try:
                verified = Verified.of(self.key.decode(token, self.settings.issuer))
            except Exception:
                return self._challenge(host, "invalid_token")
            self.cache.put(token, verified)
        claims = verified.claims
        if claims["aud"] not in self.audiences[host]:
            return self._challenge(host, "invalid_token")
        if await self.revocation.is_revoked(verified):
            return self._challenge(host, "invalid_token")
        if not resource.allows(claims["sub"], claims.get("groups", ())):
            return self._challenge(host, "insufficient_scope", status=403)
        return 200, [
            (self.h_user_id, claims["sub"].encode()),
            (self.h_user_name, claims.get("name", claims["sub"]).encode()),
            (self.h_token, token.encode("latin-1")),
            (b"cache-control", b"no-store"),
        ]
