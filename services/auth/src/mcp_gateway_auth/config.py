"""Settings of the auth service, read from one JSON file written by the `auth` role."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2

IDENTITY_PROVIDERS = ("local", "github", "oidc")
# When the consent page asks (consent.py): after every sign-in, after sign-ins at an
# upstream identity provider only, or never.
CONSENT_MODES = ("always", "upstream", "never")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def normalize_host(host: str) -> str:
    """A host as the resources are keyed: lower case, without a trailing dot or the default
    https port (`Fetch.Example.com.:443` is `fetch.example.com`)."""
    host = host.strip().lower()
    if host.endswith(":443"):
        host = host[:-4]
    return host[:-1] if host.endswith(".") else host


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
class ResourceServer:
    """A resource server outside the gateway that may introspect tokens (RFC 7662) issued
    for its resources; only the SHA-256 of its secret is kept."""

    client_id: str
    client_secret_sha256: str = field(repr=False)
    # Resource URLs (Resource.url) whose tokens it may see.
    resources: tuple[str, ...] = ()


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
class GitHubSettings:
    """The `github` identity provider (upstream.py): a GitHub OAuth app, and the logins and
    organisations allowed in. The user id is GitHub's numeric id (a login can be renamed,
    then taken by somebody else); the login is the name."""

    client_id: str
    client_secret: str = field(repr=False)
    # GitHub logins, lower case (GitHub compares logins case-insensitively), checked at sign-in.
    allowed_users: tuple[str, ...] = ()
    # Organisations (lower case) whose active members may sign in; asks for the read:org scope.
    allowed_orgs: tuple[str, ...] = ()
    # github.com, or a GitHub Enterprise Server (https://ghe.example.com, https://ghe.example.com/api/v3).
    url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    ca_file: str | None = None
    # Put before the login to make the user id (required beside other identity providers).
    user_id_prefix: str = ""


@dataclass(frozen=True)
class OidcSettings:
    """The `oidc` identity provider (upstream.py): any OpenID provider, found by discovery."""

    discovery_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    allowed_subjects: tuple[str, ...] = ()
    # Compared in lower case, and only when the provider says `email_verified: true`.
    allowed_emails: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    groups_claim: str = "groups"
    ca_file: str | None = None
    # What the sign-in page calls the provider ("Sign in with ..."); default: the issuer's host.
    display_name: str = ""
    # Put before `sub` to make the user id (required beside other identity providers).
    user_id_prefix: str = ""

    @property
    def issuer(self) -> str:
        """The issuer the discovery document must name (OpenID Connect Discovery 4.3)."""
        return self.discovery_url.removesuffix("/.well-known/openid-configuration")


@dataclass(frozen=True)
class Settings:
    issuer: str
    resources: dict[str, Resource]
    signing_key_file: Path
    redis_url: str
    # Rotated signing keys and their state (keys.py); None: the key file alone, no rotation.
    signing_keys_dir: Path | None = None
    redis_password: str | None = None
    # Offered on the sign-in page in this order: local (the form), github, oidc (a button
    # each). With one upstream provider and no local, /login goes straight to it.
    identity_providers: tuple[str, ...] = ("local",)
    # The name people see at the top of every page of the service.
    gateway_name: str = "MCP gateway"
    users: dict[str, LocalUser] = field(default_factory=dict)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 300
    login_ttl: int = 600
    # Failed sign-ins within login_failure_window before the form pauses (429), counted
    # per (user name, address) pair, per address and per user name (login.py says why).
    login_max_failures: int = 5
    login_max_failures_per_address: int = 25
    login_max_failures_per_user: int = 100
    login_failure_window: int = 900
    # Peers whose X-Forwarded-For names the client (Traefik): addresses and networks.
    # Empty: nobody's, and the peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Request bodies larger than this get 413 before they are read (every endpoint).
    max_body_bytes: int = 65536
    # A registered client that never exchanged a code is forgotten after this long.
    client_unused_ttl: int = 86400
    verify_headers: dict[str, str] = field(
        default_factory=lambda: {"user_id": "X-User-Id", "user_name": "X-User-Name", "token": "X-Auth-Token"}
    )
    scopes: tuple[str, ...] = ("mcp",)
    cookie_secure: bool = True
    verify_cache_size: int = 10000
    github: GitHubSettings | None = None
    oidc: OidcSettings | None = None
    client_metadata: ClientMetadataSettings = field(default_factory=ClientMetadataSettings)
    # The consent page (consent.py): when it asks, and how long an approval is remembered.
    consent: str = "always"
    consent_ttl: int = 30 * 24 * 3600
    # Resource servers outside the gateway that introspect tokens (POST /introspect).
    resource_servers: tuple[ResourceServer, ...] = ()

    def resource_for_url(self, url: str | None) -> Resource | None:
        """The configured resource a `resource` indicator (RFC 8707) names, or None."""
        if not url:
            return None
        for resource in self.resources.values():
            if url.rstrip("/") in (resource.url, f"https://{resource.host}"):
                return resource
        return None


# Numeric settings and their smallest allowed value.
NUMBERS = {
    "access_token_ttl": 1,
    "refresh_token_ttl": 1,
    "code_ttl": 1,
    "login_ttl": 1,
    "login_max_failures": 1,
    "login_max_failures_per_address": 1,
    "login_max_failures_per_user": 1,
    "login_failure_window": 1,
    "verify_cache_size": 0,
    "max_body_bytes": 4096,
    "client_unused_ttl": 1,
    "consent_ttl": 1,
}


def _integer(data: dict[str, Any], key: str, minimum: int) -> int:
    value = data[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"auth config: '{key}' must be an integer of at least {minimum}, got {value!r}")
    return value


def _trusted_proxies(value: Any) -> tuple[str, ...]:
    """Addresses or networks (CIDR) of the proxies in front of the service."""
    if not isinstance(value, list):
        raise ConfigError("auth config: 'trusted_proxies' must be a list of addresses or networks")
    proxies = []
    for item in value:
        try:
            network = ipaddress.ip_network(item.strip(), strict=False) if isinstance(item, str) else None
        except ValueError:
            network = None
        if network is None:
            raise ConfigError(
                f"auth config: 'trusted_proxies' entry {item!r} is not an address or a network (CIDR)"
            )
        if network.prefixlen == 0:
            # Every address: any client could say who it is.
            raise ConfigError(f"auth config: 'trusted_proxies' entry {item!r} would trust every address")
        proxies.append(str(network) if network.num_addresses > 1 else str(network.network_address))
    return tuple(proxies)


def _optional_path(data: dict[str, Any], key: str) -> Path | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"auth config: '{key}' must be a path (a string)")
    return Path(value)


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
        host = normalize_host(item["host"])
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
    if "identity_provider" in data:
        raise ConfigError("auth config: 'identity_provider' was renamed to 'identity_providers' (a list)")
    providers = data.get("identity_providers", ["local"])
    if not isinstance(providers, list) or not providers:
        raise ConfigError("auth config: 'identity_providers' must be a non-empty list")
    for provider in providers:
        if provider not in IDENTITY_PROVIDERS:
            raise ConfigError(
                f"auth config: 'identity_providers' entry {provider!r} is not supported (local, github, oidc)"
            )
    if len(set(providers)) != len(providers):
        raise ConfigError("auth config: 'identity_providers' names a provider twice")
    gateway_name = data.get("gateway_name", Settings.gateway_name)
    if not isinstance(gateway_name, str) or not gateway_name.strip() or len(gateway_name) > 80:
        raise ConfigError("auth config: 'gateway_name' must be a non-empty string of at most 80 characters")
    password = data.get("redis_password")
    password_file = data.get("redis_password_file")
    if password is None and password_file:
        password = Path(password_file).read_text().strip()
    numbers = {key: _integer(data, key, minimum) for key, minimum in NUMBERS.items() if key in data}
    if numbers.get("code_ttl", Settings.code_ttl) > 600:
        raise ConfigError("auth config: 'code_ttl' must be at most 600 seconds")
    pair_limit = numbers.get("login_max_failures", Settings.login_max_failures)
    for key in ("login_max_failures_per_address", "login_max_failures_per_user"):
        if numbers.get(key, getattr(Settings, key)) < pair_limit:
            raise ConfigError(f"auth config: '{key}' must be at least 'login_max_failures' ({pair_limit})")
    consent = data.get("consent", Settings.consent)
    if consent not in CONSENT_MODES or not isinstance(consent, str):
        raise ConfigError(
            f"auth config: 'consent' must be one of {', '.join(CONSENT_MODES)}, got {consent!r}"
        )
    github = _github(data.get("github")) if "github" in providers else None
    oidc = _oidc(data.get("oidc")) if "oidc" in providers else None
    _check_user_id_namespaces(providers, users, github, oidc)
    return Settings(
        client_metadata=_client_metadata(data.get("client_metadata_documents", {})),
        resource_servers=_resource_servers(data.get("resource_servers", []), resources),
        issuer=issuer,
        resources=resources,
        github=github,
        oidc=oidc,
        signing_key_file=Path(_require(data, "signing_key_file", str)),
        signing_keys_dir=_optional_path(data, "signing_keys_dir"),
        redis_url=_require(data, "redis_url", str),
        redis_password=password,
        identity_providers=tuple(providers),
        gateway_name=gateway_name.strip(),
        users=users,
        verify_headers={
            **Settings.__dataclass_fields__["verify_headers"].default_factory(),
            **data.get("verify_headers", {}),
        },
        scopes=tuple(data.get("scopes", ["mcp"])),
        cookie_secure=bool(data.get("cookie_secure", True)),
        trusted_proxies=_trusted_proxies(data.get("trusted_proxies", [])),
        consent=consent,
        **numbers,
    )


def _check_user_id_namespaces(
    providers: list[str],
    users: dict[str, LocalUser],
    github: GitHubSettings | None,
    oidc: OidcSettings | None,
) -> None:
    """Beside another identity provider, an upstream provider's user ids carry a prefix of
    their own: otherwise the OpenID subject `alice` would be the local user `alice` (the
    same X-User-Id, the same allow-lists)."""
    if len(providers) < 2:
        return
    prefixes = {
        name: section.user_id_prefix for name, section in (("github", github), ("oidc", oidc)) if section
    }
    for name, prefix in prefixes.items():
        if not prefix:
            raise ConfigError(
                f"auth config: '{name}.user_id_prefix' is required beside other identity providers "
                f"(for example '{name}:'), so that its user ids cannot be another provider's"
            )
    if len(prefixes) == 2 and (
        prefixes["github"].startswith(prefixes["oidc"]) or prefixes["oidc"].startswith(prefixes["github"])
    ):
        raise ConfigError("auth config: 'github.user_id_prefix' and 'oidc.user_id_prefix' must not overlap")
    for user in users.values() if "local" in providers else ():
        for name, prefix in prefixes.items():
            if user.user_id.startswith(prefix):
                raise ConfigError(
                    f"auth config: the local user id {user.user_id!r} starts with '{name}.user_id_prefix' "
                    f"{prefix!r}: it could be a {name} user's"
                )


# A resource server's secret is looked up on every introspection, so it is kept as a
# SHA-256, which is only safe for a long random secret: never a password a person chose.
MIN_RESOURCE_SERVER_SECRET = 32
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _resource_servers(data: Any, resources: dict[str, Resource]) -> tuple[ResourceServer, ...]:
    """`resource_servers`: a list of {client_id, client_secret or client_secret_sha256,
    resources (resource URLs or hosts of `resources`)}."""
    if not isinstance(data, list):
        raise ConfigError("auth config: 'resource_servers' must be a list")
    known = {"client_id", "client_secret", "client_secret_sha256", "resources"}
    servers: list[ResourceServer] = []
    for index, item in enumerate(data):
        name = f"resource_servers[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"auth config: '{name}' must be a dict")
        for key in item:
            if key not in known:
                raise ConfigError(f"auth config: '{name}.{key}' is not a known setting")
        client_id = item.get("client_id")
        if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > 200:
            raise ConfigError(
                f"auth config: '{name}.client_id' is required (a string of at most 200 characters)"
            )
        if client_id.startswith(("https://", "http://")):
            raise ConfigError(
                f"auth config: '{name}.client_id' must not be a URL (URLs are client metadata documents)"
            )
        if any(server.client_id == client_id for server in servers):
            raise ConfigError(f"auth config: '{name}.client_id' {client_id!r} appears twice")
        digest = item.get("client_secret_sha256")
        secret = item.get("client_secret")
        if digest:
            if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
                raise ConfigError(f"auth config: '{name}.client_secret_sha256' must be 64 hexadecimal digits")
            digest = digest.lower()
        elif isinstance(secret, str) and secret:
            if len(secret) < MIN_RESOURCE_SERVER_SECRET:
                raise ConfigError(
                    f"auth config: '{name}.client_secret' must be at least {MIN_RESOURCE_SERVER_SECRET} "
                    "characters (a random secret, e.g. `openssl rand -base64 32`)"
                )
            digest = hashlib.sha256(secret.encode()).hexdigest()
        else:
            raise ConfigError(
                f"auth config: '{name}.client_secret' (or '{name}.client_secret_sha256') is required"
            )
        urls = item.get("resources")
        if not isinstance(urls, list) or not urls or not all(isinstance(url, str) for url in urls):
            raise ConfigError(
                f"auth config: '{name}.resources' must be a non-empty list of resource URLs or hosts"
            )
        names: list[str] = []
        for url in urls:
            resource = resources.get(normalize_host(url)) or next(
                (r for r in resources.values() if url.rstrip("/") in (r.url, f"https://{r.host}")), None
            )
            if resource is None:
                raise ConfigError(
                    f"auth config: '{name}.resources' entry {url!r} is not one of the resources "
                    "(add the resource server's host to them)"
                )
            names.append(resource.url)
        servers.append(ResourceServer(client_id.strip(), digest, tuple(dict.fromkeys(names))))
    return tuple(servers)


def _client_metadata(data: Any) -> ClientMetadataSettings:
    """`client_metadata_documents`: enabled, allowed_hosts, allow_private_addresses, ca_file,
    timeout, max_bytes, min/max/default_cache_seconds."""
    if not isinstance(data, dict):
        raise ConfigError("auth config: 'client_metadata_documents' must be a dict")
    kinds = {name: type(value) for name, value in vars(ClientMetadataSettings()).items()}
    kinds.update(allowed_hosts=list, ca_file=str, timeout=(int, float))
    values: dict[str, Any] = {"ca_file": _ca_file(data, "client_metadata_documents")}
    for name, value in data.items():
        if name not in kinds:
            raise ConfigError(f"auth config: 'client_metadata_documents.{name}' is not a known setting")
        if name == "ca_file":
            continue
        if not isinstance(value, kinds[name]) or (isinstance(value, bool) and kinds[name] is int):
            raise ConfigError(f"auth config: 'client_metadata_documents.{name}' has the wrong type")
        values[name] = value
    if "allowed_hosts" in values:
        values["allowed_hosts"] = tuple(host.lower() for host in values["allowed_hosts"])
    return ClientMetadataSettings(**values)


def _section(data: Any, name: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"auth config: '{name}' is required when 'identity_providers' lists {name}")
    for key in data:
        if key not in known:
            raise ConfigError(f"auth config: '{name}.{key}' is not a known setting")
    return data


def _text(data: dict[str, Any], name: str, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"auth config: '{name}.{key}' is required and must be a non-empty string")
    return value.strip()


def _texts(data: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ConfigError(f"auth config: '{name}.{key}' must be a list of non-empty strings")
    return tuple(item.strip() for item in value)


def _secret(data: dict[str, Any], name: str) -> str:
    """`client_secret`, or `client_secret_file` (a file holding it)."""
    secret = data.get("client_secret")
    path = data.get("client_secret_file")
    if not secret and path:
        try:
            secret = Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(
                f"auth config: '{name}.client_secret_file' cannot be read: {error.strerror}"
            ) from None
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"auth config: '{name}.client_secret' (or '{name}.client_secret_file') is required")
    return secret


def _prefix(data: dict[str, Any], name: str) -> str:
    value = data.get("user_id_prefix", "")
    if not isinstance(value, str) or any(c.isspace() for c in value) or len(value) > 32:
        raise ConfigError(f"auth config: '{name}.user_id_prefix' must be a string without spaces, at most 32")
    return value


def _upstream_url(data: dict[str, Any], name: str, key: str, default: str | None = None) -> str:
    """https, or http on a loopback address (tests)."""
    url = _text(data, name, key, default).rstrip("/")
    parsed = urlparse(url)
    loopback = parsed.hostname in ("127.0.0.1", "::1", "localhost")
    if not parsed.hostname or not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
        raise ConfigError(
            f"auth config: '{name}.{key}' must be an https:// URL (http only on loopback), got {url!r}"
        )
    return url


def client_tls(ca_file: str | None) -> ssl.SSLContext | bool:
    """TLS of the service's outgoing calls (upstream identity providers, client metadata
    documents): the system's trust store, plus the operator's CA bundle when one is set."""
    if not ca_file:
        return True
    context = httpx2.create_ssl_context()
    context.load_verify_locations(cafile=ca_file)
    return context


def _ca_file(data: dict[str, Any], name: str) -> str | None:
    path = data.get("ca_file")
    if path in (None, ""):
        return None
    if not isinstance(path, str) or not Path(path).is_file():
        raise ConfigError(f"auth config: '{name}.ca_file' must be the path of a CA bundle, got {path!r}")
    return path


# A GitHub organisation's login: letters, digits and single hyphens, at most 39 characters.
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def _github(data: Any) -> GitHubSettings:
    """`github`: client_id, client_secret(_file), allowed_users, allowed_orgs, url, api_url,
    ca_file, user_id_prefix."""
    known = {
        "client_id",
        "client_secret",
        "client_secret_file",
        "allowed_users",
        "allowed_orgs",
        "url",
        "api_url",
        "ca_file",
        "user_id_prefix",
    }
    data = _section(data, "github", known)
    allowed = _texts(data, "github", "allowed_users")
    orgs = data.get("allowed_orgs") or []
    if not isinstance(orgs, list):
        raise ConfigError("auth config: 'github.allowed_orgs' must be a list of organisation logins")
    for org in orgs:
        if not isinstance(org, str) or not _GITHUB_LOGIN.match(org):
            raise ConfigError(
                f"auth config: 'github.allowed_orgs' entry {org!r} is not a GitHub organisation login"
            )
    if not allowed and not orgs:
        # Never "every GitHub user": there are a hundred million of them.
        raise ConfigError(
            "auth config: 'github.allowed_users' and 'github.allowed_orgs' must not both be empty"
        )
    return GitHubSettings(
        client_id=_text(data, "github", "client_id"),
        client_secret=_secret(data, "github"),
        allowed_users=tuple(login.lower() for login in allowed),
        allowed_orgs=tuple(dict.fromkeys(org.lower() for org in orgs)),
        url=_upstream_url(data, "github", "url", GitHubSettings.url),
        api_url=_upstream_url(data, "github", "api_url", GitHubSettings.api_url),
        ca_file=_ca_file(data, "github"),
        user_id_prefix=_prefix(data, "github"),
    )


def _oidc(data: Any) -> OidcSettings:
    """`oidc`: discovery_url, client_id, client_secret(_file), scopes, allowed_subjects,
    allowed_emails, allowed_groups, groups_claim, ca_file, display_name, user_id_prefix."""
    known = {
        "discovery_url",
        "client_id",
        "client_secret",
        "client_secret_file",
        "scopes",
        "allowed_subjects",
        "allowed_emails",
        "allowed_groups",
        "groups_claim",
        "ca_file",
        "display_name",
        "user_id_prefix",
    }
    data = _section(data, "oidc", known)
    discovery = _upstream_url(data, "oidc", "discovery_url")
    if not discovery.endswith("/.well-known/openid-configuration"):
        # The issuer was given: its discovery document is at the well-known path.
        discovery += "/.well-known/openid-configuration"
    scopes = _texts(data, "oidc", "scopes") or OidcSettings.scopes
    if "openid" not in scopes:
        raise ConfigError("auth config: 'oidc.scopes' must include openid")
    subjects = _texts(data, "oidc", "allowed_subjects")
    emails = tuple(email.lower() for email in _texts(data, "oidc", "allowed_emails"))
    groups = _texts(data, "oidc", "allowed_groups")
    if not (subjects or emails or groups):
        raise ConfigError(
            "auth config: 'oidc.allowed_subjects', 'oidc.allowed_emails' and 'oidc.allowed_groups' "
            "must not all be empty"
        )
    return OidcSettings(
        discovery_url=discovery,
        client_id=_text(data, "oidc", "client_id"),
        client_secret=_secret(data, "oidc"),
        scopes=scopes,
        allowed_subjects=subjects,
        allowed_emails=emails,
        allowed_groups=groups,
        groups_claim=_text(data, "oidc", "groups_claim", "groups"),
        ca_file=_ca_file(data, "oidc"),
        display_name=_text(data, "oidc", "display_name", urlparse(discovery).hostname or "OpenID"),
        user_id_prefix=_prefix(data, "oidc"),
    )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    path = path or os.environ.get("AUTH_CONFIG", "/etc/mcp-gateway-auth/config.json")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"auth config: cannot read {path}: {error}") from None
    return settings_from_dict(data)
