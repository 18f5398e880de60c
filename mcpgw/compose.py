"""What the roles decide on the controller from one look-up each on the host: which images a
Compose project lacks, which files differ, whether a project runs as asked, which networks
and packages the host lacks. A run with nothing to change then costs no round trip per
image, file, network or package."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from fnmatch import fnmatchcase as fnmatch
from typing import Any

from ansible.errors import AnsibleFilterError

from .images import docker_archive_image_id


def _reference(name: str) -> str:
    """A reference as Docker reads it: no tag means :latest (a digest stays as it is)."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in name else f"{name}:latest"


def _tags(host_images: list[dict[str, Any]] | None) -> dict[str, str]:
    """The image ID of every tag in a look-up of the host's images."""
    return {tag: image["Id"] for image in host_images or [] for tag in image.get("RepoTags") or []}


def compose_images_plan(images: list[dict[str, Any]], host_images: list[dict[str, Any]]) -> dict[str, list]:
    """What to do so that every image of a project is on the host, from one look-up of the
    host's images (community.docker.docker_image_info): registry images to pull, archives
    to copy and load (their image ID differs from the host's, or the host lacks the name),
    and images to build (their context decides, see the compose role). An image of source
    `local` is already on the host (built there): one it lacks is an error."""
    on_host = _tags(host_images)
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
        elif source == "local":
            if reference not in on_host:
                raise AnsibleFilterError(
                    f"compose_images_plan: image {image['name']}: source local, but the host has no image "
                    "of that name (build it on the host first: `make images` for inventory/local)"
                )
        else:
            raise AnsibleFilterError(f"compose_images_plan: image {image['name']}: unknown source {source!r}")
    return plan


def compose_project_running(
    definition: dict[str, Any],
    containers: list[dict[str, Any]],
    host_images: list[dict[str, Any]] | None = None,
) -> bool:
    """Whether every service of a Compose project runs as many containers as it asks for,
    each running and, where it has a health check, healthy — from one listing of the host's
    containers (docker_host_info, verbose, filtered by the project's label). With the same
    look-up's images, each container must also run the image its service's tag names now (a
    tag built or loaded again since the container started is not running as asked). When it
    does and none of the project's inputs changed, `docker compose up` has nothing to do."""
    on_host = _tags(host_images)
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
        image = on_host.get(_reference(str((service or {}).get("image") or "")))
        if image and any(c.get("ImageID") != image for c in running):
            return False
    return True


def _matches(wanted: Any, name: Any, number: Any) -> bool:
    return wanted in (None, "") or str(wanted) in (str(name), str(number))


def _differs(file: Mapping[str, Any], have: Mapping[str, Any] | None, what: str) -> bool:
    """Whether a file on the host (an entry of ansible.builtin.find's listing, checksums
    included) differs from the wanted one in content, mode or owner. A file without
    `content` (create only, e.g. a store another program writes) is compared by mode and
    owner only."""
    if have is None:
        return True
    content = file.get("content")
    if content is not None:
        if not isinstance(content, str):
            raise AnsibleFilterError(f"{what}: content must be text")
        if have.get("checksum") != hashlib.sha1(content.encode()).hexdigest():  # noqa: S324 -- find's checksum
            return True
    owner = file.get("owner") or "root"
    return (
        str(have.get("mode")).lstrip("0") != str(file.get("mode") or "0644").lstrip("0")
        or not _matches(owner, have.get("pw_name"), have.get("uid"))
        or not _matches(file.get("group") or owner, have.get("gr_name"), have.get("gid"))
    )


# What the compose role's writer (roles/compose/library/compose_write.py) takes of a file.
_WRITE_KEYS = ("name", "content", "mode", "owner", "group", "secret")


