"""Smoke test of a gateway brought up by `make up`, and what the user needs next.

Checks what a user sees first: http:// answers with a permanent redirect to https://,
and https:// presents a certificate from the local test CA (Pebble) whose chain
verifies against its issuing root. Then prints the URLs and how to trust the CA.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
from pathlib import Path


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with SNI and Host set to the gateway's name."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext):
        super().__init__(host, port, timeout=10, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def check_redirect(address: str, port: int, host: str) -> str:
    conn = http.client.HTTPConnection(address, port, timeout=10)
    conn.request("GET", "/smoke", headers={"Host": host})
    response = conn.getresponse()
    location = response.getheader("Location", "")
    expected = f"https://{host}/smoke"
    if response.status != 301 or location != expected:
        raise SystemExit(
            f"smoke: FAILED: http://{host}/smoke answered {response.status} "
            f"Location {location!r}, expected 301 Location {expected!r}"
        )
    return f"http://{host}/smoke -> {response.status} {location}"


def https_request(
    address: str, host: str, root: Path, method: str, path: str, body: bytes | None = None, wait: float = 60.0
) -> tuple[http.client.HTTPResponse, bytes, dict]:
    """One HTTPS request with the name pinned to the address; retried while the
    first certificate may still be on its way from the test CA."""
    context = ssl.create_default_context(cafile=str(root))
    headers = {"Content-Type": "application/json"} if body is not None else {}
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = PinnedHTTPSConnection(host, address, 443, context)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response, response.read(), conn.sock.getpeercert()
        except (ssl.SSLError, OSError) as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"smoke: FAILED: https://{host}{path}: {error}") from None
            time.sleep(1)


def check_https(address: str, host: str, root: Path, wait: float) -> str:
    response, _, cert = https_request(address, host, root, "GET", "/dashboard/", wait=wait)
    issuer = dict(item[0] for item in cert["issuer"]).get("commonName", "?")
    if response.status != 401:
        raise SystemExit(
            f"smoke: FAILED: https://{host}/dashboard/ without credentials answered {response.status}"
        )
    return f"https://{host}/dashboard/ -> {response.status} (certificate from {issuer!r}, chain verified)"


def check_metadata(address: str, host: str, root: Path) -> str:
    response, raw, _ = https_request(address, host, root, "GET", "/.well-known/oauth-authorization-server")
    body = json.loads(raw) if response.status == 200 else {}
    if body.get("issuer") != f"https://{host}":
        raise SystemExit(
            f"smoke: FAILED: authorization server metadata answered {response.status} {raw[:200]!r}"
        )
    return f"https://{host}/.well-known/oauth-authorization-server -> 200 (issuer {body['issuer']})"


def check_mcp_needs_a_token(address: str, host: str, root: Path) -> str:
    response, _, _ = https_request(address, host, root, "POST", "/mcp", body=b"{}")
    challenge = response.getheader("WWW-Authenticate", "")
    if response.status != 401 or "resource_metadata=" not in challenge:
        raise SystemExit(
            f"smoke: FAILED: https://{host}/mcp without a token answered {response.status} {challenge!r}"
        )
    return f"https://{host}/mcp without a token -> 401 ({challenge})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--domain", default="gateway.localhost")
    parser.add_argument("--root", type=Path, default=Path("/opt/mcp-gateway/acme-test-ca/issuing-root.pem"))
    parser.add_argument("--secrets", type=Path, default=Path("build/local-secrets"))
    parser.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args(argv)

    dashboard = f"traefik.{args.domain}"
    print("smoke: ok:", check_redirect(args.address, 80, dashboard))
    print("smoke: ok:", check_https(args.address, dashboard, args.root, args.wait))
    password = args.secrets / "dashboard-password"
    print("smoke: ok:", check_metadata(args.address, f"auth.{args.domain}", args.root))
    print("smoke: ok:", check_mcp_needs_a_token(args.address, f"echo.{args.domain}", args.root))
    print(
        f"""
The gateway runs on {args.address} (names under .localhost resolve to loopback).
  dashboard   https://{dashboard}/dashboard/   user admin, password in {password}
  MCP         https://fetch.{args.domain}/mcp   (the reference fetch server)
              https://echo.{args.domain}/mcp    (diagnostic: headers, whoami, replica)
              add them to an MCP client; it signs in through the gateway's login page
  auth        https://auth.{args.domain}/.well-known/oauth-authorization-server
              local user demo, password in {args.secrets / "demo-password"}
  test CA     Pebble's issuing root: {args.root}
              curl --cacert {args.root} https://{dashboard}/dashboard/ -u admin:$(cat {password})
              (browsers: import that file as a certificate authority; it changes when Pebble restarts)
  stop        make down"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
