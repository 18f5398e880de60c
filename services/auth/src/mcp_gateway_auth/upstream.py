"""Upstream identity providers: `github` (a GitHub OAuth app) and `oidc` (any OpenID provider).

The MCP client's authorization request waits in Redis as it does for the local login
(provider.authorize). `/login?request=<id>` then sends the browser to the upstream
provider instead of showing a form:

1. /login/<provider> (or /login itself when that provider is the only way in): a random
   `state` (single use, login TTL) stored with the pending request, the provider's name,
   the PKCE verifier of the upstream request (S256) and, for OpenID, a `nonce`; the state
   is bound to this browser by a cookie (like the local form's CSRF check) -> 302 upstream.
2. /callback?code&state: the state and the cookie are checked and the state is taken
   (used once); the provider it names exchanges the code at its token endpoint; the user is
   identified (GitHub: GET /user; OpenID: the ID token, checked with joserfc, plus
   userinfo when a claim is missing) and checked against the allow-lists; then
   provider.complete_authorization issues our code with the identity (subject, name,
   groups) and the browser goes back to the MCP client, or first to the consent page
   (consent.py).

Every failure ends on a small HTML page (4xx; 502 when the upstream cannot be reached).
Logs name the user and the reason, never a code, token, secret or response body.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import httpx2
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import pages
from .config import GitHubSettings, OidcSettings, Settings, client_tls
from .consent import Consent
from .provider import GatewayProvider

log = logging.getLogger("mcp_gateway_auth.upstream")

BROWSER_COOKIE = "mcpgw_upstream"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
USER_AGENT = "mcp-gateway-auth"
# Asymmetric signatures only: never `none`, never HMAC with the client secret.
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
CLOCK_SKEW = 60

# Neither the provider nor the MCP client learns our URLs (request ids, upstream codes).
REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class UpstreamError(Exception):
    """A sign-in that cannot go on: `message` is for the user, `reason` and `details` for the log."""

    def __init__(self, answer: int, message: str, reason: str, /, **details: Any) -> None:
        super().__init__(reason)
        self.status = answer
        self.message = message
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Identity:
    subject: str
    name: str
    groups: tuple[str, ...] = ()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _json(response: httpx2.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UpstreamError(
            502,
            "The identity provider answered with something unexpected.",
            f"{what}: not a JSON object",
            status=response.status_code,
        )
    return body


def _short(value: Any) -> str | None:
    """An upstream error code for the log: short, printable, never a body."""
    return str(value)[:64] if isinstance(value, str) else None


class UpstreamLogin:
    """The browser side shared by both providers; subclasses talk to their provider."""

    name = "upstream"
    # The provider's name for people ("Sign in with <label>", "<label> cannot be reached").
    label = "The identity provider"

    def __init__(
        self,
        settings: Settings,
        provider: GatewayProvider,
        *,
        consent: Consent,
        ca_file: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.consent = consent
        self.store = provider.store
        self.redirect_uri = f"{settings.issuer}/callback"
        # Tests inject an httpx2.MockTransport here; production uses the network.
        self.transport = transport
        self._verify = client_tls(ca_file)

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=self.transport,
            verify=self._verify,
            timeout=10.0,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    # -- the provider-specific part ------------------------------------------------------------
    async def authorization_url(self, state: str, code_challenge: str, nonce: str) -> str:
        raise NotImplementedError

    async def identify(self, code: str, verifier: str, nonce: str, query: dict[str, str]) -> Identity:
        """Exchange the code, identify the user, apply the allow-lists (UpstreamError if not)."""
        raise NotImplementedError

    @property
    def user_id_prefix(self) -> str:
        raise NotImplementedError

    def error_page(self, status: int, message: str, title: str = "Sign-in failed") -> HTMLResponse:
        return pages.message(self.settings.gateway_name, status, title, message)

    # -- /login/<provider> -------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self.store.get_authreq(request_id)
        if pending is None:
            return self.error_page(400, "This sign-in request has expired or was already used.", "Expired")
        # One cookie per browser, reused by parallel sign-ins in other tabs.
        browser = request.cookies.get(BROWSER_COOKIE, "")
        if not _COOKIE_VALUE.match(browser):
            browser = secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        nonce = secrets.token_urlsafe(32)
        try:
            location = await self.authorization_url(state, s256(verifier), nonce)
        except UpstreamError as error:
            log.warning(error.reason, extra={"provider": self.name, **error.details})
            return self.error_page(error.status, error.message)
        except httpx2.HTTPError as error:
            return self._unreachable(error)
        await self.store.put_upstream_state(
            state,
            {
                "provider": self.name,
                "request": request_id,
                "browser": browser,
                "verifier": verifier,
                "nonce": nonce,
                "created": time.time(),
            },
            self.settings.login_ttl,
        )
        response = RedirectResponse(location, status_code=302, headers=REDIRECT_HEADERS)
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=self.settings.login_ttl,
            path="/callback",
            secure=self.settings.cookie_secure,
            httponly=True,
            # Lax: sent on the top-level GET redirect back from the provider.
            samesite="lax",
        )
        return response

    # -- /callback, once Upstreams.callback found this provider's state ---------------------
    async def finish(self, query: dict[str, str], record: dict[str, Any]) -> Response:
        if "error" in query:
            error = _short(query["error"])
            log.info("upstream refused the sign-in", extra={"provider": self.name, "error": error})
            if error == "access_denied":
                return self.error_page(403, f"The sign-in at {self.label} was cancelled or refused.")
            return self.error_page(400, f"{self.label} reported an error: {error}.")
        code = query.get("code", "")
        if not code:
            return self.error_page(400, f"The answer from {self.label} has no code.")
        try:
            identity = await self.identify(code, record["verifier"], record["nonce"], query)
        except UpstreamError as error:
            log.warning(error.reason, extra={"provider": self.name, **error.details})
            return self.error_page(error.status, error.message)
        except httpx2.HTTPError as error:
            return self._unreachable(error)
        pending = await self.store.take_authreq(record["request"])
        if pending is None:
            return self.error_page(400, "This sign-in request has expired or was already used.", "Expired")
        user_id = self.user_id_prefix + identity.subject
        log.info(
            "login",
            extra={
                "provider": self.name,
                "user": user_id,
                "user_name": identity.name,
                "client_id": pending["client_id"],
            },
        )
        # Back to the client with a code, or to the consent page first (the confused deputy:
        # the provider may have let the browser through without asking anybody anything).
        return await self.consent.after_sign_in(
            pending, user_id, identity.name, identity.groups, via=self.name
        )

    def _unreachable(self, error: httpx2.HTTPError) -> HTMLResponse:
        host = None
        with contextlib.suppress(RuntimeError):  # an error without a request
            host = error.request.url.host
        log.warning(
            "upstream unreachable", extra={"provider": self.name, "host": host, "error": type(error).__name__}
        )
        return self.error_page(502, f"{self.label} cannot be reached. Try again later.")


class Upstreams:
    """The configured upstream providers behind /login/<provider> and the one /callback."""

    def __init__(self, settings: Settings, logins: dict[str, UpstreamLogin]) -> None:
        self.settings = settings
        self.logins = logins
        self.store = next(iter(logins.values())).store if logins else None

    def _error(self, status: int, text: str, title: str = "Sign-in failed") -> HTMLResponse:
        return pages.message(self.settings.gateway_name, status, title, text)

    async def start(self, request: Request) -> Response:
        login = self.logins.get(request.path_params.get("provider", ""))
        if login is None:
            return self._error(404, "There is no such way to sign in here.", "Not found")
        return await login.start(request)

    async def callback(self, request: Request) -> Response:
        query = dict(request.query_params)
        state = query.get("state", "")
        if not state or self.store is None:
            log.info("callback without state")
            return self._error(400, "The answer from the identity provider has no state parameter.")
        record = await self.store.get_upstream_state(state)
        login = self.logins.get(record.get("provider", "")) if record else None
        if record is None or login is None:
            log.info("callback with an unknown or used state")
            return self._error(400, "This sign-in has expired or was already completed.", "Expired")
        browser = request.cookies.get(BROWSER_COOKIE, "")
        if not browser or not hmac.compare_digest(browser, record["browser"]):
            # Someone else's callback URL (login CSRF), or cookies are blocked.
            log.warning("callback from another browser", extra={"provider": login.name})
            return self._error(403, "This sign-in was started in another browser.")
        if await self.store.take_upstream_state(state) is None:
            return self._error(400, "This sign-in has expired or was already completed.", "Expired")
        return await login.finish(query, record)


# -- GitHub -------------------------------------------------------------------------------------
class GitHubLogin(UpstreamLogin):
    """A GitHub OAuth app. The user id is GitHub's numeric user id (stable: a login can be
    renamed and then taken by somebody else); the name is the login. A user may sign in when
    their login is in allowed_users (case-insensitive) or they are an active member of one of
    allowed_orgs, asked with their own token (`read:org`, requested only then); the allowed
    organisations they are active members of become their groups, with the provider's user
    id prefix (`github:acme`), for the resources' allowed_groups."""

    name = "github"
    label = "GitHub"

    def __init__(self, settings: Settings, provider: GatewayProvider, **kwargs: Any) -> None:
        assert settings.github is not None
        self.github: GitHubSettings = settings.github
        super().__init__(settings, provider, ca_file=self.github.ca_file, **kwargs)

    @property
    def user_id_prefix(self) -> str:
        return self.github.user_id_prefix

    async def authorization_url(self, state: str, code_challenge: str, nonce: str) -> str:
        params = {
            "client_id": self.github.client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "allow_signup": "false",
        }
        if self.github.allowed_orgs:
            # Organisation memberships, private ones included. The public profile (login,
            # id) alone needs no scope.
            params["scope"] = "read:org"
        return f"{self.github.url}/login/oauth/authorize?{urlencode(params)}"

    async def identify(self, code: str, verifier: str, nonce: str, query: dict[str, str]) -> Identity:
        async with self.http() as http:
            response = await http.post(
                f"{self.github.url}/login/oauth/access_token",
                data={
                    "client_id": self.github.client_id,
                    "client_secret": self.github.client_secret,
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier,
                },
                headers={"Accept": "application/json"},
            )
            if response.status_code >= 500:
                raise UpstreamError(
                    502,
                    "GitHub is not available. Try again later.",
                    "token exchange failed",
                    status=response.status_code,
                )
            body = _json(response, "token exchange")
            # GitHub answers errors with 200 and an `error` member.
            token = body.get("access_token")
            if response.status_code != 200 or not isinstance(token, str) or not token:
                raise UpstreamError(
                    400,
                    "GitHub did not confirm the sign-in (the code may have expired).",
                    "token exchange failed",
                    status=response.status_code,
                    error=_short(body.get("error")),
                )
            api = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            }
            response = await http.get(f"{self.github.api_url}/user", headers=api)
            if response.status_code != 200:
                raise UpstreamError(
                    502, "GitHub did not tell who you are.", "GET /user failed", status=response.status_code
                )
            user = _json(response, "GET /user")
            login, github_id = user.get("login"), user.get("id")
            if not isinstance(login, str) or not login:
                raise UpstreamError(502, "GitHub did not tell who you are.", "GET /user: no login")
            if not isinstance(github_id, int) or isinstance(github_id, bool):
                raise UpstreamError(502, "GitHub did not tell who you are.", "GET /user: no numeric id")
            orgs = [
                org for org in self.github.allowed_orgs if await self._active_member(http, api, org, login)
            ]
        if login.lower() not in self.github.allowed_users and not orgs:
            raise UpstreamError(
                403,
                f"The GitHub account {login} may not use this gateway.",
                "user not allowed",
                user=login,
                github_id=github_id,
            )
        groups = tuple(self.github.user_id_prefix + org for org in orgs)
        return Identity(subject=str(github_id), name=login, groups=groups)

    async def _active_member(
        self, http: httpx2.AsyncClient, api: dict[str, str], org: str, login: str
    ) -> bool:
        """Whether the signed-in user is an active member of `org` (an invitation is not)."""
        response = await http.get(f"{self.github.api_url}/user/memberships/orgs/{quote(org)}", headers=api)
        if response.status_code == 200:
            return _json(response, "GET /user/memberships").get("state") == "active"
        if response.status_code in (403, 404):
            # 404: no membership (or no such organisation); 403: the organisation restricts
            # OAuth apps (an owner must approve the gateway's app), or the scope is missing.
            log.info(
                "org membership not visible",
                extra={"provider": self.name, "user": login, "org": org, "status": response.status_code},
            )
            return False
        raise UpstreamError(
            502,
            "GitHub is not available. Try again later.",
            "GET /user/memberships failed",
            status=response.status_code,
        )


