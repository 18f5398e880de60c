"""The MCP service catalogue: validated, defaults filled, and what other roles need of it.

The filters mcp_services_normalize, mcp_services_resources, mcp_services_label_spec,
mcp_services_compose, mcp_services_package_image and mcp_services_secrets_env
(filter_plugins/mcp_services.py).

An entry runs an image (`image`, `source`, ...) or a package: `package: {npm: <name>@<version>}`
or `{pypi: <name>==<version>}`, a stdio MCP server the mcp_services role builds into an image
(roles/mcp_services/templates/package/Dockerfile.j2) behind one stdio to streamable-HTTP bridge
(supergateway, pinned by roles/mcp_services/files/package-bridge/package-lock.json).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import shlex
import zipfile
from collections.abc import Mapping
from pathlib import Path
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
        "package",
        "stateful",
        "volumes",
    }
)
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SOURCES = ("build", "registry", "archive", "local")

# -- package entries --------------------------------------------------------------------------
PACKAGE_KEYS = frozenset({"npm", "pypi", "bin", "args", "env", "secrets", "log_level", "session_timeout"})
# What a package entry has instead: its image is built by the role, its command is the bridge's.
NOT_WITH_PACKAGE = {
    "image": "the role names it mcp-package/<name>:<hash of the package spec>",
    "build_context": "the role writes the build context",
    "build_args": "the role writes the build context",
    "archive": "the role writes it (mcp_services_package_build_dir)",
    "command": "use package.args (the server's arguments)",
    "environment": "use package.env (and package.secrets for secret values)",
}
NPM_NAME = r"(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*"
SEMVER = r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
NPM_PINNED_RE = re.compile(rf"^(?P<name>{NPM_NAME})@(?P<version>{SEMVER})$")
NPM_NAME_RE = re.compile(rf"^(?P<name>{NPM_NAME})(?:@.*)?$")
PYPI_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
PYPI_PINNED_RE = re.compile(
    rf"^(?P<name>{PYPI_NAME})(?P<extras>\[[A-Za-z0-9._-]+(?:,[A-Za-z0-9._-]+)*\])?"
    r"==(?P<version>[0-9][0-9A-Za-z.+!_-]*)$"
)
PYPI_NAME_RE = re.compile(rf"^\s*(?P<name>{PYPI_NAME})")
# kind -> (pinned spec, name in any spec, the pin's operator, how to look up the versions)
PINNING = {
    "npm": (NPM_PINNED_RE, NPM_NAME_RE, "@", "npm view {} version"),
    "pypi": (PYPI_PINNED_RE, PYPI_NAME_RE, "==", "pip index versions {}"),
}
BIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOG_LEVELS = ("none", "info", "debug")
# The bridge's fixed parts: where it answers its health check, the server's uid in the image.
PACKAGE_HEALTH_PATH = "/healthz"
PACKAGE_UID = 10100
# Where the server finds its secrets: the entrypoint exports the file's variables.
PACKAGE_SECRETS_PATH = "/run/secrets/mcp-package.env"
PACKAGE_SESSION_TIMEOUT = 1800
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fail(name: str, key: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"mcp_services: entry '{name}': key '{key}': {message}")


def _list_of_str(name: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(name, key, f"must be a list of strings, got {value!r}")
    return list(value)


def _string_dict(name: str, key: str, value: Any) -> dict[str, str]:
    """A dict of environment variable names to scalar values, as strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(name, key, f"must be a dict of variable names to values, got {type(value).__name__}")
    result = {}
    for variable, item in value.items():
        if not isinstance(variable, str) or not ENV_NAME_RE.match(variable):
            raise _fail(name, key, f"invalid variable name {variable!r} (letters, digits, '_')")
        if isinstance(item, (Mapping, list)) or item is None:
            raise _fail(name, f"{key}.{variable}", "must be a string, a number or a boolean")
        result[variable] = str(item).lower() if isinstance(item, bool) else str(item)
    return result


