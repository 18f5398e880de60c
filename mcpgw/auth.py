"""Parts of the auth service's config.json that the auth role computes (filter auth_resource_servers)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ansible.errors import AnsibleFilterError

MIN_SECRET = 32
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
KEYS = frozenset({"client_id", "client_secret", "client_secret_sha256", "resources"})


def _fail(index: int, name: Any, key: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"auth_resource_servers: entry {index} ({name!r}): key '{key}': {message}")


def auth_resource_servers(servers: Any) -> list[dict[str, Any]]:
    if servers is None:
        return []
    if not isinstance(servers, list):
        raise AnsibleFilterError(f"auth_resource_servers: must be a list, got {type(servers).__name__}")
    result = []
    for index, entry in enumerate(servers):
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"auth_resource_servers: entry {index} must be a dict")
        name = entry.get("client_id")
        for key in entry:
            if key not in KEYS:
                raise _fail(index, name, key, "is not a known key (client_id, client_secret, resources)")
        if not isinstance(name, str) or not name:
            raise _fail(index, name, "client_id", "is required")
        secret, digest = entry.get("client_secret"), entry.get("client_secret_sha256")
        if digest:
            if not isinstance(digest, str) or not SHA256_HEX.match(digest):
                raise _fail(index, name, "client_secret_sha256", "must be 64 hexadecimal digits")
            digest = digest.lower()
        elif isinstance(secret, str) and len(secret) >= MIN_SECRET:
            digest = hashlib.sha256(secret.encode()).hexdigest()
        else:
            raise _fail(index, name, "client_secret", f"is required, at least {MIN_SECRET} random characters")
        resources = entry.get("resources")
        if not isinstance(resources, list) or not resources or not all(isinstance(r, str) for r in resources):
            raise _fail(index, name, "resources", "must be a non-empty list of resource URLs or hosts")
        result.append({"client_id": name, "client_secret_sha256": digest, "resources": list(resources)})
    return result
