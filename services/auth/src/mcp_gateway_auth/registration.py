"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592).

POST /register answers like the SDK's registration endpoint, plus `registration_client_uri`
(https://<issuer>/register/<client_id>) and a `registration_access_token`, of which only
the SHA-256 is kept. With that token the client reads (GET), replaces (PUT) and deletes
(DELETE) its registration there.

Both a registration and an update are checked by the SDK's own RegistrationHandler (its
parsing, defaults and rules), run against a stand-in provider that applies the gateway's
rules (provider.check_registration) and keeps the result instead of storing it: an update
is checked exactly like a registration, with the same answers for the same mistakes.

The token is the client's credential for its own URI only. A request without one gets a
bare Bearer challenge (RFC 6750 3.1); any other failure - a wrong token, the token of
another client, a client that does not exist (or no longer does), a Client ID Metadata
Document (which has no configuration endpoint) - gets the same 401 invalid_token, so the
answer tells nothing about clients the caller does not hold the token of. There is no 403:
every registered client may manage itself.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import Any

from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.provider import RegistrationError
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.shared.auth import OAuthClientInformationFull
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .provider import REGISTRATION_TOKEN_FIELD, GatewayProvider
from .store import token_hash

log = logging.getLogger("mcp_gateway_auth.registration")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Fields the server assigns: never taken from an update (RFC 7592 2.2).
SERVER_FIELDS = (
    "client_id",
    "client_secret",
    "client_secret_expires_at",
    "client_id_issued_at",
    "registration_access_token",
    "registration_client_uri",
)


class _Checked:
    """A stand-in provider for the SDK's RegistrationHandler: the gateway's rules, and the
    client they accepted kept here instead of stored."""

    def __init__(self, provider: GatewayProvider) -> None:
        self.provider = provider
        self.client: OAuthClientInformationFull | None = None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.provider.check_registration(client_info)
        self.client = client_info


