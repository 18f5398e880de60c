"""The OAuthAuthorizationServerProvider of the MCP SDK, backed by Redis.

The SDK's handlers (mcp.server.auth) parse and validate the protocol: PKCE S256,
exact redirect-URI match, code expiry and client binding, client authentication. This
provider adds the gateway's policy: redirect-URI rules at registration, the RFC 8707
resource as the token audience, single-use codes, rotating refresh tokens whose reuse
revokes the whole family, and signed JWT access tokens.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlparse

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from .config import Settings
from .keys import KeyRing
from .store import Store

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob"}
# A reverse domain name: letters, digits, + and - in at least two dot-separated labels.
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")


def check_redirect_uri(uri: str) -> None:
    """https anywhere, http only on loopback, private-use schemes for native apps (RFC 8252
    7.1: a reverse domain name, so with a dot). Never a fragment, not even an empty one, and
    never a user name or password (RFC 6749 3.1.2, RFC 8252 8.x)."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if "#" in uri:
        raise RegistrationError("invalid_redirect_uri", f"redirect URI {uri!r} must not have a fragment")
    if "@" in parsed.netloc:
        raise RegistrationError(
            "invalid_redirect_uri", f"redirect URI {uri!r} must not hold a user name or password"
        )
    if scheme == "https":
        if not parsed.hostname:
            raise RegistrationError("invalid_redirect_uri", f"redirect URI {uri!r} has no host")
        return
    if scheme == "http":
        host = (parsed.hostname or "").lower()
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in LOOPBACK_HOSTS
        if loopback:
            return
        raise RegistrationError(
            "invalid_redirect_uri", f"redirect URI {uri!r}: http is allowed only on loopback"
        )
    if not scheme or scheme in FORBIDDEN_SCHEMES:
        raise RegistrationError("invalid_redirect_uri", f"redirect URI {uri!r} has a forbidden scheme")
    if not PRIVATE_USE_SCHEME.match(scheme):
        # ws, ftp, myapp: neither a web redirect nor a native app's reverse-domain scheme.
        raise RegistrationError(
            "invalid_redirect_uri",
            f"redirect URI {uri!r}: the scheme must be https, http on loopback, or a private-use "
            "scheme named by a reverse domain name (com.example.app)",
        )


# What a client's registration may hold (RFC 7591 metadata); it is kept in Redis, so every
# field has a size: a registered client takes at most about 15 KB.
TEXT_LIMITS = {"client_name": 200, "software_id": 200, "software_version": 100, "scope": 1000}
URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri")
MAX_URL = 1000
MAX_REDIRECT_URIS = 10
MAX_CONTACTS = 5
MAX_CONTACT = 254
GRANT_TYPES = ("authorization_code", "refresh_token")


def check_client_metadata(client: OAuthClientInformationFull) -> None:
    """Sizes and values of the metadata a client registers (RFC 7591 3.2.2: the error names
    the field); the redirect URIs' rules are check_redirect_uri's."""

    def refuse(name: str, rule: str) -> RegistrationError:
        return RegistrationError("invalid_client_metadata", f"'{name}' {rule}")

    for name, limit in TEXT_LIMITS.items():
        value = getattr(client, name)
        if value is not None and len(value) > limit:
            raise refuse(name, f"must be at most {limit} characters")
    for name in URL_FIELDS:
        value = getattr(client, name)
        if value is not None and len(str(value)) > MAX_URL:
            raise refuse(name, f"must be at most {MAX_URL} characters")
    contacts = client.contacts or []
    if len(contacts) > MAX_CONTACTS or any(len(contact) > MAX_CONTACT for contact in contacts):
        raise refuse("contacts", f"may hold at most {MAX_CONTACTS} addresses of {MAX_CONTACT} characters")
    uris = [str(uri) for uri in client.redirect_uris or []]
    if len(uris) > MAX_REDIRECT_URIS or any(len(uri) > MAX_URL for uri in uris):
        raise refuse("redirect_uris", f"may hold at most {MAX_REDIRECT_URIS} URIs of {MAX_URL} characters")
    if not set(client.grant_types) <= set(GRANT_TYPES) or len(client.grant_types) > len(GRANT_TYPES):
        raise refuse("grant_types", "may hold only authorization_code and refresh_token")
    if set(client.response_types) != {"code"} or len(client.response_types) > 1:
        raise refuse("response_types", 'must be ["code"]')
    if client.jwks is not None:
        # Clients authenticate with a secret or not at all: a key set would only take room.
        raise refuse("jwks", "is not supported (no private_key_jwt here)")


