"""Fixtures of the prod scenario: the stand-ins' addresses and files, each host's names."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PROJECT))
PROD = PROJECT / "build" / "prod"
NETWORK = "mcpgw-prod"


def container_address(name: str) -> str:
    info = json.loads(
        subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout
    )
    return info[0]["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


@pytest.fixture(scope="session")
def pebble_root(tmp_path_factory) -> str:
    """Pebble's issuing root (made afresh at each start), from its management API."""
    context = ssl.create_default_context(cafile=str(PROD / "ca" / "ca.pem"))
    context.check_hostname = False  # reached by address from the controller
    url = f"https://{container_address('prod-pebble')}:15000/roots/0"
    with urllib.request.urlopen(url, context=context, timeout=10) as answer:
        pem = answer.read()
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_bytes(pem)
    return str(path)


@pytest.fixture(scope="module")
def domain(host) -> str:
    return host.ansible.get_variables()["gateway_domain"]


@pytest.fixture(scope="module")
def address(host) -> str:
    return container_address(host.backend.get_hostname())


@pytest.fixture(scope="session")
def secret():
    """The run's test credentials (prepare.yml), by name."""

    def read(name: str) -> str:
        return (PROD / "secrets" / name).read_text().split()[0]

    return read


@pytest.fixture(scope="session")
def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