def _json_request(request: Request, body: bytes) -> Request:
    """A POST with `body` as its JSON body, for the SDK's handler."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return Request({**request.scope, "method": "POST", "headers": headers}, receive)


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=NO_STORE
    )


class ClientRegistration:
    """POST /register and GET/PUT/DELETE /register/<client_id>."""

    def __init__(self, provider: GatewayProvider, options: ClientRegistrationOptions) -> None:
        self.provider = provider
        self.options = options
        self.issuer = provider.settings.issuer

    def uri(self, client_id: str) -> str:
        return f"{self.issuer}/register/{client_id}"

    def _answer(self, client: OAuthClientInformationFull, token: str, status: int = 200) -> JSONResponse:
        body = client.model_dump(mode="json", exclude_none=True) | {
            "registration_access_token": token,
            "registration_client_uri": self.uri(client.client_id),
        }
        return JSONResponse(body, status_code=status, headers=NO_STORE)

    async def _check(self, request: Request, body: bytes) -> OAuthClientInformationFull | Response:
        """The client metadata in `body` as the SDK's registration endpoint would register
        it (a new client_id and, for a confidential client, a new secret), or its 400."""
        checked = _Checked(self.provider)
        answer = await RegistrationHandler(checked, self.options).handle(_json_request(request, body))  # type: ignore[arg-type]
        if checked.client is None:
            return answer
        return checked.client

    # -- POST /register (RFC 7591, with RFC 7592's additions) -------------------------------------
    async def register(self, request: Request) -> Response:
        checked = await self._check(request, await request.body())
        if isinstance(checked, Response):
            return checked
        token = secrets.token_urlsafe(32)
        try:
            await self.provider.register_client(checked, registration_token_sha256=token_hash(token))
        except RegistrationError as error:  # checked above already; kept for safety
            return _error(400, error.error, error.error_description or error.error)
        log.info("client registered", extra={"client_id": checked.client_id})
        return self._answer(checked, token, status=201)

    # -- the registration access token ------------------------------------------------------------
    def _challenge(self, error: str | None = None) -> JSONResponse:
        value = f'Bearer realm="{self.issuer}"'
        body = {"error": "invalid_request", "error_description": "a registration access token is required"}
        if error:
            description = "the registration access token is not valid for this client"
            value += f', error="{error}", error_description="{description}"'
            body = {"error": error, "error_description": description}
        return JSONResponse(body, status_code=401, headers={**NO_STORE, "WWW-Authenticate": value})

    async def _authorized(self, request: Request) -> tuple[dict[str, Any], str] | Response:
        """The client's record and the token presented, or the 401 to answer."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or not header[7:].strip():
            return self._challenge()
        token = header[7:].strip()
        record = await self.provider.client_record(request.path_params["client_id"])
        expected = record.get(REGISTRATION_TOKEN_FIELD) if record else None
        # Bytes: compare_digest refuses str with non-ASCII characters.
        if not expected or not hmac.compare_digest(token_hash(token).encode(), expected.encode()):
            return self._challenge("invalid_token")
        return record, token

    # -- GET /register/<client_id> (RFC 7592 2.1) -------------------------------------------------
    async def read(self, request: Request) -> Response:
        authorized = await self._authorized(request)
        if isinstance(authorized, Response):
            return authorized
        record, token = authorized
        return self._answer(OAuthClientInformationFull.model_validate(record), token)

    # -- PUT /register/<client_id> (RFC 7592 2.2) -------------------------------------------------
    async def update(self, request: Request) -> Response:
        authorized = await self._authorized(request)
        if isinstance(authorized, Response):
            return authorized
        record, token = authorized
        current = OAuthClientInformationFull.model_validate(record)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(
                400, "invalid_client_metadata", "the request must be a JSON object of client metadata"
            )
        refused = self._refuse_credentials(body, current, token)
        if refused is not None:
            return refused
        metadata = {name: value for name, value in body.items() if name not in SERVER_FIELDS}
        checked = await self._check(request, json.dumps(metadata).encode())
        if isinstance(checked, Response):
            return checked
        # Omitted fields are gone (the update replaces the registration); the identity and
        # the secret stay the server's: a confidential client keeps its secret, a client
        # that becomes confidential gets the one just made, a public one has none.
        secret, expires = None, None
        if checked.token_endpoint_auth_method != "none":  # noqa: S105 -- a method's name
            if current.client_secret:
                secret, expires = current.client_secret, current.client_secret_expires_at
            else:
                secret, expires = checked.client_secret, checked.client_secret_expires_at
        updated = checked.model_copy(
            update={
                "client_id": current.client_id,
                "client_id_issued_at": current.client_id_issued_at,
                "client_secret": secret,
                "client_secret_expires_at": expires,
            }
        )
        if not await self.provider.update_client(updated, record[REGISTRATION_TOKEN_FIELD]):
            return self._challenge("invalid_token")
        log.info("client updated", extra={"client_id": current.client_id})
        return self._answer(updated, token)

    @staticmethod
    def _refuse_credentials(
        body: dict[str, Any], current: OAuthClientInformationFull, token: str
    ) -> Response | None:
        """RFC 7592 2.2: the update names this client, and may repeat (never choose) its
        credentials."""
        if body.get("client_id") != current.client_id:
            return _error(400, "invalid_request", "'client_id' must be this client's client_id")
        presented = body.get("registration_access_token")
        if presented is not None and not (
            isinstance(presented, str) and hmac.compare_digest(presented.encode(), token.encode())
        ):
            return _error(
                400, "invalid_request", "'registration_access_token' must be the token of this request"
            )
        secret = body.get("client_secret")
        if secret is not None and not (
            isinstance(secret, str)
            and current.client_secret
            and hmac.compare_digest(secret.encode(), current.client_secret.encode())
        ):
            return _error(
                400,
                "invalid_request",
                "'client_secret' must be the client's current secret (it cannot be chosen)",
            )
        return None

    # -- DELETE /register/<client_id> (RFC 7592 2.3) ----------------------------------------------
    async def delete(self, request: Request) -> Response:
        authorized = await self._authorized(request)
        if isinstance(authorized, Response):
            return authorized
        record, _ = authorized
        await self.provider.delete_client(record["client_id"])
        log.info("client deleted", extra={"client_id": record["client_id"]})
        return Response(status_code=204, headers=NO_STORE)