# -- OpenID Connect -----------------------------------------------------------------------------
def _check_endpoint(url: Any, key: str) -> str:
    parsed = urlparse(url) if isinstance(url, str) else None
    loopback = parsed is not None and parsed.hostname in ("127.0.0.1", "::1", "localhost")
    if parsed is None or not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
        raise UpstreamError(
            502, "The identity provider is misconfigured.", "discovery: bad endpoint", key=key
        )
    return url


class OidcLogin(UpstreamLogin):
    """Any OpenID provider: authorization code flow with PKCE S256, state and nonce.

    The user id is the `sub` claim; the name is `name`, `preferred_username`, `email` or
    `sub`; the groups come from the configured claim (a list of strings, or one string)."""

    name = "oidc"

    def __init__(self, settings: Settings, provider: GatewayProvider, **kwargs: Any) -> None:
        assert settings.oidc is not None
        self.oidc: OidcSettings = settings.oidc
        super().__init__(settings, provider, ca_file=self.oidc.ca_file, **kwargs)
        self.label = self.oidc.display_name
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @property
    def user_id_prefix(self) -> str:
        return self.oidc.user_id_prefix

    async def metadata(self, http: httpx2.AsyncClient) -> dict[str, Any]:
        """The discovery document, fetched once (at the first sign-in) and kept."""
        if self._metadata is not None:
            return self._metadata
        response = await http.get(self.oidc.discovery_url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise UpstreamError(
                502,
                "The identity provider is not available.",
                "discovery failed",
                status=response.status_code,
            )
        metadata = _json(response, "discovery")
        issuer = metadata.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.oidc.issuer:
            # OpenID Connect Discovery 4.3: the issuer must be the URL the document came from
            # (some, like Auth0, end it with a slash). Tokens are checked against it exactly.
            raise UpstreamError(
                502,
                "The identity provider is misconfigured.",
                "discovery: issuer does not match the discovery URL",
                issuer=_short(metadata.get("issuer")),
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            _check_endpoint(metadata.get(key), key)
        if metadata.get("userinfo_endpoint") is not None:
            _check_endpoint(metadata["userinfo_endpoint"], "userinfo_endpoint")
        self._metadata = metadata
        return metadata

    async def keys(self, http: httpx2.AsyncClient, kid: str | None) -> KeySet:
        """The provider's JWKS, cached; fetched again for a key id it does not hold (rotation)."""
        # The ID token comes straight from the provider's token endpoint (TLS), so a key id
        # we do not hold means the provider rotated its keys: fetch them again.
        if self._keys is not None and (
            (kid is None and len(self._keys.keys) == 1) or any(key.kid == kid for key in self._keys.keys)
        ):
            return self._keys
        metadata = await self.metadata(http)
        response = await http.get(metadata["jwks_uri"], headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise UpstreamError(
                502,
                "The identity provider is not available.",
                "JWKS fetch failed",
                status=response.status_code,
            )
        body = _json(response, "JWKS")
        usable = [
            key
            for key in body.get("keys", [])
            if isinstance(key, dict)
            and key.get("use", "sig") == "sig"
            and key.get("kty") in ("RSA", "EC", "OKP")
        ]
        try:
            self._keys = KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError) as error:
            raise UpstreamError(
                502, "The identity provider is misconfigured.", "JWKS unusable", error=type(error).__name__
            ) from None
        return self._keys

    async def authorization_url(self, state: str, code_challenge: str, nonce: str) -> str:
        async with self.http() as http:
            metadata = await self.metadata(http)
        params = {
            "response_type": "code",
            "client_id": self.oidc.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.oidc.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        endpoint = metadata["authorization_endpoint"]
        return f"{endpoint}{'&' if urlparse(endpoint).query else '?'}{urlencode(params)}"

    async def identify(self, code: str, verifier: str, nonce: str, query: dict[str, str]) -> Identity:
        async with self.http() as http:
            metadata = await self.metadata(http)
            if "iss" in query and query["iss"] != metadata["issuer"]:
                # RFC 9207: the answer came from another provider (mix-up attack).
                raise UpstreamError(400, "The answer came from the wrong identity provider.", "iss mismatch")
            data = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
            headers = {"Accept": "application/json"}
            methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" in methods:
                # RFC 6749 2.3.1: both parts form-encoded before Basic.
                credentials = (
                    f"{quote(self.oidc.client_id, safe='')}:{quote(self.oidc.client_secret, safe='')}"
                )
                headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
            else:
                data |= {"client_id": self.oidc.client_id, "client_secret": self.oidc.client_secret}
            response = await http.post(metadata["token_endpoint"], data=data, headers=headers)
            if response.status_code >= 500:
                raise UpstreamError(
                    502,
                    "The identity provider is not available.",
                    "token exchange failed",
                    status=response.status_code,
                )
            body = _json(response, "token exchange")
            if response.status_code != 200 or not isinstance(body.get("id_token"), str):
                raise UpstreamError(
                    400,
                    "The identity provider did not confirm the sign-in.",
                    "token exchange failed",
                    status=response.status_code,
                    error=_short(body.get("error")),
                )
            claims = await self.validate_id_token(http, body["id_token"], nonce)
            if (
                self._needs_userinfo(claims)
                and metadata.get("userinfo_endpoint")
                and body.get("access_token")
            ):
                claims = await self._with_userinfo(
                    http, metadata["userinfo_endpoint"], body["access_token"], claims
                )
        return self.check(claims)

    async def validate_id_token(self, http: httpx2.AsyncClient, id_token: str, nonce: str) -> dict[str, Any]:
        metadata = await self.metadata(http)
        invalid = UpstreamError(
            400, "The identity provider's answer could not be verified.", "ID token invalid"
        )
        try:
            header = jws.extract_compact(id_token.encode()).protected
        except (JoseError, ValueError) as error:
            invalid.details["error"] = type(error).__name__
            raise invalid from None
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in ID_TOKEN_ALGORITHMS if alg in advertised] or ["RS256"]
        keys = await self.keys(http, header.get("kid"))
        try:
            token = jwt.decode(id_token, keys, algorithms=algorithms)
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_SKEW,
                iss={"essential": True, "value": metadata["issuer"]},
                sub={"essential": True},
                aud={"essential": True, "value": self.oidc.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError) as error:
            invalid.details["error"] = type(error).__name__
            invalid.details["claim"] = getattr(error, "claim", None)
            raise invalid from None
        claims = token.claims
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.oidc.client_id:
            # OpenID Connect Core 3.1.3.7: with several audiences, azp must be us.
            invalid.details["claim"] = "azp"
            raise invalid
        return claims

    def _needs_userinfo(self, claims: dict[str, Any]) -> bool:
        return (
            (bool(self.oidc.allowed_groups) and _claim(claims, self.oidc.groups_claim) is None)
            or (bool(self.oidc.allowed_emails) and "email" not in claims)
            or not any(key in claims for key in ("name", "preferred_username", "email"))
        )

    async def _with_userinfo(
        self, http: httpx2.AsyncClient, endpoint: str, access_token: str, claims: dict[str, Any]
    ) -> dict[str, Any]:
        """Claims the ID token did not carry (many providers put scope claims only here)."""
        response = await http.get(
            endpoint, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            # A signed (JWT) userinfo answer is not supported: go on with the ID token only.
            log.info("userinfo unavailable", extra={"provider": self.name, "status": response.status_code})
            return claims
        userinfo = _json(response, "userinfo")
        if userinfo.get("sub") != claims["sub"]:
            # OpenID Connect Core 5.3.2: must be the user of the ID token.
            raise UpstreamError(
                400, "The identity provider's answer could not be verified.", "userinfo sub mismatch"
            )
        return userinfo | claims

    def check(self, claims: dict[str, Any]) -> Identity:
        subject = claims["sub"]
        email = claims.get("email")
        email_ok = isinstance(email, str) and claims.get("email_verified") is True
        groups = _groups(_claim(claims, self.oidc.groups_claim))
        allowed = (
            subject in self.oidc.allowed_subjects
            or (email_ok and email.lower() in self.oidc.allowed_emails)
            or any(group in self.oidc.allowed_groups for group in groups)
        )
        if not allowed:
            raise UpstreamError(
                403,
                f"The account {email if isinstance(email, str) else subject} may not use this gateway.",
                "user not allowed",
                user=subject,
                email_verified=claims.get("email_verified"),
            )
        name = next(
            (
                claims[key]
                for key in ("name", "preferred_username", "email")
                if isinstance(claims.get(key), str)
            ),
            subject,
        )
        return Identity(subject=subject, name=name, groups=groups)


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by its name, or by a dotted path into nested objects (realm_access.roles)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def create_upstreams(
    settings: Settings, provider: GatewayProvider, consent: Consent, **kwargs: Any
) -> Upstreams:
    """The upstream logins of the configured identity providers, in their configured order."""
    kinds: dict[str, type[UpstreamLogin]] = {"github": GitHubLogin, "oidc": OidcLogin}
    logins = {
        name: kinds[name](settings, provider, consent=consent, **kwargs)
        for name in settings.identity_providers
        if name in kinds
    }
    return Upstreams(settings, logins)
