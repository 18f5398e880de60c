"""Ansible's entry point of the auth_resource_servers filter; the logic is mcpgw.auth (unit-tested
there), the documentation in auth_resource_servers.yml beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.auth import auth_resource_servers


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"auth_resource_servers": auth_resource_servers}