def _pinned(name: str, package: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(kind, spec, package name, version) of a package entry, refusing anything unpinned."""
    kinds = [kind for kind in ("npm", "pypi") if kind in package]
    if len(kinds) != 1:
        raise _fail(name, "package", "must name exactly one of npm and pypi")
    kind = kinds[0]
    spec = package[kind]
    key = f"package.{kind}"
    if not isinstance(spec, str):
        raise _fail(name, key, f"must be a string, got {spec!r}")
    pinned_re, name_re, pin, versions = PINNING[kind]
    match = pinned_re.match(spec)
    if not match:
        found = name_re.match(spec)
        package_name = found.group("name") if found else "<package>"
        raise _fail(
            name,
            key,
            f"{spec!r} is not pinned to an exact version: write {package_name}{pin}<version> "
            f"(see `{versions.format(package_name)}`)",
        )
    return kind, spec, match.group("name"), match.group("version")


def _package(name: str, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The normalized `package` of an entry (None for an image entry). Secret values stay out:
    only their names are kept (mcp_services_secrets_env reads the values where they are written)."""
    package = entry.get("package")
    if package is None:
        return None
    if not isinstance(package, Mapping):
        raise _fail(name, "package", f"must be a dict with npm or pypi, got {package!r}")
    unknown = sorted(set(package) - PACKAGE_KEYS)
    if unknown:
        raise _fail(
            name,
            "package",
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PACKAGE_KEYS))}",
        )
    for key, why in NOT_WITH_PACKAGE.items():
        if key in entry:
            raise _fail(name, key, f"is not used with package: {why}")
    kind, spec, package_name, version = _pinned(name, package)
    binary = package.get("bin", "")
    if binary and (not isinstance(binary, str) or not BIN_RE.match(binary)):
        raise _fail(name, "package.bin", f"must be the name of an executable of the package, got {binary!r}")
    args = _list_of_str(name, "package.args", package.get("args"))
    env = _string_dict(name, "package.env", package.get("env"))
    secrets = package.get("secrets") or {}
    if not isinstance(secrets, Mapping):
        raise _fail(name, "package.secrets", "must be a dict of variable names to values (from a vault)")
    for variable in secrets:
        if not isinstance(variable, str) or not ENV_NAME_RE.match(variable):
            raise _fail(name, "package.secrets", f"invalid variable name {variable!r} (letters, digits, '_')")
        if variable in env:
            raise _fail(name, "package.secrets", f"{variable} is also in package.env")
    log_level = package.get("log_level", "none")
    if log_level not in LOG_LEVELS:
        raise _fail(name, "package.log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    timeout = package.get("session_timeout", PACKAGE_SESSION_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise _fail(name, "package.session_timeout", f"must be a positive number of seconds, got {timeout!r}")
    return {
        "kind": kind,
        "spec": spec,
        "name": package_name,
        "version": version,
        "bin": binary,
        "args": args,
        "env": env,
        "secret_names": sorted(secrets),
        "log_level": log_level,
        "session_timeout": timeout,
        # Fixed by the role; here so that the template and the tasks read one definition.
        "uid": PACKAGE_UID,
        "secrets_path": PACKAGE_SECRETS_PATH,
    }


def _volumes(name: str, value: Any) -> list[str]:
    """Compose short-syntax volumes: <named volume or /host/path>:</container/path>[:ro|:rw]."""
    volumes = _list_of_str(name, "volumes", value)
    for volume in volumes:
        parts = volume.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise _fail(name, "volumes", f"{volume!r} must be <volume or /host/path>:</path>[:ro]")
        source, target = parts[0], parts[1]
        if not target.startswith("/"):
            raise _fail(name, "volumes", f"{volume!r}: the path in the container must be absolute")
        if not (source.startswith("/") or VOLUME_NAME_RE.match(source)):
            raise _fail(
                name, "volumes", f"{volume!r}: the source must be a volume name or an absolute host path"
            )
    return volumes


def _affinity(name: str, entry: Mapping[str, Any], stateful: bool, replicas: int) -> tuple[Any, str]:
    """(sticky, strategy) of an entry. A server that keeps sessions in memory, with more than
    one replica, needs every request of a session on the replica that holds it: a sticky
    cookie when asked for, else Traefik's hrw strategy (the client's address decides, which
    works for clients that keep no cookies, the official TypeScript SDK among them)."""
    sticky = entry.get("sticky", False)
    if not stateful or replicas == 1:
        return sticky, ""
    if "sticky" not in entry:
        return False, "hrw"
    if sticky is False or sticky is None:
        raise _fail(
            name,
            "sticky",
            f"a stateful server with {replicas} replicas needs every request of a session on one replica: "
            "leave sticky out (each client address then stays on one replica), set sticky: true "
            "(a cookie), or set replicas: 1",
        )
    return sticky, ""


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
        package = _package(name, entry)
        default_source = "build" if "build_context" in entry or package else "registry"
        source = entry.get("source", default_source)
        if source not in SOURCES:
            raise _fail(name, "source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
        if package and source in ("registry", "local"):
            raise _fail(name, "source", "a package entry's image is built: build (on the host) or archive")
        image = "" if package else entry.get("image", f"mcpgw/{name}:latest")
        if state == "present":
            if source == "build" and not package and not entry.get("build_context"):
                raise _fail(name, "build_context", "is required with source build")
            if source == "archive" and not package and not entry.get("archive"):
                raise _fail(name, "archive", "is required with source archive")
            if source in ("registry", "local") and "image" not in entry:
                raise _fail(name, "image", f"is required with source {source}")
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
        stateful = entry.get("stateful", package is not None)
        if not isinstance(stateful, bool):
            raise _fail(name, "stateful", f"must be true or false, got {stateful!r}")
        sticky, strategy = _affinity(name, entry, stateful, replicas)
        healthcheck = entry.get("healthcheck")
        if package and healthcheck is None:
            healthcheck = {"path": PACKAGE_HEALTH_PATH, "interval": "10s", "timeout": "3s"}
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
                "healthcheck": healthcheck,
                "sticky": sticky,
                "stateful": stateful,
                "strategy": strategy,
                "package": package,
                "volumes": _volumes(name, entry.get("volumes")),
                "middlewares": _list_of_str(name, "middlewares", entry.get("middlewares")),
                "allowed_users": _list_of_str(name, "allowed_users", entry.get("allowed_users")),
                "allowed_groups": _list_of_str(name, "allowed_groups", entry.get("allowed_groups")),
                # Its own network, which only Traefik shares: services reach neither each other
                # nor the auth service. The Compose project has the same name.
                "network": f"mcp-{name}",
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
        "network": service["network"],
    }
    if service.get("strategy"):
        spec["strategy"] = service["strategy"]
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
    package = service.get("package")
    volumes = list(service.get("volumes") or [])
    if package:
        container["environment"] = dict(package["env"])
        container["command"] = package_bridge_command(service)
        if package["secret_names"]:
            volumes.append(f"./secrets.env:{PACKAGE_SECRETS_PATH}:ro")
    healthcheck = service.get("healthcheck")
    if healthcheck:
        if package and healthcheck.get("command") is None:
            # A package image has Node.js (the bridge), not always Python.
            url = f"http://127.0.0.1:{service['port']}{healthcheck['path']}"
            probe = f"fetch('{url}').then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"
            healthcheck = {**healthcheck, "command": f'node -e "{probe}"'}
        container["healthcheck"] = docker_healthcheck(service["port"], healthcheck, service["name"])
    definition: dict[str, Any] = {
        "name": f"mcp-{service['name']}",
        "services": {"server": container},
        "networks": {network: {"external": True}},
    }
    if volumes:
        container["volumes"] = volumes
        named = sorted({v.split(":")[0] for v in volumes if not v.startswith((".", "/"))})
        if named:
            definition["volumes"] = {volume: {} for volume in named}
    return definition


def package_bridge_command(service: Mapping[str, Any]) -> list[str]:
    """The bridge's arguments: the stdio server's command line (run by a shell, so quoted),
    and the HTTP side (port, MCP path, health check, sessions, logging)."""
    package = service["package"]
    command = ["--stdio", shlex.join(["mcp-server", *package["args"]]), "--outputTransport", "streamableHttp"]
    command += ["--port", str(service["port"]), "--streamableHttpPath", service["path"]]
    command += ["--healthEndpoint", PACKAGE_HEALTH_PATH, "--logLevel", package["log_level"]]
    if service["stateful"]:
        # One server process per MCP session, ended after this long without a request.
        command += ["--stateful", "--sessionTimeout", str(package["session_timeout"] * 1000)]
    return command


def mcp_services_package_image(service: Mapping[str, Any], recipe: str) -> dict[str, Any]:
    """A package entry with its image name: mcp-package/<name>:<tag>, the tag a hash of what
    the image is built from (the package spec and executable, and `recipe`: the role's
    Dockerfile template, bridge lock file and wheel platforms). The image is built again only
    when one of them changes. Other entries come back unchanged."""
    package = service.get("package")
    if not package:
        return dict(service)
    if not isinstance(recipe, str) or not recipe:
        raise AnsibleFilterError("mcp_services_package_image: recipe must be a non-empty string")
    inputs = {key: package[key] for key in ("kind", "spec", "bin", "uid")} | {"recipe": recipe}
    tag = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    return {**service, "image": f"mcp-package/{service['name']}:{tag}"}


def mcp_services_secrets_env(catalogue: Any, name: str) -> str:
    """The secrets of the package entry `name`, read from the catalogue as written in the
    inventory (the values never pass through gateway_settings), as the file the image's
    entrypoint exports: one NAME='value' line each, shell-quoted. Empty without secrets."""
    for entry in catalogue or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            secrets = (entry.get("package") or {}).get("secrets") or {}
            lines = []
            for variable in sorted(secrets):
                value = secrets[variable]
                if isinstance(value, (Mapping, list)) or value is None:
                    raise _fail(name, f"package.secrets.{variable}", "must be a string")
                lines.append(f"{variable}={shlex.quote(str(value))}\n")
            return "".join(lines)
    raise AnsibleFilterError(f"mcp_services_secrets_env: no entry named {name!r}")


def _executables(service: Mapping[str, Any], context: Path) -> list[str]:
    """The executables a downloaded package declares: npm's `bin`, or the wheel's console scripts."""
    package = service["package"]
    where = f"mcp_services_package_bin: entry '{service['name']}'"
    if package["kind"] == "npm":
        manifest = context / "server" / "node_modules" / package["name"] / "package.json"
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as error:
            raise AnsibleFilterError(f"{where}: cannot read {manifest}: {error}") from None
        bins = data.get("bin") or {}
        if isinstance(bins, str):  # "bin": "cli.js" names the command after the package
            bins = {package["name"].rsplit("/", 1)[-1]: bins}
        return sorted(bins)
    normalized = re.sub(r"[-_.]+", "_", package["name"]).lower()
    wheels = [
        wheel
        for wheel in sorted((context / "wheels").glob("*.whl"))
        if re.sub(r"[-_.]+", "_", wheel.name.split("-", 1)[0]).lower() == normalized
    ]
    if not wheels:
        raise AnsibleFilterError(f"{where}: no wheel of {package['name']} in {context / 'wheels'}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
        if not names:
            return []
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # script names are case-sensitive
        parser.read_string(wheel.read(names[0]).decode())
    return sorted(parser["console_scripts"]) if parser.has_section("console_scripts") else []


def mcp_services_package_bin(service: Mapping[str, Any], context: str) -> str:
    """The executable that starts a package entry's stdio server, from the package downloaded
    into the build context `context` on the controller: package.bin when set (it must be one
    the package declares), else the only one, else the one named like the package (as npx and
    uvx choose). Raises naming the entry and package.bin when the choice is not clear."""
    package = service["package"]
    found = _executables(service, Path(context))
    unscoped = package["name"].rsplit("/", 1)[-1]
    choice = package["bin"]
    if choice:
        if choice not in found:
            raise _fail(
                service["name"],
                "package.bin",
                f"{package['name']} has no executable {choice!r}; it has: {', '.join(found) or 'none'}",
            )
        return choice
    if len(found) == 1:
        return found[0]
    for candidate in (unscoped, unscoped.lower()):
        if candidate in found:
            return candidate
    raise _fail(
        service["name"],
        "package.bin",
        f"{package['name']} has {'no executable' if not found else 'the executables ' + ', '.join(found)}: "
        "name the one that starts the stdio server",
    )
