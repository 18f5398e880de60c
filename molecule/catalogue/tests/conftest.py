"""Fixtures of the catalogue scenario's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import molecule_gateway

ROOT_CA = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"


@pytest.fixture(scope="module")
def gateway(host, tmp_path_factory):
    """(address of the test host cat-gw, Pebble's issuing root in a file): where the gateway
    answers from the controller, and what its certificates verify against."""
    return molecule_gateway("cat-gw", host.file(ROOT_CA).content_string, tmp_path_factory.mktemp("ca"))
