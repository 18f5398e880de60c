"""The HTML pages people see: the sign-in and consent pages and every message on the way.

One layout for all of them: no script at all, one stylesheet allowed by its hash, nothing
loaded from elsewhere. The Content-Security-Policy's `form-action` names exactly where a
form on the page may lead, redirects included (browsers check every hop of the redirect
chain that follows a form submission): our own origin, and for the sign-in form also the
origin of the client's redirect URI, which was checked when the request was made.
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from starlette.responses import HTMLResponse

STYLE = """
:root { color-scheme: light dark; --accent: #1f5fbf; --error: #b3261e; --muted: #5f6368; }
@media (prefers-color-scheme: dark) { :root { --accent: #8ab4f8; --error: #f2b8b5; --muted: #bdc1c6; } }
* { box-sizing: border-box; }
body { font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; padding: 1rem; }
main { max-width: 28rem; margin: 2rem auto; }
header { color: var(--muted); font-weight: 600; margin-bottom: 1.5rem; overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
dl { margin: 0 0 1.5rem; padding: 0.75rem 1rem; border-radius: 0.5rem;
     border: 1px solid color-mix(in srgb, currentColor 25%, transparent); }
dt { color: var(--muted); font-size: 0.875rem; margin-top: 0.5rem; }
dt:first-child { margin-top: 0; }
dd { margin: 0; overflow-wrap: anywhere; }
.note { font-size: 0.875rem; color: var(--muted); }
.alert { border-left: 4px solid var(--error); padding: 0.5rem 0.75rem; margin: 0 0 1rem;
         background: color-mix(in srgb, var(--error) 10%, transparent); }
.alert strong { color: var(--error); }
label { display: block; font-weight: 600; margin: 1rem 0 0.25rem; }
input { width: 100%; font: inherit; padding: 0.625rem 0.75rem; border-radius: 0.375rem;
        border: 1px solid color-mix(in srgb, currentColor 45%, transparent); }
input:focus-visible, .button:focus-visible, button:focus-visible {
  outline: 3px solid var(--accent); outline-offset: 2px; }
button, .button { display: block; width: 100%; margin-top: 1.5rem; padding: 0.75rem;
         font: inherit; font-weight: 600; text-align: center; text-decoration: none;
         border-radius: 0.375rem; cursor: pointer;
         border: 1px solid var(--accent); background: var(--accent); color: Canvas; }
.button.secondary, button.secondary { background: transparent; color: var(--accent); margin-top: 0.75rem; }
.or { text-align: center; color: var(--muted); margin: 1.5rem 0 0; }
"""
STYLE_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} - {gateway}</title>
<style>{style}</style></head>
<body><main>
<header>{gateway}</header>
<h1>{title}</h1>
{body}
</main></body></html>"""

LOOPBACK_NAMES = {"localhost"}


def e(value: object) -> str:
    """Escape text for HTML (element content and quoted attributes)."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class RedirectTarget:
    """Where a client's authorization code goes, for people and for the CSP."""

    label: str
    # A CSP source expression matching the redirect URI, for form-action.
    source: str


def redirect_target(uri: str) -> RedirectTarget:
    """The redirect URI was checked at registration (provider.check_redirect_uri): https,
    http on loopback, or a private-use scheme of a native app."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        return RedirectTarget(f"the application that opens {scheme}: links on this device", f"{scheme}:")
    host = (parsed.hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    netloc = f"[{host}]" if address is not None and address.version == 6 else host
    if parsed.port is not None:
        netloc += f":{parsed.port}"
    loopback = (address is not None and address.is_loopback) or host in LOOPBACK_NAMES
    label = f"an application on this computer ({netloc})" if loopback else netloc
    if address is not None and address.version == 6:
        # CSP host sources cannot name an IPv6 address (Chromium drops `http://[::1]:9000`
        # as invalid): the scheme is the narrowest source that still lets the redirect through.
        return RedirectTarget(label, f"{scheme}:")
    return RedirectTarget(label, f"{scheme}://{netloc}")


def client_description(pending: dict[str, Any]) -> tuple[str, str]:
    """Who asks, for the sign-in and consent pages: the client's name (HTML, escaped), and
    whether anyone vouched for it: a Client ID Metadata Document's host, or nobody."""
    name = pending.get("client_name")
    who = e(name) if name else "An application without a name"
    document_host = pending.get("client_document_host")
    if document_host:
        return who, f"its details are published at {document_host}"
    return who, "self-registered: nobody checked this name"


def page(
    gateway: str,
    title: str,
    body: str,
    *,
    status: int = 200,
    form_action: Iterable[str] = (),
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page in the common layout. `body` is HTML the caller escaped; `form_action` lists
    the CSP sources a form may lead to besides our own origin (none: no forms at all)."""
    sources = list(form_action)
    actions = " ".join(["'self'", *sources]) if sources else "'none'"
    csp = (
        f"default-src 'none'; style-src {STYLE_SOURCE}; form-action {actions}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    content = LAYOUT.format(title=e(title), gateway=e(gateway), style=STYLE, body=body)
    return HTMLResponse(
        content,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            **(headers or {}),
        },
    )


def message(
    gateway: str, status: int, title: str, text: str, *, action: tuple[str, str] | None = None
) -> HTMLResponse:
    """A page that says what happened and what to do next; `action` is an optional
    (label, same-origin URL) link such as "Start over"."""
    body = f'<div class="alert" role="alert"><p>{e(text)}</p></div>'
    if action is not None:
        body += f'<p><a class="button" href="{e(action[1])}">{e(action[0])}</a></p>'
        body += '<p class="note">Or close this window and start again from your application.</p>'
    else:
        body += '<p class="note">Close this window and start again from your application.</p>'
    return page(gateway, title, body, status=status)
