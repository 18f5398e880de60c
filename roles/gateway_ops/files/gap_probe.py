#!/usr/bin/env python3
"""Measure how long an HTTP endpoint stops answering (a Traefik restart): request it every
few milliseconds; report the first failure, the first answer after it, and the gap."""

import argparse
import http.client
import json
import time


def answers(host: str, port: int, timeout: float) -> bool:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", "/", headers={"Host": "gap-probe.invalid"})
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    args = parser.parse_args()
    start = time.monotonic()
    down_at = None
    result = {"gap_seconds": None, "failed_probes": 0, "probes": 0}
    while time.monotonic() - start < args.timeout:
        ok = answers(args.host, args.port, 1.0)
        now = time.monotonic()
        result["probes"] += 1
        if not ok:
            result["failed_probes"] += 1
            down_at = down_at or now
        elif down_at is not None:
            result["gap_seconds"] = round(now - down_at, 3)
            break
        time.sleep(args.interval)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
