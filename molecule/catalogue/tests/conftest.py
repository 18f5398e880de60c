"""Fixtures of the catalogue scenario's tests."""

from __future__ import annotations

import json
import subprocess

import pytest

ROOT_CA = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"


@pytest.fixture(scope="module")
def gateway(host, tmp_path_factory):
    """(address of the test host cat-gw, Pebble's issuing root in a file): where the gateway
    answers from the controller, and what its certificates verify against."""
    info = json.loads(
        subprocess.run(["docker", "inspect", "cat-gw"], capture_output=True, text=True, check=True).stdout
    )
    address = next(iter(info[0]["NetworkSettings"]["Networks"].values()))["IPAddress"]
    ca_file = tmp_path_factory.mktemp("ca") / "pebble-root.pem"
    ca_file.write_text(host.file(ROOT_CA).content_string)
    return address, str(ca_file)
