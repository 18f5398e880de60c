"""Ansible's entry point of the catalogue filters; the logic is mcpgw.catalogue (unit-tested
there), the documentation in mcp_services_*.yml beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.catalogue import (
    docker_healthcheck,
    mcp_services_compose,
    mcp_services_label_spec,
    mcp_services_normalize,
    mcp_services_package_bin,
    mcp_services_package_image,
    mcp_services_resources,
    mcp_services_secrets_env,
)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "mcp_services_normalize": mcp_services_normalize,
            "mcp_services_resources": mcp_services_resources,
            "mcp_services_label_spec": mcp_services_label_spec,
            "mcp_services_compose": mcp_services_compose,
            "mcp_services_package_image": mcp_services_package_image,
            "mcp_services_package_bin": mcp_services_package_bin,
            "mcp_services_secrets_env": mcp_services_secrets_env,
            "docker_healthcheck": docker_healthcheck,
        }
