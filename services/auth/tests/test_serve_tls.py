"""`mcp-gateway-auth serve` over TLS, as the gateway runs it: a certificate for the name in
Traefik's ForwardAuth address (`auth`) from a private CA, HTTP/2 offered by ALPN (the
protocol Go's transport picks over TLS, so that every check rides one connection)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import _free_port, write_cli_config

SERVE = [str(Path(sys.executable).with_name("mcp-gateway-auth")), "serve"]


def _certificate(
    subject: str, key, issuer_key, issuer: x509.Name | None, ca: bool, sans=()
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A CA, and a certificate it signed for `auth` and 127.0.0.1 (what the auth role makes)."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("gateway internal CA", ca_key, ca_key, None, ca=True)
    sans = [x509.DNSName("auth"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = _certificate("auth", key, ca_key, ca.subject, ca=False, sans=sans)
    files = {"ca": directory / "ca.pem", "certificate": directory / "cert.pem", "key": directory / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["certificate"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    )
    return files


@pytest.fixture
def config(redis_server, key_file, tmp_path) -> Path:
    return write_cli_config(tmp_path / "config.json", redis_server, key_file)


def test_serve_over_tls_offers_http2_and_answers_with_its_certificate(config, tls_files, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "AUTH_CONFIG": str(config),
        "AUTH_TLS_CERTIFICATE": str(tls_files["certificate"]),
        "AUTH_TLS_KEY": str(tls_files["key"]),
    }
    output = tmp_path / "output"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.1)
        # What Traefik's client (Go) does: ALPN h2, the name of the ForwardAuth address.
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="auth") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.getpeercert()["subject"] == ((("commonName", "auth"),),)
        # HTTP/1.1 over TLS too (the container's health check), verified by the same CA.
        with httpx2.Client(verify=ssl.create_default_context(cafile=str(tls_files["ca"])), timeout=5) as http:
            assert http.get(f"https://127.0.0.1:{port}/health").status_code == 200
        # Plain HTTP is not served on that port.
        with pytest.raises(httpx2.TransportError), httpx2.Client(timeout=5) as http:
            http.get(f"http://127.0.0.1:{port}/health")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("variable", ["AUTH_TLS_CERTIFICATE", "AUTH_TLS_KEY"])
def test_serve_refuses_half_a_tls_setting(config, tls_files, variable):
    env = {**os.environ, "AUTH_CONFIG": str(config), variable: str(tls_files["certificate"])}
    result = subprocess.run(
        [*SERVE, "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--tls-certificate and --tls-key" in result.stderr


def test_serve_names_an_unreadable_tls_file(config, tls_files, tmp_path):
    missing = tmp_path / "missing.pem"
    env = {
        **os.environ,
        "AUTH_CONFIG": str(config),
        "AUTH_TLS_CERTIFICATE": str(tls_files["certificate"]),
        "AUTH_TLS_KEY": str(missing),
    }
    result = subprocess.run(
        [*SERVE, "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"--tls-key: cannot read {missing}" in result.stderr
