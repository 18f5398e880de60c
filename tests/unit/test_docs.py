"""`ansible-doc` works for every filter and every role: the documentation users read is valid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FILTER_PLUGINS, ROLES, project_filters

ANSIBLE_DOC = str(Path(sys.executable).with_name("ansible-doc"))
ENV = {
    **os.environ,
    "ANSIBLE_FILTER_PLUGINS": str(FILTER_PLUGINS),
    "ANSIBLE_ROLES_PATH": str(ROLES),
    "ANSIBLE_NOCOLOR": "1",
}
ROLE_NAMES = sorted(path.name for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").exists())


def ansible_doc(kind: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ANSIBLE_DOC, "-t", kind, name], capture_output=True, text=True, env=ENV, check=False, timeout=60
    )


@pytest.mark.parametrize("name", sorted(project_filters()))
def test_ansible_doc_shows_every_filter(name):
    doc = ansible_doc("filter", name)
    assert doc.returncode == 0, doc.stderr
    assert "[ERROR]" not in doc.stderr, doc.stderr
    assert re.search(rf"FILTER \W*{name}\b", doc.stdout), doc.stdout[:300]


def test_every_role_has_argument_specs():
    assert set(ROLE_NAMES) == {path.name for path in ROLES.iterdir() if path.is_dir()}


@pytest.mark.parametrize("name", ROLE_NAMES)
def test_ansible_doc_shows_every_role(name):
    doc = ansible_doc("role", name)
    assert doc.returncode == 0, doc.stderr
    assert re.search(r"ENTRY POINT: \W*main\b", doc.stdout), doc.stdout[:300]


def test_ansible_cfg_keeps_host_key_checking_on():
    """Production inventories get SSH's host key checks; only the test hosts (Docker and local
    connections) have no host keys at all."""
    cfg = str(Path(__file__).resolve().parents[2] / "ansible.cfg")
    dump = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-config")), "dump", "--only-changed"],
        capture_output=True,
        text=True,
        env={**ENV, "ANSIBLE_CONFIG": cfg},
        check=True,
    )
    assert "CALLBACKS_ENABLED" in dump.stdout  # the file was read
    assert "HOST_KEY_CHECKING" not in dump.stdout
