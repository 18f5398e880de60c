"""One-line smoke test of a gateway brought up by `make up`.

Checks what a user sees first: the HTTP entrypoint answers with a permanent redirect
to HTTPS.
"""

from __future__ import annotations

import argparse
import http.client
import sys


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", default="inventory/local")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--host", default="gateway.localhost")
    args = parser.parse_args(argv)
    print("smoke: ok:", check_redirect(args.address, args.port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
