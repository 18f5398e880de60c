"""Helpers shared by the testinfra tests of the Molecule scenarios."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import molecule_gateway


@pytest.fixture(scope="module")
def docker_json(host):
    """Run a docker CLI command on the test host and parse its JSON output."""

    def run(*args: str):
        cmd = host.run("docker " + " ".join(args))
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout)

    return run


@pytest.fixture(scope="module")
def http(host):
    """Make an HTTP request from inside the test host with curl; return status and headers."""

    def request(url: str, *, method: str = "GET", resolve: str | None = None, extra: str = ""):
        opts = f"--resolve {resolve}" if resolve else ""
        cmd = host.run(f"curl -sS -o /dev/null -D - -X {method} --max-time 10 {opts} {extra} '{url}'")
        assert cmd.rc == 0, cmd.stderr
        lines = cmd.stdout.replace("\r", "").strip().split("\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    return request


PEBBLE_ROOT = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"

# Figures the tests measure (recovery seconds, ...), printed at the end of the run.
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, object]:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured by the tests")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="module")
def gateway(host, tmp_path_factory):
    """Where the controller reaches the gateway (the test host's address) and a file with
    Pebble's issuing root, for clients on the controller."""
    return molecule_gateway("gw1", host.file(PEBBLE_ROOT).content_string, tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def https(host):
    """GET (or more, with curl options in `extra`) https://<name><path> from inside the test
    host, the name resolved to Traefik on loopback and the chain checked against Pebble's
    root; retried while a first certificate may still be on its way. Returns (status, body)."""

    def request(name: str, path: str = "/", extra: str = ""):
        cmd = host.run(
            f"curl -sS --max-time 10 --retry 10 --retry-delay 1 --retry-all-errors -o /dev/stdout "
            f"-w '\\n%{{http_code}}' --cacert {PEBBLE_ROOT} --resolve {name}:443:127.0.0.1 {extra} "
            f"'https://{name}{path}'"
        )
        assert cmd.rc == 0, cmd.stderr
        body, _, status = cmd.stdout.rpartition("\n")
        return int(status), body

    return request
