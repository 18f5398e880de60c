"""Container images on the controller: what an image archive (docker save) holds."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ansible.errors import AnsibleFilterError


def _manifest(path: str) -> list:
    try:
        with tarfile.open(Path(path)) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.load(member) if member else None
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as error:
        raise AnsibleFilterError(f"{path}: not a docker save archive ({error})") from None
    if not isinstance(manifest, list):
        raise AnsibleFilterError(f"{path}: not a docker save archive (manifest.json is not a list)")
    return manifest


def docker_archive_image_tags(path: str) -> list[str]:
    """The tags (name:tag) of the images in a `docker save` archive; none when there is no
    file at `path` (an archive not built yet). Reads only the tar headers and manifest.json."""
    if not Path(path).is_file():
        return []
    try:
        manifest = _manifest(path)
    except AnsibleFilterError as error:
        raise AnsibleFilterError(f"docker_archive_image_tags: {error}") from None
    return [tag for image in manifest for tag in (image.get("RepoTags") or [])]


def docker_archive_image_id(path: str) -> str:
    """The image ID (sha256:...) of the one image in a `docker save` archive.

    Reads only the tar headers and manifest.json: a no-op converge compares this with the
    image on the host without copying the archive."""
    archive = Path(path)
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.load(member) if member else None
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as error:
        raise AnsibleFilterError(
            f"docker_archive_image_id: {path}: not a docker save archive ({error})"
        ) from None
    if not isinstance(manifest, list) or len(manifest) != 1:
        raise AnsibleFilterError(
            f"docker_archive_image_id: {path}: holds {len(manifest or [])} images, not one"
        )
    config = Path(manifest[0]["Config"]).name.removesuffix(".json")
    return config if config.startswith("sha256:") else f"sha256:{config}"
