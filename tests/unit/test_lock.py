"""services/auth/requirements.lock: the one list of the auth service's dependencies, with
hashes, that the offline image, the production image and this test environment all install."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

AUTH = Path(__file__).resolve().parents[2] / "services" / "auth"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, tuple[str, Marker | None]]:
    pins = {}
    for line in (AUTH / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, pinned, marker = match.groups()
            pins[canonicalize_name(name)] = (pinned, Marker(marker) if marker else None)
    return pins


def test_every_locked_package_has_its_hashes():
    text = (AUTH / "requirements.lock").read_text()
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(locked()) == len(requirement_lines) >= 20, "every requirement is pinned with =="
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if not block.startswith("#"):
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_lock_has_the_versions_pyproject_pins():
    project = tomllib.loads((AUTH / "pyproject.toml").read_text())["project"]
    pins = locked()
    for dependency in map(Requirement, project["dependencies"]):
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert pins[name][0] in dependency.specifier, f"{name}: lock {pins[name][0]}, pyproject {dependency}"


HERE = sorted(name for name, (_, marker) in locked().items() if marker is None or marker.evaluate())


@pytest.mark.parametrize("name", HERE)
def test_the_tests_run_the_locked_version(name):
    pinned, _ = locked()[name]
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} {pinned} is locked but not installed: `make venv` installs the lock first")
    assert installed == pinned, f"{name}: installed {installed}, locked {pinned}"
