"""The sign-in page: the `local` identity (users from the inventory, a form with CSRF
protection) and a button per upstream identity provider (upstream.py).

The page tells the person who asks (the client's name, and whether anyone vouched for
it), for what (the MCP server), and where the authorization code will go (the host of the
redirect URI). Its CSP lets the form lead to our origin and to that redirect target only.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import argon2
import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from . import pages
from .config import LocalUser, Settings
from .consent import Consent
from .pages import e
from .provider import GatewayProvider
from .store import token_hash
from .upstream import Upstreams

log = logging.getLogger("mcp_gateway_auth.login")

BROWSER_COOKIE = "mcpgw_login"
_argon2 = PasswordHasher()
# The parameters of an authorization request that "Start over" sends to /authorize again.
RESTART_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
)
RESTART_MAX = 4096


def verify_password(password: str, password_hash: str) -> bool:
    """argon2 ($argon2id$...) or bcrypt ($2b$...) hashes."""
    try:
        if password_hash.startswith("$argon2"):
            return _argon2.verify(password_hash, password)
        if password_hash.startswith(("$2a$", "$2b$", "$2y$")):
            return bcrypt.checkpw(password.encode(), password_hash.encode())
    except (VerificationError, InvalidHashError, ValueError):
        return False
    return False


def _hash_kind(password_hash: str) -> tuple[Any, ...] | None:
    """What verifying a hash costs: its algorithm and parameters."""
    try:
        if password_hash.startswith("$argon2"):
            return ("argon2", *dataclasses.astuple(argon2.extract_parameters(password_hash)))
        if password_hash.startswith(("$2a$", "$2b$", "$2y$")):
            return ("bcrypt", int(password_hash.split("$")[2]))
    except (InvalidHashError, ValueError, IndexError):
        return None
    return None


def stand_in_hash(users: Iterable[LocalUser]) -> str:
    """A hash of a random password made like the users' own: the most common algorithm and
    parameters among them (the defaults of `hash-password` when there is none). A user name
    nobody has is verified against it, so that it costs what a real user's check costs and
    the answer's timing does not tell which names exist."""
    kinds = Counter(kind for user in users if (kind := _hash_kind(user.password_hash)))
    password = secrets.token_urlsafe(16)
    if not kinds:
        return _argon2.hash(password)
    kind = kinds.most_common(1)[0][0]
    if kind[0] == "bcrypt":
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=kind[1])).decode()
    return PasswordHasher.from_parameters(argon2.Parameters(*kind[1:])).hash(password)


def restart_url(restart: str) -> str | None:
    """/authorize with the original request's parameters, from the form's `restart` field.
    Only known parameters, to our own endpoint, which checks them all again."""
    if not restart or len(restart) > RESTART_MAX:
        return None
    params = [(k, v) for k, v in parse_qsl(restart, keep_blank_values=False) if k in RESTART_PARAMS]
    if not any(k == "client_id" for k, _ in params):
        return None
    return "/authorize?" + urlencode(params)


