"""First certificate: from Traefik's start to its first valid certificate from Pebble.

    python -m bench.first_cert [--first-cert-repeats 3] [--bench-host NAME]

On a converged bench test host (the one bench.provisioning hands over when it ran just
before in the same process, the container named by --bench-host, or else one this part
creates and converges itself): stop Traefik, empty its acme.json (as the acme_test_ca
role does when Pebble starts afresh), start Traefik again, and handshake with TLS from the
controller to the host's address, with SNI for each of the gateway's names in turn, until
the certificate presented verifies against Pebble's issuing root for that name (Traefik
never passes: with sniStrict it closes the handshake, else its default certificate fails).
Times count from the container's State.StartedAt (from the moment `docker start` returned
is reported too): to the first name with a valid certificate (goal <= 10 s) and to all.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import socket
import ssl
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: python bench/first_cert.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, provisioning

ROOT = common.ROOT
WORK = common.BUILD / "first_cert"
GOAL_S = 10.0
POLL_S = 0.05
DEADLINE_S = 90.0
OWN_HOST = "bench-fc1"


def _defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def gateway_names() -> list[str]:
    """The names Traefik asks Pebble for: the MCP services, auth and the dashboard."""
    group_vars = yaml.safe_load((provisioning.MOLECULE / "inventory/group_vars/gateway.yml").read_text())
    domain = group_vars["gateway_domain"]
    names = [
        f"{service['name']}.{domain}"
        for service in group_vars.get("mcp_services", [])
        if service.get("state", "present") != "absent"
    ]
    return [*names, f"auth.{domain}", f"traefik.{domain}"]


def _parse_docker_time(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds -> epoch seconds (Python takes microseconds)."""
    found = re.fullmatch(r"([^.]+)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not found:
        raise common.HarnessError(f"unexpected time from docker: {text!r}")
    whole, fraction, zone = found.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    return dt.datetime.fromisoformat(f"{whole}.{micro}{zone.replace('Z', '+00:00')}").timestamp()


def verifies(address: str, name: str, context: ssl.SSLContext) -> dict[str, Any] | None:
    """One TLS handshake with SNI `name`; the certificate if it verifies, else None."""
    try:
        with (
            socket.create_connection((address, 443), timeout=1) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            return tls.getpeercert()
    except (OSError, ssl.SSLError):
        return None


class Host:
    """The test host and what the roles put on it."""

    def __init__(self, name: str):
        traefik = _defaults("traefik")
        test_ca = _defaults("acme_test_ca")
        self.name = name
        self.container = f"{traefik['traefik_compose_project']}-traefik-1"
        self.acme_json = f"{traefik['traefik_base_dir']}/acme/acme.json"
        self.issuing_root = f"{test_ca['acme_test_ca_base_dir']}/issuing-root.pem"
        self.address = provisioning.host_ip(name)

    def sh(self, command: str, timeout: float = 120) -> str:
        return provisioning.docker("exec", self.name, "sh", "-c", command, timeout=timeout).stdout

    def context(self) -> ssl.SSLContext:
        """Verifies against Pebble's issuing root (regenerated only when Pebble restarts)."""
        WORK.mkdir(parents=True, exist_ok=True)
        root = WORK / f"pebble-root-{self.name}.pem"
        root.write_text(self.sh(f"cat {self.issuing_root}"))
        return ssl.create_default_context(cafile=str(root))

    def measure(self, names: list[str]) -> dict[str, Any]:
        """Stop Traefik, forget its certificates, start it; time to a valid handshake."""
        context = self.context()
        self.sh(f"docker stop {self.container} >/dev/null")
        self.sh(f": > {self.acme_json}")  # keeps its mode 0600
        mode = self.sh(f"stat -c %a {self.acme_json}").strip()
        self.sh(f"docker start {self.container} >/dev/null")
        returned = time.time()
        started = _parse_docker_time(
            self.sh(f"docker inspect -f '{{{{.State.StartedAt}}}}' {self.container}")
        )
        valid_at: dict[str, float] = {}
        issuer = None
        pending = list(names)
        deadline = time.monotonic() + DEADLINE_S
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                cert = verifies(self.address, name, context)
                if cert is not None:
                    valid_at[name] = time.time()
                    pending.remove(name)
                    issuer = issuer or dict(pair[0] for pair in cert.get("issuer", ())).get("commonName")
            if pending:
                time.sleep(POLL_S)
        first_name = min(valid_at, key=valid_at.__getitem__) if valid_at else None
        first = valid_at[first_name] if first_name else None
        last = max(valid_at.values()) if not pending else None
        return {
            "first_name": first_name,
            "from_started_s": round(first - started, 3) if first else None,
            "from_start_returned_s": round(first - returned, 3) if first else None,
            "all_names_from_started_s": round(last - started, 3) if last else None,
            "per_name_from_started_s": {name: round(at - started, 3) for name, at in valid_at.items()},
            "not_verified": pending,
            "issuer": issuer,
            "acme_json_mode": mode,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("first_cert")
    group.add_argument("--first-cert-repeats", type=int, default=3, help="Traefik restarts (default 3)")
    group.add_argument(
        "--bench-host", help="a converged test host container to use (default: provisioning's, or a new one)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    repeats = max(1, getattr(args, "first_cert_repeats", 3))
    name = getattr(args, "bench_host", None)
    owned: str | None = None
    notes: list[str] = []
    converged: dict[str, Any] | None = None
    try:
        if not name:
            name = owned = provisioning.take_handoff()
            if name:
                notes.append(f"Host {name}: converged by the provisioning part.")
        if not name:
            name = owned = OWN_HOST
            provisioning.create_hosts([name])
            converged = provisioning.converge([name], 1, "first-cert-bare")
            notes.append(f"Host {name}: created and converged by this part ({converged['wall_s']} s).")
        host = Host(name)
        names = gateway_names()
        samples = []
        for i in range(1, repeats + 1):
            sample = host.measure(names)
            print(
                f"    restart {i}: first {sample['from_started_s']} s ({sample['first_name']}), "
                f"all names {sample['all_names_from_started_s']} s",
                flush=True,
            )
            samples.append(sample)
    finally:
        if owned:
            provisioning.remove_hosts([owned])

    times = [s["from_started_s"] for s in samples if s["from_started_s"] is not None]
    after_return = [s["from_start_returned_s"] for s in samples if s["from_start_returned_s"] is not None]
    all_names = [s["all_names_from_started_s"] for s in samples if s["all_names_from_started_s"] is not None]
    median = statistics.median(times) if len(times) == repeats else None
    rows = [
        {
            "restart": i,
            "first valid name": s["first_name"],
            "from StartedAt s": s["from_started_s"],
            "from start returned s": s["from_start_returned_s"],
            f"all {len(names)} names s": s["all_names_from_started_s"],
            "issuer": s["issuer"],
        }
        for i, s in enumerate(samples, 1)
    ]
    return {
        "title": "First certificate (Traefik start -> first certificate from Pebble that verifies)",
        "rows": rows,
        "goals": [
            {
                "goal": f"first valid certificate <= {GOAL_S:g} s after Traefik starts (median of {repeats})",
                "value": median,
                "target": GOAL_S,
                "met": None if median is None else median <= GOAL_S,
            }
        ],
        "measurements": {
            "from_started_s": times,
            "min_s": min(times) if times else None,
            "median_s": median,
            "from_start_returned_min_s": min(after_return) if after_return else None,
            "from_start_returned_median_s": statistics.median(after_return) if after_return else None,
            "all_names_median_s": statistics.median(all_names) if len(all_names) == repeats else None,
            "samples": samples,
        },
        "settings": {
            "host": name,
            "names": names,
            "repeats": repeats,
            "poll_s": POLL_S,
            "probe": "TLS handshake from the controller to the host's :443 with SNI, verified "
            "against Pebble's issuing root and the name",
        },
        "notes": [
            *notes,
            "Each restart: docker stop traefik, acme.json emptied (mode kept), docker start; "
            "Pebble keeps running (a new ACME account each time).",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    return common.part_main("bench.first_cert", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
