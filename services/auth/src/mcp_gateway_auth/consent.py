"""The consent page: after a successful sign-in, the user allows (or denies) a client they
have not allowed before to use an MCP server as them.

Why: with `github` and `oidc` the gateway signs people in through a third party with one
static client id. Someone who was signed in there before goes through without seeing
anything, so a client anybody registered here would get a code for them on the strength of
their earlier approval of the gateway at the third party: the confused deputy of the MCP
security best practices, which require a consent page of the gateway's own. `consent`
chooses when it asks: `always` (the default: a self-registered client's name is only its
own claim, for local users too), `upstream` (github and oidc sign-ins only) or `never`.

An "Allow" is remembered per user, client and MCP server (for `consent_ttl`), for the
redirect URI and scopes it was given for: a client that later sends its codes elsewhere
(RFC 7592 update) is asked about again. The operator lists and withdraws approvals with
`mcp-gateway-auth consents`.

The page is the sign-in page's kind: no script, the answer bound to the browser that signed
in (a cookie) and to the page (a CSRF token), single use; its CSP's form-action allows the
client's redirect origin, where "Allow" (and a trusted "Deny") leads. "Deny" sends
`access_denied` back only where an error may go on its own (endpoints.trusted_redirect);
otherwise our own page says what happened.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import pages
from .config import Settings
from .endpoints import trusted_redirect
from .pages import e
from .provider import GatewayProvider

log = logging.getLogger("mcp_gateway_auth.consent")

BROWSER_COOKIE = "mcpgw_consent"
REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _days(seconds: int) -> str:
    if seconds < 86400:
        hours = max(1, round(seconds / 3600))
        return "1 hour" if hours == 1 else f"{hours} hours"
    days = round(seconds / 86400)
    return "1 day" if days == 1 else f"{days} days"


class Consent:
    def __init__(self, settings: Settings, provider: GatewayProvider) -> None:
        self.settings = settings
        self.provider = provider
        self.store = provider.store

    def _asks(self, via: str) -> bool:
        """`via`: the identity provider of the sign-in (local, github, oidc)."""
        if self.settings.consent == "always":
            return True
        return self.settings.consent == "upstream" and via != "local"

    async def _approved(self, pending: dict[str, Any], subject: str) -> bool:
        approval = await self.store.get_approval(subject, pending["client_id"], pending["resource"])
        return (
            approval is not None
            and approval.get("redirect_uri") == pending["redirect_uri"]
            and set(pending["scopes"]) <= set(approval.get("scopes", []))
        )

    # -- after a successful sign-in (login.py, upstream.py) ---------------------------------------
    async def after_sign_in(
        self, pending: dict[str, Any], user_id: str, name: str, groups: Sequence[str], via: str
    ) -> Response:
        """Back to the client with a code, or first to the consent page."""
        auth_time = int(time.time())
        if not self._asks(via) or await self._approved(pending, user_id):
            location = await self.provider.complete_authorization(pending, user_id, name, groups, auth_time)
            return RedirectResponse(location, status_code=302, headers=REDIRECT_HEADERS)
        request_id = secrets.token_urlsafe(24)
        browser = secrets.token_urlsafe(24)
        await self.store.put_consent_request(
            request_id,
            {
                "request": pending,
                "subject": user_id,
                "name": name,
                "groups": list(groups),
                "auth_time": auth_time,
                "via": via,
                "csrf": secrets.token_urlsafe(32),
                "browser": browser,
            },
            self.settings.login_ttl,
        )
        location = f"{self.settings.issuer}/consent?{urlencode({'request': request_id})}"
        # 303: after the sign-in form's POST the browser GETs the page.
        response = RedirectResponse(location, status_code=303, headers=REDIRECT_HEADERS)
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=self.settings.login_ttl,
            path="/consent",
            secure=self.settings.cookie_secure,
            httponly=True,
            # Lax: sent on the top-level navigation from an upstream provider's redirect too.
            samesite="lax",
        )
        return response

    # -- pages ------------------------------------------------------------------------------------
    def _message(self, status: int, title: str, text: str) -> HTMLResponse:
        return pages.message(self.settings.gateway_name, status, title, text)

    def _expired(self) -> HTMLResponse:
        return self._message(
            400,
            "Request expired",
            "This request has expired or was already answered. Start again from your application.",
        )

    def _other_browser(self) -> HTMLResponse:
        return self._message(
            403,
            "Answer not accepted",
            "This answer could not be verified: it was sent from another page or browser, or this "
            "browser does not keep cookies for this site.",
        )

    def _bound(self, request: Request, record: dict[str, Any], csrf: str | None = None) -> bool:
        """The answer comes from the browser that signed in (and, for a POST, from our page)."""
        browser = request.cookies.get(BROWSER_COOKIE, "")
        # Bytes: compare_digest refuses str with non-ASCII characters (a forged form may hold them).
        if not hmac.compare_digest(browser.encode(), record["browser"].encode()):
            return False
        return csrf is None or hmac.compare_digest(csrf.encode(), record["csrf"].encode())

    # -- GET /consent -----------------------------------------------------------------------------
    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        record = await self.store.get_consent_request(request_id)
        if record is None:
            return self._expired()
        if not self._bound(request, record):
            return self._other_browser()
        pending = record["request"]
        target = pages.redirect_target(pending["redirect_uri"])
        who, kind = pages.client_description(pending)
        body = [
            f"<p><strong>{who}</strong> asks to use an MCP server as you.</p>",
            f"<p>You are signed in as <strong>{e(record['name'])}</strong> ({e(record['subject'])}).</p>",
            "<dl>",
            f'<dt>Application</dt><dd>{who} <span class="note">({e(kind)})</span></dd>',
            f"<dt>MCP server</dt><dd>{e(pending['resource'])}</dd>",
            f"<dt>If you allow it, its access code goes to</dt><dd>{e(target.label)}</dd>",
            "</dl>",
            '<form method="post" action="/consent">',
            f'<input type="hidden" name="request" value="{e(request_id)}">',
            f'<input type="hidden" name="csrf" value="{e(record["csrf"])}">',
            '<button type="submit" name="decision" value="allow">Allow</button>',
            '<button type="submit" name="decision" value="deny" class="secondary">Deny</button>',
            "</form>",
            f'<p class="note">Allow lets this application use the MCP server as you; your answer '
            f"is remembered for {_days(self.settings.consent_ttl)} for this application and MCP "
            "server. Not what you expected? Deny, or close this window.</p>",
        ]
        return pages.page(
            self.settings.gateway_name, "Allow access?", "\n".join(body), form_action=[target.source]
        )

    # -- POST /consent ----------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        form = await request.form()
        request_id = str(form.get("request", ""))
        record = await self.store.get_consent_request(request_id)
        if record is None:
            return self._expired()
        if not self._bound(request, record, str(form.get("csrf", ""))):
            return self._other_browser()
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return self._message(400, "Answer not understood", "Choose Allow or Deny on the page.")
        record = await self.store.take_consent_request(request_id)
        if record is None:
            return self._expired()
        pending = record["request"]
        who = {"user": record["subject"], "client_id": pending["client_id"], "resource": pending["resource"]}
        if decision == "deny":
            log.info("consent denied", extra=who)
            response = self._denied(pending)
        else:
            log.info("consent given", extra=who)
            await self.store.put_approval(
                {
                    "subject": record["subject"],
                    "name": record["name"],
                    "client_id": pending["client_id"],
                    "client_name": pending.get("client_name"),
                    "resource": pending["resource"],
                    "redirect_uri": pending["redirect_uri"],
                    "scopes": pending["scopes"],
                    "via": record["via"],
                    "approved_at": int(time.time()),
                },
                self.settings.consent_ttl,
            )
            location = await self.provider.complete_authorization(
                pending, record["subject"], record["name"], record["groups"], record["auth_time"]
            )
            response = RedirectResponse(location, status_code=302, headers=REDIRECT_HEADERS)
        response.delete_cookie(BROWSER_COOKIE, path="/consent")
        return response

    def _denied(self, pending: dict[str, Any]) -> Response:
        location = self.provider.error_location(pending, "access_denied", "the user denied the request")
        if trusted_redirect(pending["client_id"], location):
            return RedirectResponse(location, status_code=302, headers=REDIRECT_HEADERS)
        who, _ = pages.client_description(pending)
        target = pages.redirect_target(pending["redirect_uri"]).label
        body = (
            f'<div class="alert" role="alert"><p>You chose Deny: nothing was shared with '
            f"<strong>{who}</strong>, and {e(target)} gets no access to {e(pending['resource'])}.</p></div>"
            '<p class="note">You can close this window.</p>'
        )
        return pages.page(self.settings.gateway_name, "Access denied", body)