# The field of a client's record holding the SHA-256 of its registration access token.
REGISTRATION_TOKEN_FIELD = "registration_access_token_sha256"  # noqa: S105 -- a field name


def _document_host(client: OAuthClientInformationFull) -> str | None:
    """The host of a Client ID Metadata Document's URL (the sign-in page shows it beside the
    name the document claims); None for a registered client."""
    return urlparse(client.client_id).hostname if client.client_id.startswith("https://") else None


class GatewayProvider:
    """OAuthAuthorizationServerProvider for the gateway (local login; upstream IdPs plug in here)."""

    def __init__(self, settings: Settings, store: Store, key: KeyRing) -> None:
        self.settings = settings
        self.store = store
        self.key = key
        # The resolver of Client ID Metadata Documents, set by the app when they are enabled.
        self.client_documents: Any = None
        self.used_client_ttl = max(settings.refresh_token_ttl, settings.client_unused_ttl)

    # -- clients ---------------------------------------------------------------------------
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            # A Client ID Metadata Document (cimd.py); registered ids are never URLs.
            return await self.client_documents.client(client_id) if self.client_documents else None
        data = await self.store.get_client(client_id)
        return OAuthClientInformationFull.model_validate(data) if data else None

    @staticmethod
    def check_registration(client_info: OAuthClientInformationFull) -> None:
        """The gateway's rules for what a client registers (RFC 7591) or updates (RFC 7592)."""
        check_client_metadata(client_info)
        for uri in client_info.redirect_uris or []:
            check_redirect_uri(str(uri))
        if not client_info.redirect_uris:
            raise RegistrationError("invalid_redirect_uri", "at least one redirect URI is required")

    async def register_client(
        self, client_info: OAuthClientInformationFull, registration_token_sha256: str | None = None
    ) -> None:
        """Check and keep a new client; with the SHA-256 of its registration access token
        (RFC 7592), which is all the service keeps of that token."""
        self.check_registration(client_info)
        record = client_info.model_dump(mode="json", exclude_none=True)
        if registration_token_sha256:
            record[REGISTRATION_TOKEN_FIELD] = registration_token_sha256
        # Kept for client_unused_ttl until its first token exchange (_issue renews it then).
        await self.store.put_client(client_info.client_id, record, ttl=self.settings.client_unused_ttl)

    async def client_record(self, client_id: str) -> dict[str, Any] | None:
        """A registered client's record as kept (the registration access token's hash with
        it); None for an unknown client and for every Client ID Metadata Document."""
        if client_id.startswith("https://"):
            return None
        return await self.store.get_client(client_id)

    async def update_client(
        self, client_info: OAuthClientInformationFull, registration_token_sha256: str
    ) -> bool:
        """Replace a client's registration (RFC 7592 2.2), keeping its remaining lifetime;
        False if it is gone meanwhile."""
        self.check_registration(client_info)
        record = client_info.model_dump(mode="json", exclude_none=True)
        record[REGISTRATION_TOKEN_FIELD] = registration_token_sha256
        return await self.store.replace_client(client_info.client_id, record)

    async def delete_client(self, client_id: str) -> None:
        """Forget a client and revoke every grant it holds (RFC 7592 2.3): its access tokens
        fail /verify, its refresh tokens and codes no longer work."""
        await self.store.delete_client(client_id)
        await self.store.revoke_client(client_id)

    # -- authorization -------------------------------------------------------------------------
    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if not params.resource:
            raise AuthorizeError("invalid_request", "the resource parameter (RFC 8707) is required")
        resource = self.settings.resource_for_url(params.resource)
        if resource is None:
            raise AuthorizeError("invalid_target", f"unknown resource {params.resource!r}")
        scopes = params.scopes or list(self.settings.scopes)
        unknown = set(scopes) - set(self.settings.scopes)
        if unknown:
            raise AuthorizeError("invalid_scope", f"unknown scope(s) {' '.join(sorted(unknown))}")
        request_id = secrets.token_urlsafe(24)
        # The same request again, for the sign-in page's "Start over" once this one expires.
        restart = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": str(params.redirect_uri) if params.redirect_uri_provided_explicitly else None,
            "code_challenge": params.code_challenge,
            "code_challenge_method": "S256",
            "state": params.state,
            "scope": " ".join(params.scopes) if params.scopes else None,
            "resource": params.resource,
        }
        await self.store.put_authreq(
            request_id,
            {
                "client_id": client.client_id,
                "client_name": client.client_name,
                "client_document_host": _document_host(client),
                "restart": {k: v for k, v in restart.items() if v is not None},
                "redirect_uri": str(params.redirect_uri),
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "code_challenge": params.code_challenge,
                "state": params.state,
                "scopes": scopes,
                "resource": resource.url,
                "csrf": secrets.token_urlsafe(32),
                "browser": None,
                "created": time.time(),
            },
            self.settings.login_ttl,
        )
        return f"{self.settings.issuer}/login?{urlencode({'request': request_id})}"

    async def complete_authorization(
        self,
        request: dict[str, Any],
        user_id: str,
        user_name: str,
        groups: Sequence[str] = (),
        auth_time: int | None = None,
    ) -> str:
        """After a successful login: issue the code and return the client's redirect URL.

        The identity (subject, name, groups) and the time of the sign-in travel with the
        code, then with the refresh token, into every access token (claims `sub`, `name`,
        `groups`, `auth_time`); revocations by client, user or time compare `auth_time`."""
        code = secrets.token_urlsafe(32)
        await self.store.put_code(
            code,
            {
                "client_id": request["client_id"],
                "redirect_uri": request["redirect_uri"],
                "redirect_uri_provided_explicitly": request["redirect_uri_provided_explicitly"],
                "code_challenge": request["code_challenge"],
                "scopes": request["scopes"],
                "resource": request["resource"],
                "subject": user_id,
                "name": user_name,
                "groups": list(groups),
                "auth_time": int(time.time()) if auth_time is None else auth_time,
                "expires_at": time.time() + self.settings.code_ttl,
            },
            self.settings.code_ttl,
        )
        params = {"code": code, "iss": self.settings.issuer}
        if request.get("state") is not None:
            params["state"] = request["state"]
        separator = "&" if urlparse(request["redirect_uri"]).query else "?"
        return f"{request['redirect_uri']}{separator}{urlencode(params)}"

    def error_location(self, request: dict[str, Any], error: str, description: str) -> str:
        """The client's redirect URI with an authorization error (RFC 6749 4.1.2.1, RFC 9207 iss)."""
        params = {"error": error, "error_description": description, "iss": self.settings.issuer}
        if request.get("state") is not None:
            params["state"] = request["state"]
        separator = "&" if urlparse(request["redirect_uri"]).query else "?"
        return f"{request['redirect_uri']}{separator}{urlencode(params)}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        data = await self.store.get_code(authorization_code)
        if data is None:
            family = await self.store.used_code_family(authorization_code)
            if family is not None:
                # RFC 6749 4.1.2: a code used twice revokes the tokens issued with it.
                await self.store.revoke_family(family)
            return None
        if await self.store.is_revoked(data["client_id"], data["subject"], "", data.get("auth_time", 0)):
            # The client or the user was revoked since the sign-in.
            return None
        fields = {k: v for k, v in data.items() if k not in ("name", "groups", "auth_time")}
        return AuthorizationCode(code=authorization_code, **fields)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        family = secrets.token_urlsafe(16)
        data, reused = await self.store.take_code(authorization_code.code, family)
        if data is None:
            # RFC 6749 4.1.2: a second use revokes what the first one got (done by the store).
            raise TokenError("invalid_grant", "authorization code already used" if reused else "unknown code")
        if data["client_id"] != client.client_id:
            raise TokenError("invalid_grant", "authorization code of another client")
        return await self._issue(
            client.client_id,
            data["subject"],
            data["name"],
            data["resource"],
            data["scopes"],
            family,
            data.get("groups", []),
            data.get("auth_time", 0),
        )

    # -- refresh tokens -----------------------------------------------------------------------------
    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        data = await self.store.get_refresh(refresh_token)
        if data is None:
            family = await self.store.used_refresh_family(refresh_token)
            if family is not None:
                # A rotated refresh token came back: it was stolen or replayed. Revoke the grant.
                await self.store.revoke_family(family)
            return None
        if data["client_id"] != client.client_id or await self.store.is_revoked(
            data["client_id"], data["subject"], data["family"], data.get("auth_time", 0)
        ):
            return None
        return RefreshToken(
            token=refresh_token,
            client_id=data["client_id"],
            scopes=data["scopes"],
            expires_at=data["expires_at"],
            resource=data["resource"],
            subject=data["subject"],
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        data, reused = await self.store.rotate_refresh(refresh_token.token)
        if data is None:
            # A concurrent request rotated it first: a reuse, whose family the store revoked.
            raise TokenError(
                "invalid_grant", "refresh token already used" if reused else "unknown refresh token"
            )
        if scopes and not set(scopes) <= set(data["scopes"]):
            raise TokenError("invalid_scope", "cannot widen the scopes of a grant")
        return await self._issue(
            client.client_id,
            data["subject"],
            data["name"],
            data["resource"],
            scopes or data["scopes"],
            data["family"],
            data.get("groups", []),
            data.get("auth_time", 0),
        )

    # -- access tokens ---------------------------------------------------------------------------------
    async def _issue(
        self,
        client_id: str,
        subject: str,
        name: str,
        resource: str,
        scopes: list[str],
        family: str,
        groups: list[str],
        auth_time: int,
    ) -> OAuthToken:
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": resource,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "name": name,
            "fam": family,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + self.settings.access_token_ttl,
            "auth_time": auth_time,
        }
        if groups:
            # /verify matches them against the resource's allowed_groups.
            claims["groups"] = groups
        access = self.key.sign(claims)
        refresh = secrets.token_urlsafe(32)
        await self.store.put_refresh(
            refresh,
            {
                "client_id": client_id,
                "subject": subject,
                "name": name,
                "groups": groups,
                "resource": resource,
                "scopes": scopes,
                "family": family,
                "auth_time": auth_time,
                "issued_at": now,
                "expires_at": now + self.settings.refresh_token_ttl,
            },
            # A registered client in use stays as long as the refresh token just issued.
            client_ttl=None if client_id.startswith("https://") else self.used_client_ttl,
        )
        # A revocation of this client, user or time that came while this exchange was under
        # way may have looked for the grant's family before it was written: look again (at
        # the markers only: a replay that revoked the family is answered as before).
        if await self.store.is_revoked(client_id, subject, "", auth_time):
            await self.store.revoke_family(family)
            raise TokenError("invalid_grant", "the grant was revoked")
        return OAuthToken(
            access_token=access,
            token_type="Bearer",  # noqa: S106 -- the token type, not a password
            expires_in=self.settings.access_token_ttl,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        try:
            claims = self.key.decode(token, self.settings.issuer)
        except Exception:
            return None
        if await self.store.is_revoked(
            claims["client_id"], claims["sub"], claims["fam"], claims.get("auth_time", 0), claims["jti"]
        ):
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"],
            resource=claims["aud"],
            subject=claims["sub"],
            claims=claims,
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        # RFC 7009 2.1: revoking either token of a grant revokes the grant.
        if isinstance(token, AccessToken):
            claims = token.claims or {}
            await self.store.revoke_jti(claims["jti"], int(claims["exp"] - time.time()))
            await self.store.revoke_family(claims["fam"])
            return
        data = await self.store.get_refresh(token.token)
        if data is not None:
            await self.store.revoke_family(data["family"])
            await self.store.delete_refresh(token.token)
