"""Ansible's entry point of the traefik_labels filters; the logic is mcpgw.labels (unit-tested
there), the documentation in traefik_labels.yml and traefik_labels_check.yml beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.labels import traefik_labels, traefik_labels_check


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"traefik_labels": traefik_labels, "traefik_labels_check": traefik_labels_check}