def compose_files_plan(
    files: list[dict[str, Any]], listing: Mapping[str, Any], directory: str, directories: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The directories to make and the files to write, from one listing of the project's
    directory on the host (the result of ansible.builtin.find: recursive, any file type,
    checksums): a file whose content, mode and owner are right is not touched, so that a
    no-op needs no round trip per file; one changed by hand is written again. The files
    to write keep only what the writer takes (name, content, mode, owner, group, secret)."""
    base = directory.rstrip("/")
    on_host = {item["path"]: item for item in listing.get("files") or []}
    missing_base = base in (listing.get("skipped_paths") or {})
    make = [{"path": base, "mode": None}] if missing_base else []
    for wanted in directories or []:
        path = f"{base}/{wanted['path'].strip('/')}"
        if missing_base or on_host.get(path, {}).get("isdir") is not True:
            make.append({"path": path, "mode": wanted.get("mode"), "owner": wanted.get("owner")})
    write = [
        {key: file[key] for key in _WRITE_KEYS if key in file}
        for file in files
        if _differs(file, on_host.get(f"{base}/{file['name']}"), f"compose_files_plan: {file['name']}")
    ]
    return {"write": write, "dirs": make}


def host_files_plan(files: list[dict[str, Any]], listing: Mapping[str, Any]) -> dict[str, list[Any]]:
    """compose_files_plan for files anywhere on the host, named by absolute `path`: from one
    ansible.builtin.find over their directories (checksums, any file type), the files to
    write (content, mode or owner differ), the files without `content` to create or fix
    (mode and owner; never truncated), and the directories to make or fix: those listed with
    `state: directory` that are missing or differ, and the parents of every file to write
    (with no mode of their own: an existing parent is left as it is)."""
    on_host = {item["path"]: item for item in listing.get("files") or []}
    write: list[dict[str, Any]] = []
    touch: list[dict[str, Any]] = []
    dirs: dict[str, dict[str, Any]] = {}
    for file in files:
        path = file.get("path") or ""
        if not path.startswith("/") or path == "/":
            raise AnsibleFilterError(f"host_files_plan: {path!r}: path must be absolute")
        have = on_host.get(path)
        if file.get("state") == "directory":
            if not (have or {}).get("isdir") or _differs({**file, "content": None}, have, path):
                dirs[path] = {"path": path, "mode": file.get("mode"), "owner": file.get("owner")}
        elif _differs(file, have, f"host_files_plan: {path}"):
            (touch if file.get("content") is None else write).append(file)
    for file in write + touch:
        parent = file["path"].rsplit("/", 1)[0] or "/"
        dirs.setdefault(parent, {"path": parent, "mode": None, "owner": None})
    return {"write": write, "touch": touch, "dirs": sorted(dirs.values(), key=lambda d: d["path"])}


def docker_networks_plan(
    wanted: list[dict[str, Any]], existing: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The wanted networks that community.docker.docker_network has to create or change,
    from one look-up of the host's networks (docker_host_info, verbose): a network is left
    alone when it exists with the wanted driver, `internal`, `attachable` and IPAM pools
    (subnet and IP range), so that a run with nothing to change costs no round trip per
    network. `wanted`: name, driver, internal, attachable, ipam_config (subnet, iprange)."""
    by_name = {network.get("Name"): network for network in existing or []}
    plan = []
    for network in wanted:
        if not network.get("name"):
            raise AnsibleFilterError(f"docker_networks_plan: a network without a name: {network!r}")
        have = by_name.get(network["name"])
        if have is None:
            plan.append(network)
            continue
        config = (have.get("IPAM") or {}).get("Config") or []
        pools = {(p.get("Subnet"), p.get("IPRange") or None) for p in config}
        want_pools = {(p["subnet"], p.get("iprange") or None) for p in network.get("ipam_config") or []}
        if (
            have.get("Driver") != network.get("driver", "bridge")
            or bool(have.get("Internal")) != bool(network.get("internal"))
            or bool(have.get("Attachable")) != bool(network.get("attachable"))
            or (want_pools and pools != want_pools)
        ):
            plan.append(network)
    return plan


def apt_packages_missing(names: list[str], packages: Mapping[str, Any] | None) -> list[str]:
    """The packages of an apt task that the host lacks, from ansible.builtin.package_facts
    (`ansible_facts.packages`, looked up once per run): a name, or `name=version` (apt's
    syntax; `*` wildcards allowed) installed at that version, needs no call to apt. Without
    package facts (none, e.g. a host without python3-apt yet) every package is "missing":
    apt then runs as it would without this check. Other apt syntax (`name>=1`) counts as
    missing, apt decides."""
    if packages is None:
        return list(names)
    missing = []
    for spec in names:
        name, _, version = spec.partition("=")
        installed = [entry.get("version", "") for entry in packages.get(name) or []]
        if any(c in name for c in "<>") or not installed or (version and not fnmatch(installed[0], version)):
            missing.append(spec)
    return missing
