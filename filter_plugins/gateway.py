"""Ansible's entry point of the gateway_settings, docker_archive_image_* and compose_* filters;
the logic is mcpgw.settings, mcpgw.images and mcpgw.compose (unit-tested there), the
documentation in the .yml files of the same names beside this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcpgw.compose import compose_files_plan, compose_images_plan, compose_project_running
from mcpgw.images import docker_archive_image_id, docker_archive_image_tags
from mcpgw.settings import gateway_settings


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "gateway_settings": gateway_settings,
            "docker_archive_image_id": docker_archive_image_id,
            "docker_archive_image_tags": docker_archive_image_tags,
            "compose_images_plan": compose_images_plan,
            "compose_project_running": compose_project_running,
            "compose_files_plan": compose_files_plan,
        }
