"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25).

A client with no prior relationship to the gateway identifies itself by an https URL; the
JSON document at that URL is its registration. The service fetches it when the client
first appears, checks it, and keeps it in Redis for as long as its cache headers allow
(within bounds). Fetching a URL that a stranger chose is a server-side request: the host
must resolve to public addresses only (unless the operator allows private ones), the
connection goes to the address that was checked, redirects are not followed, and the
response is small, JSON and answered with 200.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from .config import ClientMetadataSettings, client_tls

# The same redirect URI rules as RFC 7591 registration.
from .provider import check_client_metadata, check_redirect_uri

log = logging.getLogger("mcp_gateway_auth.cimd")

# Client metadata (RFC 7591) a document may carry; anything else is ignored.
KEPT_FIELDS = (
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
    "redirect_uris",
    "grant_types",
    "response_types",
)
# A document is public: a secret in it is a mistake the service refuses to build on.
FORBIDDEN_FIELDS = ("client_secret", "client_secret_expires_at")
GRANT_TYPES = {"authorization_code", "refresh_token"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


class ClientMetadataError(Exception):
    """The client_id URL or its document is unusable; the message says why."""


def check_client_id_url(url: str) -> str:
    """The rules of a client identifier URL; returns its host."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ClientMetadataError("the client_id URL must use https")
    if parts.username is not None or parts.password is not None:
        raise ClientMetadataError("the client_id URL must not contain credentials")
    if parts.fragment or "#" in url:
        raise ClientMetadataError("the client_id URL must not contain a fragment")
    if not parts.hostname:
        raise ClientMetadataError("the client_id URL has no host")
    if parts.path in ("", "/"):
        raise ClientMetadataError("the client_id URL must have a path")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ClientMetadataError("the client_id URL must not contain . or .. path segments")
    return parts.hostname.lower()


def cache_seconds(cache_control: str | None, settings: ClientMetadataSettings) -> int:
    """How long a document may be kept: its max-age, within the operator's bounds."""
    if cache_control and "no-store" in cache_control.lower():
        return settings.min_cache_seconds
    match = _MAX_AGE.search(cache_control or "")
    seconds = int(match.group(1)) if match else settings.default_cache_seconds
    return max(settings.min_cache_seconds, min(seconds, settings.max_cache_seconds))


def client_from_document(url: str, document: Any, scopes: tuple[str, ...]) -> OAuthClientInformationFull:
    """The registration a document stands for, or ClientMetadataError naming the field."""
    if not isinstance(document, dict):
        raise ClientMetadataError("the document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientMetadataError("'client_id' in the document does not equal the URL it was fetched from")
    for name in FORBIDDEN_FIELDS:
        if name in document:
            raise ClientMetadataError(f"'{name}' must not appear in a client metadata document")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientMetadataError(
            f"'token_endpoint_auth_method' {method!r} is not supported (public clients only: none)"
        )
    redirect_uris = document.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise ClientMetadataError("'redirect_uris' must be a non-empty list")
    for uri in redirect_uris:
        if not isinstance(uri, str):
            raise ClientMetadataError("'redirect_uris' must hold strings")
        try:
            check_redirect_uri(uri)
        except RegistrationError as error:
            raise ClientMetadataError(f"'redirect_uris': {error.error_description}") from None
    grants = document.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or not set(grants) <= GRANT_TYPES or "authorization_code" not in grants:
        raise ClientMetadataError("'grant_types' may hold only authorization_code and refresh_token")
    if document.get("response_types", ["code"]) != ["code"]:
        raise ClientMetadataError("'response_types' must be [\"code\"]")
    data = {name: document[name] for name in KEPT_FIELDS if name in document}
    try:
        client = OAuthClientInformationFull.model_validate(
            {
                **data,
                "client_id": url,
                "token_endpoint_auth_method": "none",
                "grant_types": grants,
                # The client asks for what the gateway's resources offer, never more.
                "scope": " ".join(scopes),
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ClientMetadataError(f"'{where}': {first['msg']}") from None
    try:
        check_client_metadata(client)
    except RegistrationError as error:
        raise ClientMetadataError(error.error_description or error.error) from None
    return client


class ClientMetadataResolver:
    """Fetches, checks and caches client metadata documents."""

    def __init__(
        self,
        settings: ClientMetadataSettings,
        store: Any,
        scopes: tuple[str, ...],
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scopes = scopes
        self._transport = transport
        self._verify = client_tls(settings.ca_file)

    async def client(self, url: str) -> OAuthClientInformationFull | None:
        """The client a URL client_id names, or None (the SDK then answers invalid client)."""
        if not self.settings.enabled:
            return None
        cached = await self.store.get_client_document(url)
        if cached is not None:
            return OAuthClientInformationFull.model_validate(cached)
        try:
            client, ttl = await self._resolve(url)
        except ClientMetadataError as error:
            log.warning("client metadata document refused", extra={"client_id": url, "reason": str(error)})
            return None
        await self.store.put_client_document(url, client.model_dump(mode="json", exclude_none=True), ttl)
        log.info("client metadata document accepted", extra={"client_id": url, "cache_seconds": ttl})
        return client

    async def _resolve(self, url: str) -> tuple[OAuthClientInformationFull, int]:
        host = check_client_id_url(url)
        if self.settings.allowed_hosts and host not in self.settings.allowed_hosts:
            raise ClientMetadataError(f"host {host!r} is not among the allowed client metadata hosts")
        addresses = await self._checked_addresses(host, urlsplit(url).port or 443)
        for address in addresses:
            try:
                body, cache_control = await self._fetch(url, host, address)
                break
            except httpx2.ConnectError:
                continue
        else:
            raise ClientMetadataError(f"cannot connect to {host!r}")
        try:
            document = json.loads(body)
        except ValueError:
            raise ClientMetadataError("the document is not valid JSON") from None
        return client_from_document(url, document, self.scopes), cache_seconds(cache_control, self.settings)

    async def _checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve once, refuse non-public addresses, and return the addresses to connect to."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=0, proto=6)
        except OSError as error:
            raise ClientMetadataError(f"cannot resolve {host!r}: {error.strerror}") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise ClientMetadataError(f"{host!r} has no address")
        if not self.settings.allow_private_addresses:
            for address in addresses:
                if not address.is_global:
                    raise ClientMetadataError(f"{host!r} resolves to a non-public address ({address})")
        return list(dict.fromkeys(str(address) for address in addresses))

    async def _fetch(self, url: str, host: str, address: str) -> tuple[bytes, str | None]:
        parts = urlsplit(url)
        literal = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{literal}:{parts.port or 443}").geturl()
        headers = {"Host": parts.netloc, "Accept": "application/json"}
        async with httpx2.AsyncClient(
            transport=self._transport,
            verify=self._verify,
            timeout=self.settings.timeout,
            follow_redirects=False,
            trust_env=False,
        ) as http:
            try:
                # Connect to the address that was checked; TLS still verifies the host name.
                async with http.stream(
                    "GET", target, headers=headers, extensions={"sni_hostname": host}
                ) as response:
                    if response.status_code != 200:
                        raise ClientMetadataError(f"the document answered HTTP {response.status_code}")
                    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if media_type != "application/json" and not media_type.endswith("+json"):
                        raise ClientMetadataError(f"the document is {media_type or 'untyped'}, not JSON")
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.settings.max_bytes:
                            raise ClientMetadataError(
                                f"the document is larger than {self.settings.max_bytes} bytes"
                            )
                    return body, response.headers.get("cache-control")
            except httpx2.ConnectError:
                raise
            except httpx2.HTTPError as error:
                raise ClientMetadataError(f"cannot fetch the document: {type(error).__name__}") from None
