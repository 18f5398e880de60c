"""The ASGI application: /verify on a bare fast path, everything else through Starlette."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.auth.routes import build_metadata, cors_middleware
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .cimd import ClientMetadataResolver
from .config import Settings, normalize_host
from .consent import Consent
from .endpoints import CLIENT_AUTH_METHODS, oauth_routes
from .introspection import AUTH_METHODS as INTROSPECTION_AUTH_METHODS
from .introspection import Introspection
from .keys import KeyRing, SigningKey
from .login import SignIn
from .provider import GatewayProvider
from .store import Store
from .upstream import create_upstreams
from .verify import VerifyApp

log = logging.getLogger("mcp_gateway_auth")

NO_STORE = {"Cache-Control": "no-store"}
METADATA_CACHE = {"Cache-Control": "public, max-age=3600"}


class GatewayAuth:
    """The whole service; an ASGI callable."""

    def __init__(self, settings: Settings, redis: Redis, key: SigningKey | KeyRing) -> None:
        self.settings = settings
        self.redis = redis
        self.key = key if isinstance(key, KeyRing) else KeyRing.of(key)
        self.store = Store(
            redis, refresh_ttl=settings.refresh_token_ttl, access_ttl=settings.access_token_ttl
        )
        self.provider = GatewayProvider(settings, self.store, self.key)
        if settings.client_metadata.enabled:
            self.provider.client_documents = ClientMetadataResolver(
                settings.client_metadata, self.store, settings.scopes
            )
        self.verify = VerifyApp(settings, self.store, self.key)
        # github / oidc: /login/<provider> sends the browser upstream, /callback brings it back.
        self.consent = Consent(settings, self.provider)
        self.upstreams = create_upstreams(settings, self.provider, self.consent)
        self.sign_in = SignIn(settings, self.provider, self.upstreams, self.consent)
        issuer = AnyHttpUrl(settings.issuer)
        registration = ClientRegistrationOptions(
            enabled=True, valid_scopes=list(settings.scopes), default_scopes=list(settings.scopes)
        )
        revocation = RevocationOptions(enabled=True)
        metadata = build_metadata(issuer, None, registration, revocation)
        # RFC 8414 compares issuers as strings: the issuer is served exactly as configured
        # (pydantic would add a trailing slash), like the `iss` of tokens and redirects.
        self.as_metadata = metadata.model_dump(mode="json", exclude_none=True) | {
            "issuer": settings.issuer,
            # Public clients authenticate with `none`, which the SDK does not list.
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
            "client_id_metadata_document_supported": settings.client_metadata.enabled,
            "introspection_endpoint": f"{settings.issuer}/introspect",
            "introspection_endpoint_auth_methods_supported": INTROSPECTION_AUTH_METHODS,
        }
        # The service issues no ID tokens: MCP clients that look for OpenID discovery (the
        # MCP spec lets them try it after RFC 8414's path) get the same RFC 8414 document
        # there, without the OpenID fields (ID-token algorithms, subject types) it could not
        # honour. RFC 8414 section 5 allows exactly this use of the path.
        self.openid_metadata = self.as_metadata
        routes = [
            *oauth_routes(self.provider, issuer, registration, revocation),
            # RFC 7662, for resource servers outside the gateway (server to server: no CORS).
            Route("/introspect", Introspection(self.provider).handle, methods=["POST"]),
            # Discovery: public documents without credentials, which browser-based MCP
            # clients read from their own origin (CORS for any origin, preflights answered).
            _public("/.well-known/oauth-authorization-server", self.authorization_server),
            _public("/.well-known/openid-configuration", self.openid_configuration),
            _public("/.well-known/jwks.json", self.jwks),
            _public("/.well-known/oauth-protected-resource", self.protected_resource),
            _public("/.well-known/oauth-protected-resource/{path:path}", self.protected_resource),
            Route("/login", self.sign_in.show, methods=["GET"]),
            Route("/login", self.sign_in.submit, methods=["POST"]),
            Route("/login/{provider}", self.upstreams.start, methods=["GET"]),
            Route("/callback", self.upstreams.callback, methods=["GET"]),
            Route("/consent", self.consent.show, methods=["GET"]),
            Route("/consent", self.consent.submit, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
        ]
        app: Any = Starlette(routes=routes, lifespan=self.lifespan)
        if settings.trusted_proxies:
            # uvicorn's own: X-Forwarded-For names the client only when the peer is a trusted
            # proxy (Traefik), taking the last address no trusted proxy added. The sign-in
            # form counts failures against that address. /verify does not use addresses.
            app = ProxyHeadersMiddleware(app, trusted_hosts=list(settings.trusted_proxies))
        # Outermost: the SDK's body limit, for every endpoint but /verify (which reads no
        # body). A declared Content-Length above the cap gets 413 at once; a chunked body is
        # read up to the cap, then 413. Nothing behind it sees more than the cap.
        self.app = RequestBodyLimitMiddleware(app, settings.max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.redis.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/verify":
            await self.verify(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- handlers -------------------------------------------------------------------------------
    def _host(self, request: Request) -> str:
        return normalize_host(request.headers.get("x-forwarded-host") or request.headers.get("host", ""))

    async def protected_resource(self, request: Request) -> Response:
        """RFC 9728 metadata of the MCP host the request came to (root and path-inserted forms)."""
        host = self._host(request)
        resource = self.settings.resources.get(host)
        path = request.path_params.get("path")
        if resource is None or (path is not None and f"/{path}" != resource.path):
            return JSONResponse({"error": "not_found"}, status_code=404, headers=NO_STORE)
        metadata = ProtectedResourceMetadata(
            resource=AnyHttpUrl(resource.url),
            authorization_servers=[AnyHttpUrl(self.settings.issuer)],
            scopes_supported=list(self.settings.scopes),
            resource_name=f"MCP server {host}",
        )
        body = metadata.model_dump(mode="json", exclude_none=True) | {
            "authorization_servers": [self.settings.issuer]
        }
        return JSONResponse(body, headers=METADATA_CACHE)

    async def authorization_server(self, request: Request) -> Response:
        return JSONResponse(self.as_metadata, headers=METADATA_CACHE)

    async def openid_configuration(self, request: Request) -> Response:
        return JSONResponse(self.openid_metadata, headers=METADATA_CACHE)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.key.jwks(), headers=METADATA_CACHE)

    async def health(self, request: Request) -> Response:
        try:
            await self.redis.ping()
        except Exception:
            return JSONResponse({"status": "redis unavailable"}, status_code=503, headers=NO_STORE)
        return JSONResponse({"status": "ok"}, headers=NO_STORE)


def _public(path: str, handler: Any) -> Route:
    """A GET route readable from any origin: the SDK's CORS wrapper, as on its own metadata route."""
    return Route(path, cors_middleware(handler, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])


def create_app(settings: Settings) -> GatewayAuth:
    key = KeyRing(settings.signing_key_file, settings.signing_keys_dir)
    # Timeouts: a Redis that stops answering fails /verify closed (503) instead of hanging.
    redis = Redis.from_url(
        settings.redis_url,
        password=settings.redis_password,
        health_check_interval=30,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    return GatewayAuth(settings, redis, key)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; only the fields we put there (no tokens, no secrets)."""

    # color_message: uvicorn's copy of its message with terminal colours.
    RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, default=str)
