"""The SDK's OAuth endpoints (mcp.server.auth.handlers), with the gateway's corrections.

The SDK's handlers parse and answer the protocol; the subclasses here add what the
gateway needs around them, without copying their logic:

- /authorize: the parameters that reach Redis have a size (and the PKCE challenge its
  S256 form) before the SDK sees them.
"""

from __future__ import annotations

import re
from typing import Any

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .provider import GatewayProvider

NO_STORE = {"Cache-Control": "no-store"}

# The parameters of an authorization request that are kept while the person signs in.
AUTHORIZE_LIMITS = {"client_id": 2048, "redirect_uri": 1000, "state": 1024, "scope": 1000, "resource": 1000}
# RFC 7636 4.2: an S256 challenge is BASE64URL(SHA-256(verifier)), 43 characters.
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def oauth_error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **headers},
    )


class GatewayAuthorizationHandler(AuthorizationHandler):
    async def handle(self, request: Request) -> Response:
        params = request.query_params if request.method == "GET" else await request.form()
        refused = self._oversized(params)
        if refused is not None:
            return refused
        return await super().handle(request)

    @staticmethod
    def _oversized(params: Any) -> Response | None:
        """Too large to keep: refused here, neither stored nor sent back to a redirect URI
        (RFC 6749 4.1.2.1 would echo `state`, which is the problem)."""
        for name, limit in AUTHORIZE_LIMITS.items():
            value = params.get(name)
            if isinstance(value, str) and len(value) > limit:
                return oauth_error(400, "invalid_request", f"'{name}' must be at most {limit} characters")
        challenge = params.get("code_challenge")
        if isinstance(challenge, str) and not S256_CHALLENGE.match(challenge):
            return oauth_error(
                400, "invalid_request", "'code_challenge' must be an S256 challenge (43 base64url characters)"
            )
        return None


def oauth_routes(
    provider: GatewayProvider,
    issuer: AnyHttpUrl,
    registration: ClientRegistrationOptions,
    revocation: RevocationOptions,
) -> list[Route]:
    """The SDK's routes (create_auth_routes), our handler subclasses where we have one."""
    ours = {
        "/authorize": Route(
            "/authorize", GatewayAuthorizationHandler(provider).handle, methods=["GET", "POST"]
        ),
    }
    routes = create_auth_routes(
        provider, issuer_url=issuer, client_registration_options=registration, revocation_options=revocation
    )
    return [ours.get(route.path, route) for route in routes]
