"""The edge as a TLS scanner sees it (issue 13): testssl.sh (Debian's `testssl`) from the
controller against an MCP route of the converged host, with Pebble's root as a trusted CA.

No protocol below TLS 1.2, only AEAD ciphers with forward secrecy, a complete chain, and
HSTS on the 401 that ForwardAuth answers an anonymous request with."""

from __future__ import annotations

import json
import subprocess

import pytest

DOMAIN = "gateway.test"
TARGET = f"https://echo.{DOMAIN}/mcp"


@pytest.fixture(scope="module")
def scan(gateway, tmp_path_factory, figures):
    address, ca_file = gateway
    out = tmp_path_factory.mktemp("testssl") / "scan.json"
    run = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", address,
         "--add-ca", ca_file, "--protocols", "--cipher-per-proto", "--server-defaults", "--headers",
         "--fs", "--jsonfile", str(out), TARGET],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert out.exists(), run.stdout + run.stderr
    findings = {item["id"]: item for item in json.loads(out.read_text())}
    keys = (
        "SSLv2",
        "SSLv3",
        "TLS1",
        "TLS1_1",
        "TLS1_2",
        "TLS1_3",
        "FS",
        "cert_chain_of_trust",
        "certs_countServer",
    )
    for key in (*keys, "HTTP_status_code", "HSTS_time", "banner_server"):
        if key in findings:  # printed at the end of the run (conftest.py)
            figures[f"testssl.sh {key}"] = f"{findings[key]['severity']}: {findings[key]['finding']}"
    return findings


@pytest.mark.parametrize("protocol", ["SSLv2", "SSLv3", "TLS1", "TLS1_1"])
def test_no_protocol_below_tls_1_2(scan, protocol):
    assert scan[protocol]["finding"].startswith("not offered"), scan[protocol]


@pytest.mark.parametrize("protocol", ["TLS1_2", "TLS1_3"])
def test_tls_1_2_and_1_3_are_offered(scan, protocol):
    assert scan[protocol]["finding"].startswith("offered"), scan[protocol]


def test_every_cipher_is_aead_with_forward_secrecy(scan):
    ciphers = [item["finding"] for key, item in scan.items() if key.startswith("cipher-tls1_")]
    assert ciphers, "testssl.sh listed no cipher"
    for cipher in ciphers:
        assert "GCM" in cipher or "CHACHA20" in cipher or "CCM" in cipher, cipher
        assert "ECDHE" in cipher or "TLS_AES" in cipher or "TLS_CHACHA20" in cipher, cipher


def test_the_chain_is_complete_and_trusted(scan):
    assert scan["cert_chain_of_trust"]["severity"] == "OK", scan["cert_chain_of_trust"]
    # The leaf and Pebble's intermediate, in order: a client that knows only the root verifies.
    assert int(scan["certs_countServer"]["finding"]) >= 2
    assert scan["certs_list_ordering_problem"]["finding"] == "no"


def test_hsts_and_no_banner_on_the_401(scan):
    assert scan["HTTP_status_code"]["finding"].startswith("401")
    assert scan["HSTS_time"]["severity"] == "OK", scan["HSTS_time"]
    assert scan["banner_server"]["finding"].startswith("No Server banner")
