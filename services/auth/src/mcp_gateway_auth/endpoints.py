"""The SDK's OAuth endpoints (mcp.server.auth.handlers), with the gateway's corrections.

The SDK's handlers parse and answer the protocol; the subclasses here add what the
gateway needs around them, without copying their logic:

- /authorize: the parameters that reach Redis have a size (and the PKCE challenge its
  S256 form) before the SDK sees them; an error goes back to the client's redirect URI
  only when that URI can be trusted, else our own page tells the person (RFC 9700 4.11.2);
- /token and /revoke: HTTP Basic client credentials alone identify the client (the SDK
  wants client_id in the body too); a public client may revoke without a client_secret
  field (RFC 7009); an unknown grant_type is unsupported_grant_type (the SDK's form model
  says invalid_request); a failed client authentication is 401 invalid_client with a
  WWW-Authenticate challenge (RFC 6749 5.2; the SDK says unauthorized_client at /revoke
  and sends no challenge at either).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.routes import cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import pages
from .provider import GatewayProvider
from .registration import ClientRegistration

log = logging.getLogger("mcp_gateway_auth.endpoints")

NO_STORE = {"Cache-Control": "no-store"}
METADATA_PATH = "/.well-known/oauth-authorization-server"
# The grants /token serves (the SDK's TokenHandler; its JWT bearer grant is off).
GRANT_TYPES = ("authorization_code", "refresh_token")
# Client authentication at /token and /revoke: the client secret by HTTP Basic or in the
# form (the SDK's ClientAuthenticator), or none for public clients.
CLIENT_AUTH_METHODS = ["client_secret_post", "client_secret_basic", "none"]

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


# What an authorization error means, in our words: the person never reads the client's text.
AUTHORIZE_ERRORS = {
    "invalid_request": "The application's sign-in request is incomplete or malformed.",
    "invalid_scope": "The application asked for permissions this gateway does not grant.",
    "invalid_target": "The application asked for an MCP server this gateway does not serve.",
    "unsupported_response_type": "The application asked for a kind of answer this gateway does not give.",
    "unauthorized_client": "This application may not sign in this way.",
    "access_denied": "The request was denied.",
    "server_error": "Something went wrong on the gateway.",
    "temporarily_unavailable": "The gateway cannot take sign-ins right now.",
}


def trusted_redirect(client_id: str, location: str) -> bool:
    """Whether an authorization error may go back to `location` on its own (RFC 9700 4.11.2:
    anyone can register a client whose redirect URI is their site, then send people to a
    request that fails, with text of their choosing in `error_description` - an open
    redirector for phishing. The RFC says to redirect automatically only to a URI the
    server trusts, and otherwise to inform the person):
    - a loopback http(s) URI leads back to the application on the person's own computer;
    - a Client ID Metadata Document's URI on the document's own host, the publisher the
      sign-in page names;
    - nothing else: a self-registered https URI or private-use scheme nobody vouched for."""
    target = urlsplit(location)
    host = (target.hostname or "").lower()
    if target.scheme in ("http", "https"):
        try:
            if ipaddress.ip_address(host).is_loopback:
                return True
        except ValueError:
            if host == "localhost":
                return True
    if client_id.startswith("https://") and target.scheme == "https":
        return host == (urlsplit(client_id).hostname or "").lower()
    return False


class GatewayAuthorizationHandler(AuthorizationHandler):
    provider: GatewayProvider

    async def handle(self, request: Request) -> Response:
        params = request.query_params if request.method == "GET" else await request.form()
        refused = self._oversized(params)
        if refused is not None:
            return refused
        response = await super().handle(request)
        location = response.headers.get("location", "")
        if response.status_code == 302 and not location.startswith(f"{self.provider.settings.issuer}/login?"):
            # Not our sign-in page: the SDK sends an error back to the client's redirect URI.
            return self._error_redirect(params.get("client_id"), location, response)
        return response

    def _error_redirect(self, client_id: Any, location: str, response: Response) -> Response:
        """The SDK's error redirect if trusted_redirect says so, else our page: in our words,
        the error code for the application's developer, and where it did not go."""
        if trusted_redirect(str(client_id or ""), location):
            return response
        error = parse_qs(urlsplit(location).query).get("error", ["invalid_request"])[0]
        if error not in AUTHORIZE_ERRORS:
            error = "invalid_request"
        log.info("authorization error shown, not redirected", extra={"client_id": client_id, "error": error})
        where = pages.redirect_target(location).label
        body = (
            f'<div class="alert" role="alert"><p>{pages.e(AUTHORIZE_ERRORS[error])}</p></div>'
            f"<p>Error code: <code>{pages.e(error)}</code></p>"
            f'<p class="note">The gateway did not send you on to {pages.e(where)}, because nobody '
            "vouched that it belongs to this application. Close this window and start again from "
            "your application.</p>"
        )
        return pages.page(self.provider.settings.gateway_name, "Sign-in request refused", body, status=400)

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


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """HTTP Basic client credentials (RFC 6749 2.3.1: both parts form-urlencoded), decoded the
    way the SDK's ClientAuthenticator decodes them; None without them."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if colon and client_id else None


def basic_client_id(request: Request) -> str | None:
    """The client_id of HTTP Basic client credentials; None without them. The SDK checks the secret."""
    credentials = basic_credentials(request)
    return credentials[0] if credentials else None


async def _form_with(request: Request, **defaults: str) -> Request:
    """The request again, its form completed with `defaults` where a field is missing (the
    SDK's handlers read the body themselves; the body limit outside bounds it)."""
    form = await request.form()
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    present = {name for name, _ in fields}
    missing = [(name, value) for name, value in defaults.items() if name not in present]
    if not missing:
        return request
    body = urlencode(fields + missing).encode()
    headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-length", b"content-type")]
    headers += [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", b"%d" % len(body)),
    ]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


def _client_defaults(request: Request) -> dict[str, str]:
    client_id = basic_client_id(request)
    return {"client_id": client_id} if client_id else {}


def client_challenge(response: Response, issuer: str) -> Response:
    """A 401 as invalid_client with a challenge: RFC 6749 5.2 requires one when the client
    tried HTTP Basic, and every 401 carries one (RFC 9110 15.5.2); Basic is the scheme offered."""
    if response.status_code != 401:
        return response
    try:
        description = json.loads(bytes(response.body)).get("error_description")
    except ValueError:
        description = None
    return oauth_error(
        401,
        "invalid_client",
        description or "client authentication failed",
        **{"WWW-Authenticate": f'Basic realm="{issuer}"', "Pragma": "no-cache"},
    )


class GatewayTokenHandler(TokenHandler):
    provider: GatewayProvider

    async def handle(self, request: Request) -> Response:
        grant_type = (await request.form()).get("grant_type")
        if isinstance(grant_type, str) and grant_type not in GRANT_TYPES:
            return oauth_error(
                400,
                "unsupported_grant_type",
                f"grant_type must be one of {', '.join(GRANT_TYPES)}",
                Pragma="no-cache",
            )
        request = await _form_with(request, **_client_defaults(request))
        return client_challenge(await super().handle(request), self.provider.settings.issuer)


class GatewayRevocationHandler(RevocationHandler):
    provider: GatewayProvider

    async def handle(self, request: Request) -> Response:
        # RFC 7009 2.1: a public client sends its client_id only; the SDK's form model also
        # wants client_secret (its authenticator still requires one from confidential clients).
        request = await _form_with(request, **_client_defaults(request), client_secret="")
        return client_challenge(await super().handle(request), self.provider.settings.issuer)


def oauth_routes(
    provider: GatewayProvider,
    issuer: AnyHttpUrl,
    registration: ClientRegistrationOptions,
    revocation: RevocationOptions,
) -> list[Route]:
    """The SDK's routes (create_auth_routes), our handler subclasses where we have one."""
    authenticator = ClientAuthenticator(provider)
    token = GatewayTokenHandler(provider, authenticator)
    revoke = GatewayRevocationHandler(provider, authenticator)
    clients = ClientRegistration(provider, registration)
    # CORS as the SDK gives it: browser-based clients call these three.
    ours = {
        "/register": Route(
            "/register", cors_middleware(clients.register, ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"]
        ),
        "/authorize": Route(
            "/authorize", GatewayAuthorizationHandler(provider).handle, methods=["GET", "POST"]
        ),
        "/token": Route(
            "/token", cors_middleware(token.handle, ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"]
        ),
        "/revoke": Route(
            "/revoke", cors_middleware(revoke.handle, ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"]
        ),
    }
    routes = create_auth_routes(
        provider, issuer_url=issuer, client_registration_options=registration, revocation_options=revocation
    )
    # The authorization-server metadata is the app's own (its issuer as configured, `none`).
    return [ours.get(route.path, route) for route in routes if route.path != METADATA_PATH] + [
        # RFC 7592 client configuration (`path`: a URL client_id is answered, not 404).
        Route("/register/{client_id:path}", clients.read, methods=["GET"]),
        Route("/register/{client_id:path}", clients.update, methods=["PUT"]),
        Route("/register/{client_id:path}", clients.delete, methods=["DELETE"]),
    ]
