"""Container images on the controller: what an image archive (docker save) holds."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ansible.errors import AnsibleFilterError


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
