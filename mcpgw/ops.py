"""Day-2 views of a running gateway: certificates from acme.json, routers and services from
Traefik's API, the servers of one service. The filters acme_certificates, gateway_status
and traefik_service_servers (filter_plugins/gateway_ops.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.x509.oid import NameOID


def _now(now: Any) -> dt.datetime:
    if now in (None, ""):
        return dt.datetime.now(dt.UTC)
    if isinstance(now, (int, float)):
        return dt.datetime.fromtimestamp(now, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(now).replace("Z", "+00:00"))
    except ValueError as err:
        raise AnsibleFilterError(f"acme_certificates: now: not an ISO 8601 time: {now!r}") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string()


def acme_certificates(acme: Any, now: Any = None) -> list[dict[str, Any]]:
    """Every certificate of Traefik's acme.json (its text, or the parsed dict): resolver,
    domain, SANs, issuer, serial (hex), not-after and days left, soonest expiry first.
    Private keys are never part of the result."""
    if isinstance(acme, (str, bytes)):
        text = acme.decode() if isinstance(acme, bytes) else acme
        if not text.strip():
            return []
        try:
            acme = json.loads(text)
        except ValueError as err:
            raise AnsibleFilterError(f"acme_certificates: acme.json is not JSON: {err}") from err
    if not isinstance(acme, Mapping):
        raise AnsibleFilterError(f"acme_certificates: acme.json must be an object, got {type(acme).__name__}")
    moment = _now(now)
    rows = []
    for resolver, data in acme.items():
        if not isinstance(data, Mapping):
            raise AnsibleFilterError(f"acme_certificates: resolver '{resolver}': must be an object")
        for index, entry in enumerate(data.get("Certificates") or []):
            where = f"acme_certificates: resolver '{resolver}': Certificates[{index}]"
            domain = (entry.get("domain") or {}).get("main") if isinstance(entry, Mapping) else None
            if not domain:
                raise AnsibleFilterError(f"{where}: key 'domain.main' is missing")
            try:
                pem = base64.b64decode(entry["certificate"])
                cert = x509.load_pem_x509_certificates(pem)[0]
            except (KeyError, TypeError, ValueError) as err:
                raise AnsibleFilterError(
                    f"{where} ({domain}): key 'certificate': not a PEM chain: {err}"
                ) from err
            not_after = cert.not_valid_after_utc
            rows.append(
                {
                    "resolver": str(resolver),
                    "domain": str(domain),
                    "sans": [str(s) for s in (entry.get("domain") or {}).get("sans") or []],
                    "issuer": _name(cert.issuer),
                    "serial": format(cert.serial_number, "x"),
                    "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "days_left": round((not_after - moment).total_seconds() / 86400, 2),
                }
            )
    return sorted(rows, key=lambda row: (row["not_after"], row["domain"]))


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return lines


def _short(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


CERT_HEADERS = ["DOMAIN", "ISSUER", "SERIAL", "NOT AFTER", "DAYS LEFT"]


def acme_certificates_table(certificates: Any) -> list[str]:
    """The rows of acme_certificates as a printable table."""
    if not isinstance(certificates, list):
        raise AnsibleFilterError("acme_certificates_table: must be the list acme_certificates returns")
    rows = []
    for index, cert in enumerate(certificates):
        missing = [key for key in ("domain", "issuer", "serial", "not_after", "days_left") if key not in cert]
        if missing:
            raise AnsibleFilterError(f"acme_certificates_table: row {index}: key '{missing[0]}' is missing")
        rows.append(
            [cert["domain"], cert["issuer"], cert["serial"], cert["not_after"], f"{cert['days_left']:.1f}"]
        )
    return _table(CERT_HEADERS, rows)


def gateway_status(
    routers: Any, services: Any, certificates: Any = None, warn_days: Any = 14
) -> dict[str, Any]:
    """The status of one gateway host from Traefik's API (/api/http/routers and
    /api/http/services) and the acme_certificates rows: printable tables and the problems
    that make playbooks/status.yml fail (a router not enabled, a server not UP, a certificate
    with fewer than warn_days left)."""
    if not isinstance(routers, list):
        raise AnsibleFilterError(
            f"gateway_status: routers: must be the list of /api/http/routers, got {routers!r}"
        )
    if not isinstance(services, list):
        raise AnsibleFilterError(
            f"gateway_status: services: must be the list of /api/http/services, got {services!r}"
        )
    try:
        warn = float(warn_days)
    except (TypeError, ValueError) as err:
        raise AnsibleFilterError(f"gateway_status: warn_days: must be a number, got {warn_days!r}") from err
    problems: list[str] = []
    router_rows = []
    for router in sorted(routers, key=lambda r: (-int(r.get("priority") or 0), str(r.get("name")))):
        name = router.get("name", "?")
        status = router.get("status", "?")
        errors = router.get("error") or []
        router_rows.append(
            [name, _short(router.get("rule", "")), str(router.get("priority", "")), status,
             ",".join(router.get("middlewares") or [])]
        )  # fmt: skip
        if status != "enabled":
            problems.append(
                f"router {name}: {status}" + (f" ({'; '.join(map(str, errors))})" if errors else "")
            )
    service_rows = []
    for service in sorted(services, key=lambda s: str(s.get("name"))):
        name = service.get("name", "?")
        servers = service.get("serverStatus") or {}
        if service.get("status") not in (None, "enabled"):
            problems.append(f"service {name}: {service.get('status')}")
        if not servers:
            service_rows.append([name, service.get("type", ""), "-", service.get("status", "")])
        for url, state in sorted(servers.items()):
            service_rows.append([name, service.get("type", ""), url, state])
            if state != "UP":
                problems.append(f"service {name}: server {url} is {state}")
    certificates = certificates or []
    for cert in certificates:
        if float(cert["days_left"]) < warn:
            days = f"{cert['days_left']:.1f} days left (warn below {warn:g})"
            problems.append(f"certificate {cert['domain']}: {days}")
    lines = ["Routers:", *_table(["NAME", "RULE", "PRIORITY", "STATUS", "MIDDLEWARES"], router_rows)]
    lines += ["", "Services:", *_table(["NAME", "TYPE", "SERVER", "STATE"], service_rows)]
    lines += ["", "Certificates:", *acme_certificates_table(certificates)]
    lines += ["", "Problems:" if problems else "No problems."] + [f"  - {p}" for p in problems]
    return {"lines": lines, "problems": problems, "ok": not problems}


def traefik_service_servers(service: Any, containers: Any, network: str, port: Any) -> dict[str, Any]:
    """Which of a Compose service's containers Traefik's load balancer (one
    /api/http/services/<name> answer; {} when Traefik does not know the service) reports
    UP, not UP, or does not list, by container id. `containers` are docker_host_info's."""
    if not isinstance(containers, list):
        raise AnsibleFilterError("traefik_service_servers: containers: must be docker_host_info's list")
    status = (service or {}).get("serverStatus") or {} if isinstance(service, Mapping) else {}
    result: dict[str, list[str]] = {"up": [], "down": [], "absent": []}
    for container in containers:
        networks = ((container.get("NetworkSettings") or {}).get("Networks")) or {}
        address = (networks.get(network) or {}).get("IPAddress")
        cid = container.get("Id", "")
        # The server's URL as Traefik names it: http:// or https:// (the auth service).
        urls = (f"{scheme}://{address}:{port}" for scheme in ("http", "https")) if address else ()
        state = next((status[url] for url in urls if url in status), None)
        result["up" if state == "UP" else "down" if state else "absent"].append(cid)
    return result


