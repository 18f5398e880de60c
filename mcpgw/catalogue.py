"""The MCP service catalogue: validated, defaults filled, and what other roles need of it.

The filters mcp_services_normalize, mcp_services_resources, mcp_services_label_spec and
mcp_services_compose (filter_plugins/mcp_services.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

KEYS = frozenset(
    {
        "name",
        "hosts",
        "image",
        "source",
        "build_context",
        "archive",
        "build_args",
        "command",
        "port",
        "path",
        "replicas",
        "environment",
        "healthcheck",
        "sticky",
        "middlewares",
        "allowed_users",
        "allowed_groups",
        "state",
    }
)
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SOURCES = ("build", "registry", "archive")


def _fail(name: str, key: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"mcp_services: entry '{name}': key '{key}': {message}")


def _list_of_str(name: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(name, key, f"must be a list of strings, got {value!r}")
    return list(value)


def mcp_services_normalize(catalogue: Any, domain: str) -> list[dict[str, Any]]:
    if catalogue is None:
        return []
    if not isinstance(catalogue, list):
        raise AnsibleFilterError(f"mcp_services: must be a list, got {type(catalogue).__name__}")
    seen: set[str] = set()
    hosts_seen: dict[str, str] = {}
    result = []
    for index, entry in enumerate(catalogue):
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError(f"mcp_services: entry #{index} must be a dict, got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _fail(str(name), "name", f"invalid name {name!r} (lower-case letters, digits, '-')")
        if name in seen:
            raise _fail(name, "name", "is used by two entries")
        seen.add(name)
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise _fail(name, "(entry)", f"unknown key(s) {', '.join(unknown)}")
        state = entry.get("state", "present")
        if state not in ("present", "absent"):
            raise _fail(name, "state", f"must be present or absent, got {state!r}")
        source = entry.get("source", "build" if "build_context" in entry else "registry")
        if source not in SOURCES:
            raise _fail(name, "source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
        image = entry.get("image", f"mcpgw/{name}:latest")
        if state == "present":
            if source == "build" and not entry.get("build_context"):
                raise _fail(name, "build_context", "is required with source build")
            if source == "archive" and not entry.get("archive"):
                raise _fail(name, "archive", "is required with source archive")
            if source == "registry" and "image" not in entry:
                raise _fail(name, "image", "is required with source registry")
        port = entry.get("port", 8000)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _fail(name, "port", f"must be an integer between 1 and 65535, got {port!r}")
        replicas = entry.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise _fail(name, "replicas", f"must be a positive integer, got {replicas!r}")
        path = entry.get("path", "/mcp")
        if not isinstance(path, str) or not path.startswith("/"):
            raise _fail(name, "path", f"must start with '/', got {path!r}")
        hosts = _list_of_str(name, "hosts", entry.get("hosts")) or [f"{name}.{domain}"]
        for host in hosts:
            if host in hosts_seen and state == "present":
                raise _fail(name, "hosts", f"host {host!r} is also served by entry '{hosts_seen[host]}'")
            hosts_seen[host] = name
        environment = entry.get("environment", {})
        if not isinstance(environment, Mapping):
            raise _fail(name, "environment", f"must be a dict, got {environment!r}")
        command = entry.get("command")
        if command is not None and not (
            isinstance(command, str)
            or (isinstance(command, list) and all(isinstance(c, str) for c in command))
        ):
            raise _fail(name, "command", f"must be a string or a list of strings, got {command!r}")
        result.append(
            {
                "name": name,
                "state": state,
                "hosts": hosts,
                "image": image,
                "source": source,
                "build_context": entry.get("build_context", ""),
                "archive": entry.get("archive", ""),
                "build_args": dict(entry.get("build_args", {})),
                "command": command,
                "port": port,
                "path": path,
                "replicas": replicas,
                "environment": {str(k): str(v) for k, v in environment.items()},
                "healthcheck": entry.get("healthcheck"),
                "sticky": entry.get("sticky", False),
                "middlewares": _list_of_str(name, "middlewares", entry.get("middlewares")),
                "allowed_users": _list_of_str(name, "allowed_users", entry.get("allowed_users")),
                "allowed_groups": _list_of_str(name, "allowed_groups", entry.get("allowed_groups")),
            }
        )
    return result


def mcp_services_resources(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The auth service's resources: one per host of every present service."""
    return [
        {
            "host": host,
            "path": service["path"],
            "allowed_users": service["allowed_users"],
            "allowed_groups": service["allowed_groups"],
        }
        for service in services
        if service["state"] == "present"
        for host in service["hosts"]
    ]


