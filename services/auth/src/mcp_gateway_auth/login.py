"""The `local` identity provider: users from the inventory, a login form with CSRF protection."""

from __future__ import annotations

import hmac
import html
import logging
import secrets

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .config import LocalUser, Settings
from .provider import GatewayProvider

log = logging.getLogger("mcp_gateway_auth.login")

BROWSER_COOKIE = "mcpgw_login"
_argon2 = PasswordHasher()
# Verified against when the user does not exist, so that timing does not tell.
_DUMMY_HASH = _argon2.hash(secrets.token_urlsafe(16))


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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - MCP gateway</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 24rem; margin: 4rem auto">
<h1>Sign in</h1>
<p><strong>{client}</strong> asks to use <strong>{resource}</strong> for you.</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="request" value="{request}">
<input type="hidden" name="csrf" value="{csrf}">
<p><label>User name<br><input name="username" autocomplete="username" required></label></p>
<p><label>Password<br>
<input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form></body></html>"""


class LocalLogin:
    def __init__(self, settings: Settings, provider: GatewayProvider) -> None:
        self.settings = settings
        self.provider = provider
        self.store = provider.store

    def _page(self, request_id: str, pending: dict, error: str = "", status: int = 200) -> HTMLResponse:
        body = PAGE.format(
            client=html.escape(pending.get("client_name") or pending["client_id"]),
            resource=html.escape(pending["resource"]),
            request=html.escape(request_id),
            csrf=html.escape(pending["csrf"]),
            error=f'<p role="alert" style="color: #b00">{html.escape(error)}</p>' if error else "",
        )
        headers = {
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        }
        return HTMLResponse(body, status_code=status, headers=headers)

    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self.store.get_authreq(request_id)
        if pending is None:
            return HTMLResponse(
                "This sign-in link has expired. Start again from your MCP client.", status_code=400
            )
        # Bind the pending request to this browser: the form only works with this cookie.
        browser = secrets.token_urlsafe(24)
        pending["browser"] = browser
        await self.store.put_authreq(request_id, pending, self.settings.login_ttl)
        response = self._page(request_id, pending)
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

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        request_id = str(form.get("request", ""))
        pending = await self.store.get_authreq(request_id)
        if pending is None:
            return HTMLResponse(
                "This sign-in link has expired. Start again from your MCP client.", status_code=400
            )
        browser = request.cookies.get(BROWSER_COOKIE, "")
        csrf = str(form.get("csrf", ""))
        if (
            not pending.get("browser")
            or not hmac.compare_digest(browser, pending["browser"])
            or not hmac.compare_digest(csrf, pending["csrf"])
        ):
            return HTMLResponse("The form could not be verified (CSRF). Start again.", status_code=403)
        username = str(form.get("username", ""))[:256]
        password = str(form.get("password", ""))[:1024]
        address = request.client.host if request.client else "-"
        if await self.store.login_failures(username, address) >= self.settings.login_max_failures:
            log.warning("login rate limited", extra={"username": username, "address": address})
            return self._page(request_id, pending, "Too many failed attempts. Try again later.", status=429)
        user: LocalUser | None = self.settings.users.get(username)
        if user is None:
            verify_password(password, _DUMMY_HASH)
            ok = False
        else:
            ok = verify_password(password, user.password_hash)
        if not ok:
            await self.store.record_login_failure(username, address, self.settings.login_failure_window)
            log.info("login failed", extra={"username": username, "address": address})
            return self._page(request_id, pending, "Wrong user name or password.", status=401)
        taken = await self.store.take_authreq(request_id)
        if taken is None:
            return HTMLResponse("This sign-in link was already used.", status_code=400)
        await self.store.clear_login_failures(username)
        log.info("login", extra={"user": user.user_id, "client_id": pending["client_id"]})
        location = await self.provider.complete_authorization(
            taken, user.user_id, user.display_name, groups=user.groups
        )
        response = RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
        response.delete_cookie(BROWSER_COOKIE, path="/login")
        return response
