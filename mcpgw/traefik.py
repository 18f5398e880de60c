"""Traefik's files, as the compose role writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


def _yaml(data: Any) -> str:
    # What to_nice_yaml(indent=2, sort_keys=true) gives, without Ansible's tagged types.
    return yaml.safe_dump(_plain(data), indent=2, sort_keys=True, default_flow_style=False, width=160)


def _plain(data: Any) -> Any:
    """Plain Python types (Ansible hands filters subclasses of str, int, ... that PyYAML's
    safe dumper does not know)."""
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    if data is None:
        return None
    for kind in (bool, int, float):
        if isinstance(data, kind):
            return kind(data)
    return str(data)


def traefik_project_files(static: Mapping, dynamic: Mapping, secret: bool) -> list[dict[str, Any]]:
    """The static configuration (read at start: a change restarts Traefik) and the dynamic
    files (the file provider reloads them: no restart), 0600 since they may hold hashes."""
    files = [{"name": "traefik.yml", "content": _yaml(static), "mode": "0644", "restarts": ["traefik"]}]
    for name, content in dynamic.items():
        files.append(
            {
                "name": f"dynamic/{name}",
                "content": _yaml(content),
                "mode": "0600",
                "secret": secret,
                "restarts": [],
            }
        )
    return files