def mcp_services_label_spec(service: dict[str, Any]) -> dict[str, Any]:
    """The traefik_labels spec of a service: the MCP route (priority 2) and a catch-all (1)."""
    spec: dict[str, Any] = {
        "name": service["name"],
        "port": service["port"],
        "hosts": service["hosts"],
        "middlewares": service["middlewares"],
        "routers": [
            {"name": "mcp", "priority_class": "mcp", "path_prefix": service["path"]},
            {"name": "catchall", "priority_class": "catchall"},
        ],
        "sticky": service["sticky"],
    }
    if service.get("healthcheck"):
        spec["healthcheck"] = service["healthcheck"]
    return spec


# A replica with this file is draining (playbooks/rollout.yml): its Docker health check
# fails, so Traefik's Docker provider stops sending it new requests.
DRAIN_MARKER = "/tmp/mcp-gateway-drain"  # noqa: S108 -- inside the container


def docker_healthcheck(port: int, healthcheck: Mapping[str, Any], name: str = "") -> dict[str, Any]:
    """A Docker health check that probes http://127.0.0.1:<port><path> inside the container
    (or runs healthcheck.command) and fails while the replica drains. Traefik's Docker
    provider routes only to healthy containers: new replicas get traffic once they answer,
    draining ones stop getting it."""
    command = healthcheck.get("command")
    if command is None:
        url = f"http://127.0.0.1:{port}{healthcheck['path']}"
        command = (
            'python3 -c "import sys, urllib.request; '
            f"sys.exit(urllib.request.urlopen('{url}', timeout=5).status != 200)\""
        )
    elif not isinstance(command, str) or not command.strip():
        raise _fail(name, "healthcheck.command", f"must be a shell command (a string), got {command!r}")
    if not isinstance(healthcheck.get("path", "/"), str):
        raise _fail(name, "healthcheck.path", f"must be a path, got {healthcheck.get('path')!r}")
    # Generous: a probe that starts a Python interpreter on a busy host may take seconds, and
    # a replica that flaps out of Traefik is a failed request. (Traefik's own probe keeps
    # healthcheck.timeout.) A drain takes retries x interval.
    return {
        "test": ["CMD-SHELL", f"test ! -e {DRAIN_MARKER} && {command}"],
        "interval": str(healthcheck.get("interval", "10s")),
        "timeout": "10s",
        "retries": 3,
        "start_period": str(healthcheck.get("start_period", "30s")),
    }


def mcp_services_compose(service: dict[str, Any], labels: Mapping[str, str], network: str) -> dict[str, Any]:
    """The Compose project of one catalogue entry: its replicas on the gateway's public
    network, routed by `labels` (traefik_labels of mcp_services_label_spec)."""
    container: dict[str, Any] = {
        "image": service["image"],
        "restart": "unless-stopped",
        "environment": service["environment"],
        "deploy": {"replicas": service["replicas"]},
        "networks": [network],
        "labels": dict(labels),
        "security_opt": ["no-new-privileges:true"],
    }
    if service["command"]:
        container["command"] = service["command"]
    if service.get("healthcheck"):
        container["healthcheck"] = docker_healthcheck(
            service["port"], service["healthcheck"], service["name"]
        )
    return {
        "name": f"mcp-{service['name']}",
        "services": {"server": container},
        "networks": {network: {"external": True}},
    }
