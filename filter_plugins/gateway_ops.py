"""Ansible's entry point of the day-2 filters; the logic is mcpgw.ops (unit-tested there),
the documentation in acme_certificates.yml, acme_certificates_table.yml,
acme_without_certificates.yml, gateway_status.yml and
traefik_service_servers.yml beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.ops import (
    acme_certificates,
    acme_certificates_table,
    acme_without_certificates,
    gateway_status,
    traefik_service_servers,
)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "acme_certificates": acme_certificates,
            "acme_certificates_table": acme_certificates_table,
            "acme_without_certificates": acme_without_certificates,
            "gateway_status": gateway_status,
            "traefik_service_servers": traefik_service_servers,
        }
