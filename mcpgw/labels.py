"""Traefik Docker-provider labels computed from a routed service's specification.

Pure functions: a service spec plus the gateway's settings in, the complete ``traefik.*``
label dict out. Every error raises ``AnsibleFilterError`` naming the service and the key.
The filters `traefik_labels` and `traefik_labels_check` (filter_plugins/traefik_labels.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

PRIORITY_CLASSES: dict[str, int] = {"oauth": 4, "auth_support": 3, "mcp": 2, "catchall": 1}

DEFAULT_GATEWAY: dict[str, Any] = {
    "domain": "",
    "entrypoint": "websecure",
    "certresolver": "letsencrypt",
    "network": "public",
    "sticky_cookie": "mcp_session",
    # The chain of each priority class. secure-headers comes first, so that every answer gets
    # its headers, ForwardAuth's 401 included; the service's and the router's own middlewares
    # (CORS, an allow-list, a rate limit) go right before the first authentication middleware,
    # so that a preflight or a refusal never waits for, or leaks to, the auth check.
    "default_middlewares": {
        "oauth": ["secure-headers@file", "ratelimit-oauth@file", "buffering-oauth@file"],
        "auth_support": ["secure-headers@file"],
        "mcp": ["secure-headers@file", "ratelimit-mcp@file", "mcp-auth@file"],
        "catchall": ["secure-headers@file", "ratelimit-mcp@file", "mcp-auth@file"],
    },
    "auth_middlewares": ["mcp-auth@file"],
    "middlewares": [
        "mcp-auth@file",
        "secure-headers@file",
        "ip-allowlist@file",
        "cors@file",
        "ratelimit-oauth@file",
        "ratelimit-mcp@file",
        "buffering-oauth@file",
    ],
    # Added to `middlewares`: the user's own (gateway_middlewares_extra), as <name>@file.
    "extra_middlewares": [],
}

SERVICE_KEYS = frozenset(
    {
        "name",
        "port",
        "hosts",
        "path_prefix",
        "priority_class",
        "routers",
        "middlewares",
        "healthcheck",
        "sticky",
        "network",
        "strategy",
        "scheme",
        "servers_transport",
    }
)
ROUTER_KEYS = frozenset({"name", "priority_class", "hosts", "path_prefix", "middlewares", "service"})
HEALTHCHECK_KEYS = frozenset({"path", "interval", "timeout", "command", "start_period"})
STICKY_KEYS = frozenset({"cookie_name"})
# Traefik's load-balancing strategies; hrw keeps each client address on one server.
STRATEGIES = ("wrr", "p2c", "hrw", "leasttime")
# How Traefik speaks to the servers; https needs a servers transport that trusts them.
SCHEMES = ("http", "https")
TRANSPORT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*@(file|docker)$")

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOST_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
MIDDLEWARE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(@(file|docker|internal))?$")
COOKIE_RE = re.compile(r"^[A-Za-z0-9_!#$%&'*+.^`|~-]+$")


def _fail(service: str, key: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"traefik_labels: service '{service}': key '{key}': {message}")


def _check_keys(service: str, where: str, value: Mapping, allowed: frozenset) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(
            service, where, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _valid_hostname(host: str) -> bool:
    if not isinstance(host, str) or not host or len(host) > 253 or host != host.lower():
        return False
    return all(HOST_LABEL_RE.match(label) for label in host.split("."))


def _hosts(service: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise _fail(service, key, f"must be a list of host names, got {value!r}")
    hosts = list(value)
    if not hosts:
        raise _fail(service, key, "must name at least one host")
    for host in hosts:
        if not _valid_hostname(host):
            raise _fail(service, key, f"invalid host name {host!r} (lower-case RFC 1123 names only)")
    if len(set(hosts)) != len(hosts):
        raise _fail(service, key, f"lists a host twice: {hosts}")
    return hosts


def _paths(service: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list):
        raise _fail(service, key, f"must be a path or a list of paths, got {value!r}")
    for path in paths:
        if not isinstance(path, str) or not PATH_RE.match(path) or "`" in path:
            raise _fail(service, key, f"invalid path prefix {path!r} (must start with '/')")
    return paths


def _middlewares(service: str, key: str, value: Any, known: set[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(service, key, f"must be a list of middleware names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not MIDDLEWARE_RE.match(name):
            raise _fail(service, key, f"invalid middleware name {name!r}")
        if name not in known:
            raise _fail(service, key, f"undefined middleware {name!r}; defined: {', '.join(sorted(known))}")
    return list(value)


def _port(service: str, value: Any) -> int:
    if value is None:
        raise _fail(service, "port", "is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _fail(service, "port", f"must be an integer, got {value!r}")
    try:
        port = int(value)
    except ValueError:
        raise _fail(service, "port", f"must be an integer, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise _fail(service, "port", f"must be between 1 and 65535, got {port}")
    return port


def _priority(service: str, key: str, value: Any) -> int:
    if value not in PRIORITY_CLASSES:
        raise _fail(service, key, f"unknown priority class {value!r}; one of {', '.join(PRIORITY_CLASSES)}")
    return PRIORITY_CLASSES[value]


def _rule(hosts: list[str], paths: list[str]) -> str:
    host_rule = " || ".join(f"Host(`{host}`)" for host in hosts)
    if not paths:
        return host_rule
    path_rule = " || ".join(f"PathPrefix(`{path}`)" for path in paths)
    if len(hosts) > 1:
        host_rule = f"({host_rule})"
    if len(paths) > 1:
        path_rule = f"({path_rule})"
    return f"{host_rule} && {path_rule}"


def _gateway(gateway: Mapping | None) -> dict[str, Any]:
    merged = dict(DEFAULT_GATEWAY)
    if gateway is not None:
        if not isinstance(gateway, Mapping):
            raise AnsibleFilterError(f"traefik_labels: the gateway settings must be a dict, got {gateway!r}")
        unknown = sorted(set(gateway) - set(DEFAULT_GATEWAY))
        if unknown:
            raise AnsibleFilterError(f"traefik_labels: unknown gateway setting(s) {', '.join(unknown)}")
        merged.update(gateway)
    return merged


def traefik_labels(service: Mapping, gateway: Mapping | None = None) -> dict[str, str]:
    """The complete traefik.* label dict of one routed service."""
    if not isinstance(service, Mapping):
        raise AnsibleFilterError(f"traefik_labels: a service spec must be a dict, got {service!r}")
    name = service.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise _fail(str(name), "name", f"invalid service name {name!r} (lower-case letters, digits, '-')")
    _check_keys(name, "(spec)", service, SERVICE_KEYS)
    gw = _gateway(gateway)
    known = set(gw["middlewares"]) | set(gw["extra_middlewares"])
    port = _port(name, service.get("port"))

    if "hosts" in service:
        default_hosts = _hosts(name, "hosts", service["hosts"])
    elif gw["domain"]:
        default_hosts = _hosts(name, "hosts", [f"{name}.{gw['domain']}"])
    else:
        raise _fail(name, "hosts", "is required when the gateway has no domain")
    service_middlewares = _middlewares(name, "middlewares", service.get("middlewares"), known)

    routers = service.get("routers")
    if routers is None:
        routers = [
            {
                "name": service.get("priority_class", "mcp"),
                "priority_class": service.get("priority_class", "mcp"),
                "path_prefix": service.get("path_prefix"),
            }
        ]
    elif not isinstance(routers, list) or not routers:
        raise _fail(name, "routers", "must be a non-empty list")

    network = service.get("network", gw["network"])
    if not isinstance(network, str) or not network:
        raise _fail(name, "network", f"must be a Docker network name, got {network!r}")
    labels: dict[str, str] = {"traefik.enable": "true", "traefik.docker.network": network}
    seen_routers: dict[str, str] = {}
    seen_rules: dict[tuple[str, int], str] = {}
    for index, router in enumerate(routers):
        where = f"routers[{index}]"
        if not isinstance(router, Mapping):
            raise _fail(name, where, f"must be a dict, got {router!r}")
        _check_keys(name, where, router, ROUTER_KEYS)
        suffix = router.get("name")
        if not isinstance(suffix, str) or not NAME_RE.match(suffix):
            raise _fail(name, f"{where}.name", f"invalid router name {suffix!r}")
        router_name = f"{name}-{suffix}"
        if router_name in seen_routers:
            raise _fail(name, f"{where}.name", f"duplicate router name {router_name!r}")
        seen_routers[router_name] = where
        klass = router.get("priority_class", "mcp")
        priority = _priority(name, f"{where}.priority_class", klass)
        hosts = _hosts(name, f"{where}.hosts", router["hosts"]) if "hosts" in router else default_hosts
        paths = _paths(name, f"{where}.path_prefix", router.get("path_prefix"))
        rule = _rule(hosts, paths)
        if (rule, priority) in seen_rules:
            raise _fail(
                name, where, f"same rule and priority as {seen_rules[(rule, priority)]}: {rule} @ {priority}"
            )
        seen_rules[(rule, priority)] = where
        target = router.get("service", name)
        if not isinstance(target, str) or not MIDDLEWARE_RE.match(target):
            raise _fail(name, f"{where}.service", f"invalid service reference {target!r}")
        defaults = list(gw["default_middlewares"].get(klass, []))
        auth_at = next((i for i, m in enumerate(defaults) if m in gw["auth_middlewares"]), len(defaults))
        own = service_middlewares + _middlewares(
            name, f"{where}.middlewares", router.get("middlewares"), known
        )
        middlewares = list(
            dict.fromkeys(defaults[:auth_at] + own + defaults[auth_at:])
        )  # keep order, drop repeats
        prefix = f"traefik.http.routers.{router_name}"
        labels[f"{prefix}.rule"] = rule
        labels[f"{prefix}.entrypoints"] = str(gw["entrypoint"])
        labels[f"{prefix}.priority"] = str(priority)
        labels[f"{prefix}.service"] = target
        labels[f"{prefix}.tls"] = "true"
        if gw["certresolver"]:
            labels[f"{prefix}.tls.certresolver"] = str(gw["certresolver"])
        if middlewares:
            labels[f"{prefix}.middlewares"] = ",".join(middlewares)

    lb = f"traefik.http.services.{name}.loadbalancer"
    labels[f"{lb}.server.port"] = str(port)
    labels.update(
        _transport_labels(name, lb, service.get("scheme", "http"), service.get("servers_transport"))
    )
    labels.update(_healthcheck_labels(name, lb, service.get("healthcheck")))
    labels.update(_sticky_labels(name, lb, service.get("sticky", False), gw["sticky_cookie"]))
    strategy = service.get("strategy")
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise _fail(name, "strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if strategy != "wrr" and f"{lb}.sticky.cookie.name" in labels:
            # Traefik applies a sticky cookie with wrr only: it would be silently ignored.
            raise _fail(name, "strategy", f"{strategy} and a sticky cookie exclude each other")
        labels[f"{lb}.strategy"] = strategy
    return labels


def _transport_labels(name: str, lb: str, scheme: Any, transport: Any) -> dict[str, str]:
    """server.scheme and serverstransport: https to a server whose certificate a servers
    transport of the file provider trusts (its CA and name); never https with Go's default
    trust, which knows no private CA."""
    if scheme not in SCHEMES:
        raise _fail(name, "scheme", f"must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if transport is None:
        if scheme == "https":
            raise _fail(name, "servers_transport", "is required with scheme https (<name>@file)")
        return {}
    if not isinstance(transport, str) or not TRANSPORT_RE.match(transport):
        raise _fail(name, "servers_transport", f"must be <name>@file or <name>@docker, got {transport!r}")
    return {f"{lb}.server.scheme": scheme, f"{lb}.serverstransport": transport}


def _healthcheck_labels(name: str, lb: str, healthcheck: Any) -> dict[str, str]:
    if healthcheck is None:
        return {}
    if not isinstance(healthcheck, Mapping):
        raise _fail(name, "healthcheck", f"must be a dict, got {healthcheck!r}")
    _check_keys(name, "healthcheck", healthcheck, HEALTHCHECK_KEYS)
    if "path" not in healthcheck:
        raise _fail(name, "healthcheck.path", "is required")
    path = healthcheck["path"]
    if not isinstance(path, str) or not PATH_RE.match(path):
        raise _fail(name, "healthcheck.path", f"invalid path {path!r} (must start with '/')")
    labels = {f"{lb}.healthcheck.path": path}
    for key, default in (("interval", "10s"), ("timeout", "3s")):
        value = healthcheck.get(key, default)
        if not isinstance(value, str) or not DURATION_RE.match(value):
            raise _fail(name, f"healthcheck.{key}", f"invalid duration {value!r} (for example 10s, 500ms)")
        labels[f"{lb}.healthcheck.{key}"] = value
    return labels


def _sticky_labels(name: str, lb: str, sticky: Any, default_cookie: str) -> dict[str, str]:
    if sticky is False or sticky is None:
        return {}
    if sticky is True:
        cookie = default_cookie
    elif isinstance(sticky, Mapping):
        _check_keys(name, "sticky", sticky, STICKY_KEYS)
        cookie = sticky.get("cookie_name", default_cookie)
    else:
        raise _fail(name, "sticky", f"must be true, false or a dict with cookie_name, got {sticky!r}")
    if not isinstance(cookie, str) or not COOKIE_RE.match(cookie):
        raise _fail(name, "sticky.cookie_name", f"invalid cookie name {cookie!r}")
    prefix = f"{lb}.sticky.cookie"
    return {
        f"{prefix}.name": cookie,
        f"{prefix}.secure": "true",
        f"{prefix}.httponly": "true",
        f"{prefix}.samesite": "lax",
    }


def _routers_of(labels: Mapping[str, str]) -> dict[str, dict[str, str]]:
    routers: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        if key.startswith("traefik.http.routers."):
            router, _, field = key[len("traefik.http.routers.") :].partition(".")
            routers.setdefault(router, {})[field] = value
    return routers


def traefik_labels_check(label_sets: Any) -> Any:
    """Check label dicts of several services together; returns them unchanged.

    Accepts a list of label dicts, or a dict of service name to label dict. Raises on a
    router name used twice, and on two routers with the same rule and priority.
    """
    if isinstance(label_sets, Mapping):
        items = list(label_sets.items())
    elif isinstance(label_sets, list):
        items = [(f"#{index}", labels) for index, labels in enumerate(label_sets)]
    else:
        raise AnsibleFilterError(
            f"traefik_labels_check: expected a list or dict of label dicts, got {label_sets!r}"
        )
    owners: dict[str, str] = {}
    rules: dict[tuple[str, str], str] = {}
    for owner, labels in items:
        if not isinstance(labels, Mapping):
            raise AnsibleFilterError(f"traefik_labels_check: labels of {owner} must be a dict")
        for router, fields in _routers_of(labels).items():
            if router in owners:
                raise AnsibleFilterError(
                    f"traefik_labels_check: service '{owner}': key 'routers': router name {router!r} "
                    f"is also defined by {owners[router]}"
                )
            owners[router] = str(owner)
            key = (fields.get("rule", ""), fields.get("priority", ""))
            if key in rules:
                raise AnsibleFilterError(
                    f"traefik_labels_check: service '{owner}': key 'routers': router {router!r} has the same "
                    f"rule and priority as router {rules[key]!r}: {key[0]} @ {key[1]}"
                )
            rules[key] = router
    return label_sets
