"""Settings of the auth service, read from one JSON file written by the `auth` role."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class LocalUser:
    username: str
    password_hash: str
    user_id: str
    display_name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    """One MCP host behind the gateway."""

    host: str
    path: str = "/mcp"
    allowed_users: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://{self.host}{self.path}"

    def allows(self, user_id: str, groups: tuple[str, ...] | list[str] = ()) -> bool:
        if not self.allowed_users and not self.allowed_groups:
            return True
        return user_id in self.allowed_users or any(group in self.allowed_groups for group in groups)


@dataclass(frozen=True)
class ClientMetadataSettings:
    """Client ID Metadata Documents (cimd.py)."""

    enabled: bool = True
    # Hosts whose documents are accepted (exact names); empty: any public host.
    allowed_hosts: tuple[str, ...] = ()
    # Fetch from loopback/private/link-local addresses too (tests, private deployments).
    allow_private_addresses: bool = False
    ca_file: str | None = None
    timeout: float = 5.0
    max_bytes: int = 5120
    min_cache_seconds: int = 60
    max_cache_seconds: int = 86400
    default_cache_seconds: int = 600


@dataclass(frozen=True)
class Settings:
    issuer: str
    resources: dict[str, Resource]
    signing_key_file: Path
    redis_url: str
    redis_password: str | None = None
    identity_provider: str = "local"
    users: dict[str, LocalUser] = field(default_factory=dict)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 300
    login_ttl: int = 600
    login_max_failures: int = 5
    login_failure_window: int = 900
    verify_headers: dict[str, str] = field(
        default_factory=lambda: {"user_id": "X-User-Id", "user_name": "X-User-Name", "token": "X-Auth-Token"}
    )
    scopes: tuple[str, ...] = ("mcp",)
    cookie_secure: bool = True
    verify_cache_size: int = 10000
    client_metadata: ClientMetadataSettings = field(default_factory=ClientMetadataSettings)

    def resource_for_url(self, url: str | None) -> Resource | None:
        """The configured resource a `resource` indicator (RFC 8707) names, or None."""
        if not url:
            return None
        for resource in self.resources.values():
            if url.rstrip("/") in (resource.url, f"https://{resource.host}"):
                return resource
        return None


def _require(data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise ConfigError(f"auth config: '{key}' is required")
    value = data[key]
    if not isinstance(value, kind):
        raise ConfigError(f"auth config: '{key}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def settings_from_dict(data: dict[str, Any]) -> Settings:
    issuer = _require(data, "issuer", str).rstrip("/")
    if not issuer.startswith("https://") and not issuer.startswith("http://127.0.0.1"):
        raise ConfigError(f"auth config: 'issuer' must be an https:// URL, got {issuer!r}")
    resources: dict[str, Resource] = {}
    for index, item in enumerate(_require(data, "resources", list)):
        if not isinstance(item, dict) or not isinstance(item.get("host"), str):
            raise ConfigError(f"auth config: 'resources[{index}].host' is required")
        host = item["host"].lower()
        resources[host] = Resource(
            host=host,
            path=item.get("path", "/mcp"),
            allowed_users=tuple(item.get("allowed_users", [])),
            allowed_groups=tuple(item.get("allowed_groups", [])),
        )
    users: dict[str, LocalUser] = {}
    for index, item in enumerate(data.get("users", [])):
        for key in ("username", "password_hash"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ConfigError(f"auth config: 'users[{index}].{key}' is required")
        users[item["username"]] = LocalUser(
            username=item["username"],
            password_hash=item["password_hash"],
            user_id=item.get("id", item["username"]),
            display_name=item.get("name", item["username"]),
            groups=tuple(item.get("groups", [])),
        )
    provider = data.get("identity_provider", "local")
    if provider not in ("local",):
        raise ConfigError(f"auth config: 'identity_provider' {provider!r} is not supported (local)")
    password = data.get("redis_password")
    password_file = data.get("redis_password_file")
    if password is None and password_file:
        password = Path(password_file).read_text().strip()
    known = {
        "access_token_ttl",
        "refresh_token_ttl",
        "code_ttl",
        "login_ttl",
        "login_max_failures",
        "login_failure_window",
        "verify_cache_size",
    }
    numbers = {key: int(data[key]) for key in known if key in data}
    if numbers.get("code_ttl", 300) > 600:
        raise ConfigError("auth config: 'code_ttl' must be at most 600 seconds")
    return Settings(
        client_metadata=_client_metadata(data.get("client_metadata_documents", {})),
        issuer=issuer,
        resources=resources,
        signing_key_file=Path(_require(data, "signing_key_file", str)),
        redis_url=_require(data, "redis_url", str),
        redis_password=password,
        identity_provider=provider,
        users=users,
        verify_headers={
            **Settings.__dataclass_fields__["verify_headers"].default_factory(),
            **data.get("verify_headers", {}),
        },
        scopes=tuple(data.get("scopes", ["mcp"])),
        cookie_secure=bool(data.get("cookie_secure", True)),
        **numbers,
    )


def _client_metadata(data: Any) -> ClientMetadataSettings:
    """`client_metadata_documents`: enabled, allowed_hosts, allow_private_addresses, ca_file,
    timeout, max_bytes, min/max/default_cache_seconds."""
    if not isinstance(data, dict):
        raise ConfigError("auth config: 'client_metadata_documents' must be a dict")
    kinds = {name: type(value) for name, value in vars(ClientMetadataSettings()).items()}
    kinds.update(allowed_hosts=list, ca_file=str, timeout=(int, float))
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in kinds:
            raise ConfigError(f"auth config: 'client_metadata_documents.{name}' is not a known setting")
        if value is None and name == "ca_file":
            continue
        if not isinstance(value, kinds[name]) or (isinstance(value, bool) and kinds[name] is int):
            raise ConfigError(f"auth config: 'client_metadata_documents.{name}' has the wrong type")
        values[name] = value
    if "allowed_hosts" in values:
        values["allowed_hosts"] = tuple(host.lower() for host in values["allowed_hosts"])
    return ClientMetadataSettings(**values)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    path = path or os.environ.get("AUTH_CONFIG", "/etc/mcp-gateway-auth/config.json")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"auth config: cannot read {path}: {error}") from None
    return settings_from_dict(data)
