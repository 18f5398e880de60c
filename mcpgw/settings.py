"""The gateway-wide settings: every value more than one role needs, computed once.

The `gateway` role feeds its variables (and the catalogue, `mcp_services`) to
`gateway_settings` and keeps the result as the fact `gateway_settings`; every other role
reads that fact and never recomputes or copies what is in it. Errors raise
`AnsibleFilterError` naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from .catalogue import mcp_services_normalize, mcp_services_resources
from .labels import _valid_hostname

# The auth service's name and port on the public network: Traefik's ForwardAuth calls
# https://auth:8000/verify, the auth role names its Compose service and labels its port so,
# and its certificate (from the gateway's internal CA) carries that name.
AUTH_SERVICE = "auth"
AUTH_PORT = 8000
# Traefik's servers transport (file provider) to the auth service: the internal CA, the name.
AUTH_SERVERS_TRANSPORT = "auth"
HEADER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
NETWORK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENTITY_KEYS = ("user_id", "user_name", "token")
INPUT_KEYS = frozenset(
    {
        "domain",
        "network_public",
        "network_public_subnet",
        "network_backend",
        "traefik_ipv4_address",
        "identity_headers",
        "acme_enabled",
        "acme_resolver",
        "middlewares_extra",
        "internal_ca_dir",
        "catalogue",
    }
)


def _fail(variable: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"gateway_settings: {variable}: {message}")


def _network(variable: str, value: Any) -> str:
    if not isinstance(value, str) or not NETWORK_RE.match(value):
        raise _fail(variable, f"must be a Docker network name, got {value!r}")
    return value


def _identity_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or set(value) != set(IDENTITY_KEYS):
        raise _fail("gateway_identity_headers", f"must be a dict with exactly {', '.join(IDENTITY_KEYS)}")
    for key in IDENTITY_KEYS:
        if not isinstance(value[key], str) or not HEADER_RE.match(value[key]):
            raise _fail(f"gateway_identity_headers.{key}", f"must be an HTTP header name, got {value[key]!r}")
    names = [value[key].lower() for key in IDENTITY_KEYS]
    if len(set(names)) != len(names):
        raise _fail(
            "gateway_identity_headers", f"names a header twice: {', '.join(value[k] for k in IDENTITY_KEYS)}"
        )
    return {key: value[key] for key in IDENTITY_KEYS}


def _subnet(value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except (TypeError, ValueError):
        raise _fail(
            "gateway_network_public_subnet", f"must be a network such as 172.30.0.0/24, got {value!r}"
        ) from None


def _traefik_address(value: Any, subnet: str) -> str:
    if value in (None, ""):
        return ""
    try:
        address = ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise _fail("gateway_traefik_ipv4_address", f"must be an IPv4 address, got {value!r}") from None
    if address.version != 4:
        raise _fail("gateway_traefik_ipv4_address", f"must be an IPv4 address, got {value!r}")
    if not subnet:
        raise _fail("gateway_traefik_ipv4_address", "needs gateway_network_public_subnet (a fixed subnet)")
    if address not in ipaddress.ip_network(subnet):
        raise _fail(
            "gateway_traefik_ipv4_address", f"{value} is not in gateway_network_public_subnet {subnet}"
        )
    return str(address)


def gateway_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings every role reads, from the gateway role's variables."""
    if not isinstance(inputs, Mapping):
        raise AnsibleFilterError(
            f"gateway_settings: expected a dict of the gateway's variables, got {inputs!r}"
        )
    unknown = sorted(set(inputs) - INPUT_KEYS)
    missing = sorted(INPUT_KEYS - set(inputs))
    if unknown or missing:
        raise AnsibleFilterError(f"gateway_settings: unknown {unknown}, missing {missing}")
    domain = inputs["domain"]
    if not isinstance(domain, str) or not _valid_hostname(domain) or "." not in domain:
        raise _fail("gateway_domain", f"must be a lower-case DNS domain such as example.com, got {domain!r}")
    public = _network("gateway_network_public_name", inputs["network_public"])
    backend = _network("gateway_network_backend_name", inputs["network_backend"])
    if public == backend:
        raise _fail("gateway_network_backend_name", f"must differ from the public network {public!r}")
    subnet = _subnet(inputs["network_public_subnet"])
    traefik_address = _traefik_address(inputs["traefik_ipv4_address"], subnet)
    headers = _identity_headers(inputs["identity_headers"])
    if not isinstance(inputs["acme_enabled"], bool):
        raise _fail("gateway_acme_enabled", f"must be true or false, got {inputs['acme_enabled']!r}")
    resolver = inputs["acme_resolver"]
    if not isinstance(resolver, str) or not NETWORK_RE.match(resolver):
        raise _fail("gateway_acme_resolver", f"must be a name such as letsencrypt, got {resolver!r}")
    extra = inputs["middlewares_extra"] or {}
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) and NETWORK_RE.match(k) for k in extra):
        raise _fail("gateway_middlewares_extra", "must be a dict of middleware name to Traefik middleware")
    ca_dir = inputs["internal_ca_dir"]
    if not isinstance(ca_dir, str) or not ca_dir.startswith("/") or ca_dir.rstrip("/") == "":
        raise _fail(
            "gateway_internal_ca_dir", f"must be an absolute directory such as /opt/ca, got {ca_dir!r}"
        )
    ca_dir = ca_dir.rstrip("/")
    catalogue = mcp_services_normalize(inputs["catalogue"], domain)
    certresolver = resolver if inputs["acme_enabled"] else ""
    extra_names = [f"{name}@file" for name in extra]
    return {
        "domain": domain,
        # Each MCP service has a network of its own that only Traefik shares: services reach
        # neither each other, nor the auth service, nor Traefik's internal entrypoint.
        "networks": {
            "public": public,
            "public_subnet": subnet,
            "backend": backend,
            "services": {s["name"]: s["network"] for s in catalogue if s["state"] == "present"},
        },
        "traefik_ipv4_address": traefik_address,
        # What the auth service may trust as the proxy in front of it: Traefik.
        "proxies": [traefik_address] if traefik_address else ([subnet] if subnet else []),
        "identity_headers": headers,
        "identity_header_names": [headers[key] for key in IDENTITY_KEYS],
        "acme": {"enabled": inputs["acme_enabled"], "resolver": resolver},
        "certresolver": certresolver,
        "middlewares_extra": dict(extra),
        "catalogue": catalogue,
        "resources": mcp_services_resources(catalogue),
        # The CA of the TLS between Traefik and the services behind it (the gateway_network
        # role makes it once; the auth role's certificate comes from it; Traefik trusts it).
        "internal_ca": {
            "dir": ca_dir,
            "key": f"{ca_dir}/ca-key.pem",
            "certificate": f"{ca_dir}/ca.pem",
        },
        # Traefik reaches the auth service over TLS (HTTP/2: ForwardAuth's checks share one
        # connection), verified with the internal CA and the name `auth`.
        "auth": {
            "service": AUTH_SERVICE,
            "port": AUTH_PORT,
            "server_name": AUTH_SERVICE,
            "verify_url": f"https://{AUTH_SERVICE}:{AUTH_PORT}/verify",
            "servers_transport": AUTH_SERVERS_TRANSPORT,
        },
        # The gateway argument of traefik_labels for every role's routed services.
        "labels": {
            "domain": domain,
            "network": public,
            "certresolver": certresolver,
            "extra_middlewares": extra_names,
        },
    }
