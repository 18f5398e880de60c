"""RFC 7662 token introspection: POST /introspect, for resource servers outside the gateway
(the gateway's own MCP routes use /verify).

Who may ask, and what they may learn:
- a resource server of the configuration (`resource_servers`: client_id, a secret kept as
  its SHA-256, the resources it serves), by HTTP Basic or client_secret_post: access tokens
  for its own resources only, active only where /verify would let the user through (the
  resource's allow-lists). Never a refresh token: those are never sent to a resource
  server, so one that arrives there was stolen or is being passed off as an access token;
- a confidential registered client (client_secret_basic / client_secret_post): its own
  access and refresh tokens only;
- nobody else: public clients and metadata-document clients have no secret, so the answer
  is 401 invalid_client, as for a wrong secret (RFC 7662 2.3, RFC 6749 5.2).

Anything the caller may not see, and anything expired, revoked, unknown or malformed, is
`{"active": false}`: the answer never tells which.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .config import ResourceServer
from .endpoints import _form_with, basic_credentials, oauth_error
from .provider import GatewayProvider

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INACTIVE = {"active": False}
# How callers authenticate (RFC 8414 introspection_endpoint_auth_methods_supported).
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
MAX_TOKEN = 8192


@dataclass(frozen=True)
class Caller:
    client_id: str
    # A resource server's resources; None for a registered client (its own tokens only).
    resources: tuple[str, ...] | None = None


class Introspection:
    def __init__(self, provider: GatewayProvider) -> None:
        self.provider = provider
        self.settings = provider.settings
        self.store = provider.store
        self.authenticator = ClientAuthenticator(provider)
        self.resource_servers: dict[str, ResourceServer] = {
            server.client_id: server for server in self.settings.resource_servers
        }

    # -- POST /introspect -------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        form = await request.form()
        caller = await self._caller(request, form)
        if caller is None:
            return oauth_error(
                401,
                "invalid_client",
                "client authentication failed",
                **{"WWW-Authenticate": f'Basic realm="{self.settings.issuer}"', "Pragma": "no-cache"},
            )
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return oauth_error(400, "invalid_request", "the token parameter is required")
        answer: dict[str, Any] | None = None
        if len(token) <= MAX_TOKEN:
            lookups = [self._access_token, self._refresh_token]
            if form.get("token_type_hint") == "refresh_token":
                lookups.reverse()
            for lookup in lookups:
                answer = await lookup(token, caller)
                if answer is not None:
                    break
        return JSONResponse(answer or INACTIVE, headers=NO_STORE)

    async def _caller(self, request: Request, form: Any) -> Caller | None:
        credentials = basic_credentials(request)
        if credentials is None and isinstance(form.get("client_id"), str):
            secret = form.get("client_secret")
            credentials = (form["client_id"], secret if isinstance(secret, str) else "")
        if credentials is None:
            return None
        client_id, secret = credentials
        server = self.resource_servers.get(client_id)
        if server is not None:
            digest = hashlib.sha256(secret.encode()).hexdigest()
            if hmac.compare_digest(digest.encode(), server.client_secret_sha256.encode()):
                return Caller(client_id, server.resources)
            return None
        client = await self.provider.get_client(client_id)
        if client is None or client.token_endpoint_auth_method not in AUTH_METHODS:
            return None
        try:
            # The SDK's authenticator checks the secret the way the client registered it
            # (Basic or form); it wants client_id in the form.
            await self.authenticator.authenticate_request(await _form_with(request, client_id=client_id))
        except AuthenticationError:
            return None
        return Caller(client_id)

    # -- what each kind of token tells ------------------------------------------------------------
    async def _access_token(self, token: str, caller: Caller) -> dict[str, Any] | None:
        """The answer for an access token; INACTIVE for one of ours the caller may not see or
        that is revoked; None when it is no access token of ours at all."""
        try:
            claims = self.provider.key.decode(token, self.settings.issuer)
        except Exception:
            return None
        resource = self.settings.resource_for_url(claims["aud"])
        if caller.resources is None:
            visible = claims["client_id"] == caller.client_id
        else:
            visible = resource is not None and resource.url in caller.resources
            visible = visible and resource.allows(claims["sub"], claims.get("groups", ()))
        if not visible or await self.store.is_revoked(
            claims["client_id"],
            claims["sub"],
            claims.get("fam", ""),
            claims.get("auth_time", 0),
            claims["jti"],
        ):
            return INACTIVE
        return {
            "active": True,
            "scope": claims.get("scope", ""),
            "client_id": claims["client_id"],
            "username": claims.get("name", claims["sub"]),
            "sub": claims["sub"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "token_type": "Bearer",
        }

    async def _refresh_token(self, token: str, caller: Caller) -> dict[str, Any] | None:
        """Only a client, about its own refresh tokens (see the module's docstring)."""
        if caller.resources is not None:
            return None
        data = await self.store.get_refresh(token)
        if data is None or data["client_id"] != caller.client_id or data["expires_at"] <= time.time():
            return None
        if await self.store.is_revoked(
            data["client_id"], data["subject"], data["family"], data.get("auth_time", 0)
        ):
            return INACTIVE
        return {
            "active": True,
            "scope": " ".join(data["scopes"]),
            "client_id": data["client_id"],
            "username": data.get("name", data["subject"]),
            "sub": data["subject"],
            "exp": int(data["expires_at"]),
            "iat": int(data.get("issued_at", data["expires_at"] - self.settings.refresh_token_ttl)),
            "aud": data["resource"],
            "iss": self.settings.issuer,
        }
