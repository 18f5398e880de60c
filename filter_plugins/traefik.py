"""Ansible's entry point of the traefik_project_files filter; the logic is mcpgw.traefik
(unit-tested there), the documentation in traefik_project_files.yml beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.traefik import traefik_project_files


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"traefik_project_files": traefik_project_files}