def client_address(request: Request) -> str:
    """The address failed sign-ins count against. Behind a trusted proxy it is the client's
    own (app.py lets X-Forwarded-For name it only when the peer is one); an IPv6 address
    counts by its /64, which one subscriber holds whole."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "other:" + token_hash(host)[:16]
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class SignIn:
    """GET /login shows the page, POST /login checks a local user's password."""

    def __init__(
        self, settings: Settings, provider: GatewayProvider, upstreams: Upstreams, consent: Consent
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.consent = consent
        self.store = provider.store
        self.upstreams = upstreams
        self.local = "local" in settings.identity_providers
        self.stand_in_hash = stand_in_hash(settings.users.values())

    # -- pages ---------------------------------------------------------------------------------
    def _message(
        self, status: int, title: str, text: str, action: tuple[str, str] | None = None
    ) -> HTMLResponse:
        return pages.message(self.settings.gateway_name, status, title, text, action=action)

    def _expired(self, restart: str = "") -> HTMLResponse:
        url = restart_url(restart)
        minutes = _minutes(self.settings.login_ttl)
        text = f"This sign-in request has expired: a request is open for {minutes}."
        if url:
            text += " Start over to send a new one to the same application."
        return self._message(400, "Sign-in expired", text, ("Start over", url) if url else None)

    def _page(
        self,
        request_id: str,
        pending: dict[str, Any],
        error: str = "",
        status: int = 200,
        username: str = "",
        **headers: str,
    ) -> HTMLResponse:
        """The page; after a failed attempt the user name stays and the password has the focus."""
        target = pages.redirect_target(pending["redirect_uri"])
        who, kind = pages.client_description(pending)
        body = [
            f"<p><strong>{who}</strong> asks to use an MCP server for you.</p>",
            "<dl>",
            f'<dt>Application</dt><dd>{who} <span class="note">({e(kind)})</span></dd>',
            f"<dt>MCP server</dt><dd>{e(pending['resource'])}</dd>",
            f"<dt>After you sign in, its access code goes to</dt><dd>{e(target.label)}</dd>",
            "</dl>",
        ]
        if error:
            body.append(f'<div class="alert" role="alert" id="error"><p>{error}</p></div>')
        described = ' aria-describedby="error" aria-invalid="true"' if error else ""
        focus_user, focus_password = ("", " autofocus") if username else (" autofocus", "")
        if self.local:
            body += [
                '<form method="post" action="/login">',
                f'<input type="hidden" name="request" value="{e(request_id)}">',
                f'<input type="hidden" name="csrf" value="{e(pending["csrf"])}">',
                f'<input type="hidden" name="restart" value="{e(urlencode(pending.get("restart", {})))}">',
                '<label for="username">User name</label>',
                f'<input id="username" name="username" autocomplete="username" autocapitalize="none" '
                f'spellcheck="false" required value="{e(username)}"{focus_user}{described}>',
                '<label for="password">Password</label>',
                f'<input id="password" name="password" type="password" autocomplete="current-password" '
                f"required{focus_password}{described}>",
                '<button type="submit">Sign in</button>',
                "</form>",
            ]
        for index, login in enumerate(self.upstreams.logins.values()):
            if index == 0 and self.local:
                body.append('<p class="or">or</p>')
            href = f"/login/{login.name}?{urlencode({'request': request_id})}"
            style = "button secondary" if self.local or index else "button"
            body.append(f'<a class="{style}" href="{e(href)}">Sign in with {e(login.label)}</a>')
        body.append(
            '<p class="note">Not what you expected? Close this window: '
            "nothing is shared until you sign in.</p>"
        )
        return pages.page(
            self.settings.gateway_name,
            "Sign in",
            "\n".join(body),
            status=status,
            form_action=[target.source] if self.local else (),
            headers=headers,
        )

    # -- GET /login ------------------------------------------------------------------------------
    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self.store.get_authreq(request_id)
        if pending is None:
            return self._expired()
        if not self.local and len(self.upstreams.logins) == 1:
            # The only way in is upstream: no page of ours in between.
            return await next(iter(self.upstreams.logins.values())).start(request)
        response = self._page(request_id, pending)
        if self.local:
            # Bind the pending request to this browser: the form only works with this cookie.
            browser = secrets.token_urlsafe(24)
            pending["browser"] = browser
            await self.store.put_authreq(request_id, pending, self.settings.login_ttl)
            response.set_cookie(
                BROWSER_COOKIE,
                browser,
                max_age=self.settings.login_ttl,
                path="/login",
                secure=self.settings.cookie_secure,
                httponly=True,
                samesite="lax",
            )
        return response

    # -- POST /login ---------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        if not self.local:
            return self._message(405, "Not here", "Signing in with a password is not offered here.")
        form = await request.form()
        request_id = str(form.get("request", ""))
        pending = await self.store.get_authreq(request_id)
        if pending is None:
            return self._expired(str(form.get("restart", "")))
        browser = request.cookies.get(BROWSER_COOKIE, "")
        csrf = str(form.get("csrf", ""))
        # Bytes: compare_digest refuses str with non-ASCII characters (which a forged form may hold).
        if (
            not pending.get("browser")
            or not hmac.compare_digest(browser.encode(), pending["browser"].encode())
            or not hmac.compare_digest(csrf.encode(), pending["csrf"].encode())
        ):
            reload = "/login?" + urlencode({"request": request_id})
            return self._message(
                403,
                "Form not accepted",
                "The form could not be verified: it was sent from another page, or this browser "
                "does not keep cookies for this site. Open the sign-in page again.",
                ("Open the sign-in page again", reload),
            )
        username = str(form.get("username", ""))[:256]
        password = str(form.get("password", ""))[:1024]
        address = client_address(request)
        # Failed sign-ins count three ways, each within login_failure_window:
        # - per (user name, address): the person who mistypes their password, or a guesser
        #   at one address, pauses that user at that address only (login_max_failures);
        # - per address: whoever sprays many user names pauses their own address, never
        #   anyone else's (login_max_failures_per_address, larger: several people may share
        #   an address behind a NAT);
        # - per user name, from every address: a ceiling on guessing one account from many
        #   addresses (login_max_failures_per_user, far larger). Pausing a user everywhere
        #   needs that many failures, i.e. at least ceiling / pair-limit addresses in one window.
        limits = (
            self.settings.login_max_failures,
            self.settings.login_max_failures_per_address,
            self.settings.login_max_failures_per_user,
        )
        locked_for = await self.store.login_lockout(username, address, limits)
        if locked_for > 0:
            log.warning("login rate limited", extra={"username": username, "address": address})
            until = time.strftime("%H:%M UTC", time.gmtime(time.time() + locked_for))
            return self._page(
                request_id,
                pending,
                "<strong>Too many failed attempts.</strong> Signing in is paused until "
                f"{e(until)} (in about {_minutes(locked_for)}).",
                status=429,
                username=username,
                **{"Retry-After": str(locked_for)},
            )
        user: LocalUser | None = self.settings.users.get(username)
        if user is None:
            verify_password(password, self.stand_in_hash)
            ok = False
        else:
            ok = verify_password(password, user.password_hash)
        if not ok:
            left = await self.store.record_login_failure(
                username, address, self.settings.login_failure_window, limits
            )
            log.info("login failed", extra={"username": username, "address": address})
            error = "<strong>Wrong user name or password.</strong> Check both and try again."
            if 0 < left <= 2:
                pause = _minutes(self.settings.login_failure_window)
                attempts = "attempt" if left == 1 else "attempts"
                error += f" After {left} more failed {attempts}, signing in is paused for {pause}."
            return self._page(request_id, pending, error, status=401, username=username)
        taken = await self.store.take_authreq(request_id)
        if taken is None:
            return self._expired(str(form.get("restart", "")))
        await self.store.clear_login_failures(username, address)
        log.info("login", extra={"user": user.user_id, "client_id": pending["client_id"]})
        # Back to the client with a code, or to the consent page first.
        response = await self.consent.after_sign_in(
            taken, user.user_id, user.display_name, user.groups, via="local"
        )
        response.delete_cookie(BROWSER_COOKIE, path="/login")
        return response
