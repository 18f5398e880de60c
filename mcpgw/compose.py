"""What the compose role decides on the controller: which images the host lacks, which
files differ, whether a project runs as asked. From one look-up each on the host."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from .images import docker_archive_image_id


def _reference(name: str) -> str:
    """A reference as Docker reads it: no tag means :latest (a digest stays as it is)."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in name else f"{name}:latest"


def compose_images_plan(images: list[dict[str, Any]], host_images: list[dict[str, Any]]) -> dict[str, list]:
    """What to do so that every image of a project is on the host, from one look-up of the
    host's images (community.docker.docker_image_info): registry images to pull, archives
    to copy and load (their image ID differs from the host's, or the host lacks the name),
    and images to build (their context decides, see the compose role)."""
    on_host: dict[str, str] = {}
    for image in host_images or []:
        for tag in image.get("RepoTags") or []:
            on_host[tag] = image["Id"]
    plan: dict[str, list] = {"pull": [], "archives": [], "builds": []}
    for image in images:
        source = image.get("source", "registry")
        reference = _reference(image["name"])
        if source == "registry":
            if image.get("pull_always") or reference not in on_host:
                plan["pull"].append(image)
        elif source == "archive":
            if on_host.get(reference) != docker_archive_image_id(image["archive"]):
                plan["archives"].append(image)
        elif source == "build":
            plan["builds"].append(image)
        else:
            raise AnsibleFilterError(f"compose_images_plan: image {image['name']}: unknown source {source!r}")
    return plan


def compose_project_running(definition: dict[str, Any], containers: list[dict[str, Any]]) -> bool:
    """Whether every service of a Compose project runs as many containers as it asks for,
    each running and, where it has a health check, healthy — from one listing of the host's
    containers (docker_host_info, verbose, filtered by the project's label). When it does and
    none of the project's inputs changed, `docker compose up` has nothing to do."""
    project = definition.get("name")
    by_service: dict[str, list[dict[str, Any]]] = {}
    for container in containers or []:
        labels = container.get("Labels") or {}
        if labels.get("com.docker.compose.project") != project:
            continue
        by_service.setdefault(labels.get("com.docker.compose.service", ""), []).append(container)
    for name, service in (definition.get("services") or {}).items():
        wanted = int(((service or {}).get("deploy") or {}).get("replicas", 1))
        running = [
            c for c in by_service.get(name, [])
            if c.get("State") == "running" and "(unhealthy)" not in (c.get("Status") or "")
            and "(health: starting)" not in (c.get("Status") or "")
        ]  # fmt: skip
        if len(running) != wanted or len(by_service.get(name, [])) != wanted:
            return False
    return True


def _matches(wanted: Any, name: Any, number: Any) -> bool:
    return wanted in (None, "") or str(wanted) in (str(name), str(number))


def compose_files_plan(
    files: list[dict[str, Any]], listing: Mapping[str, Any], directory: str, directories: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The directories to make and the files to write, from one listing of the project's
    directory on the host (the result of ansible.builtin.find: recursive, any file type,
    checksums): a file whose content, mode and owner are right is not touched, so that a
    no-op needs no round trip per file; one changed by hand is written again."""
    base = directory.rstrip("/")
    on_host = {item["path"]: item for item in listing.get("files") or []}
    missing_base = base in (listing.get("skipped_paths") or {})
    make = [{"path": base, "mode": None}] if missing_base else []
    for wanted in directories or []:
        path = f"{base}/{wanted['path'].strip('/')}"
        if missing_base or on_host.get(path, {}).get("isdir") is not True:
            make.append({"path": path, "mode": wanted.get("mode"), "owner": wanted.get("owner")})
    write = []
    for file in files:
        have = on_host.get(f"{base}/{file['name']}")
        content = file["content"]
        if not isinstance(content, str):
            raise AnsibleFilterError(f"compose_files_plan: {file['name']}: content must be text")
        if (
            have is None
            or have.get("checksum") != hashlib.sha1(content.encode()).hexdigest()  # noqa: S324 -- find's checksum
            or str(have.get("mode")).lstrip("0") != str(file.get("mode") or "0644").lstrip("0")
            or not _matches(file.get("owner") or "root", have.get("pw_name"), have.get("uid"))
            or not _matches(
                file.get("group") or file.get("owner") or "root", have.get("gr_name"), have.get("gid")
            )
        ):
            write.append(file)
    return {"write": write, "dirs": make}