def acme_without_certificates(acme: Any, domains: Any = None) -> dict[str, Any]:
    """acme.json (parsed) without the certificates of `domains` (every certificate when
    empty): Traefik, restarted, obtains them again. The ACME account stays."""
    if not isinstance(acme, Mapping):
        raise AnsibleFilterError(f"acme_without_certificates: acme.json must be an object, got {acme!r}")
    if domains is not None and not isinstance(domains, list):
        raise AnsibleFilterError(f"acme_without_certificates: domains: must be a list, got {domains!r}")
    wanted = set(domains or [])
    known = {
        (entry.get("domain") or {}).get("main")
        for data in acme.values()
        if isinstance(data, Mapping)
        for entry in data.get("Certificates") or []
    }
    unknown = sorted(wanted - known)
    if unknown:
        raise AnsibleFilterError(
            f"acme_without_certificates: domains: no certificate for {', '.join(unknown)} in acme.json"
        )
    result: dict[str, Any] = {}
    for resolver, data in acme.items():
        if not isinstance(data, Mapping):
            raise AnsibleFilterError(f"acme_without_certificates: resolver '{resolver}': must be an object")
        kept = [
            entry
            for entry in data.get("Certificates") or []
            if wanted and (entry.get("domain") or {}).get("main") not in wanted
        ]
        result[resolver] = {**data, "Certificates": kept}
    return result
