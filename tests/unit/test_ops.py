"""Unit tests of the day-2 filters (mcpgw.ops) and the Docker health check with the drain
marker (mcpgw.catalogue.docker_healthcheck), against real certificates made by trustme."""

from __future__ import annotations

import base64
import json

import pytest
import trustme
from ansible.errors import AnsibleFilterError
from cryptography import x509

from mcpgw import catalogue as ms
from mcpgw import ops


def _acme(*names: str, resolver: str = "letsencrypt") -> tuple[dict, dict[str, x509.Certificate]]:
    ca = trustme.CA()
    certs = {}
    entries = []
    for name in names:
        leaf = ca.issue_cert(name)
        pem = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        certs[name] = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        entries.append(
            {
                "domain": {"main": name},
                "certificate": base64.b64encode(pem).decode(),
                "key": base64.b64encode(leaf.private_key_pem.bytes()).decode(),
                "Store": "default",
            }
        )
    return {resolver: {"Account": {"Email": "ops@example.com"}, "Certificates": entries}}, certs


def test_acme_certificates_reads_serial_issuer_and_days_left_without_keys():
    acme, certs = _acme("echo.gateway.test", "auth.gateway.test")
    now = certs["echo.gateway.test"].not_valid_after_utc.timestamp() - 10 * 86400
    rows = ops.acme_certificates(json.dumps(acme), now)
    assert {row["domain"] for row in rows} == {"echo.gateway.test", "auth.gateway.test"}
    echo = next(row for row in rows if row["domain"] == "echo.gateway.test")
    assert echo["serial"] == format(certs["echo.gateway.test"].serial_number, "x")
    assert "Testing CA" in echo["issuer"]
    assert echo["days_left"] == pytest.approx(10, abs=0.01)
    assert echo["resolver"] == "letsencrypt"
    keys = [entry["key"] for entry in acme["letsencrypt"]["Certificates"]]
    assert not any(key in json.dumps(rows) for key in keys)


def test_acme_certificates_of_an_empty_storage_is_empty():
    assert ops.acme_certificates("") == []
    assert ops.acme_certificates({"letsencrypt": {"Certificates": None}}) == []


@pytest.mark.parametrize(
    ("acme", "message"),
    [
        ("{not json", "not JSON"),
        ([], "must be an object"),
        ({"le": {"Certificates": [{"certificate": "eA=="}]}}, "key 'domain.main'"),
        (
            {"le": {"Certificates": [{"domain": {"main": "a.test"}, "certificate": "bm9wZQ=="}]}},
            "key 'certificate'",
        ),
        ({"le": {"Certificates": [{"domain": {"main": "a.test"}}]}}, "key 'certificate'"),
    ],
)
def test_acme_certificates_names_the_offending_key(acme, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ops.acme_certificates(acme)


def test_acme_certificates_table_has_a_line_per_certificate():
    acme, _ = _acme("echo.gateway.test")
    lines = ops.acme_certificates_table(ops.acme_certificates(acme))
    assert lines[0].split() == ["DOMAIN", "ISSUER", "SERIAL", "NOT", "AFTER", "DAYS", "LEFT"]
    assert lines[1].startswith("echo.gateway.test")
    with pytest.raises(AnsibleFilterError, match="key 'serial'"):
        ops.acme_certificates_table([{"domain": "a", "issuer": "b", "not_after": "c", "days_left": 1}])


def test_acme_without_certificates_keeps_the_account():
    acme, _ = _acme("echo.gateway.test", "auth.gateway.test")
    one = ops.acme_without_certificates(acme, ["echo.gateway.test"])
    assert [c["domain"]["main"] for c in one["letsencrypt"]["Certificates"]] == ["auth.gateway.test"]
    assert one["letsencrypt"]["Account"] == acme["letsencrypt"]["Account"]
    assert ops.acme_without_certificates(acme, [])["letsencrypt"]["Certificates"] == []
    with pytest.raises(AnsibleFilterError, match=r"domains: no certificate for nope\.test"):
        ops.acme_without_certificates(acme, ["nope.test"])


ROUTERS = [
    {"name": "echo-mcp@docker", "rule": "Host(`echo.gateway.test`)", "priority": 2, "status": "enabled",
     "middlewares": ["mcp-auth@file"]},
    {"name": "broken@file", "rule": "Host(`x`)", "priority": 0, "status": "disabled",
     "error": ["the service \"nope@file\" does not exist"]},
]  # fmt: skip
SERVICES = [
    {"name": "echo@docker", "type": "loadbalancer", "status": "enabled",
     "serverStatus": {"http://172.30.0.5:8000": "UP", "http://172.30.0.6:8000": "DOWN"}},
    {"name": "api@internal", "status": "enabled"},
]  # fmt: skip


def test_gateway_status_tables_and_problems():
    acme, certs = _acme("echo.gateway.test")
    now = certs["echo.gateway.test"].not_valid_after_utc.timestamp() - 3 * 86400
    status = ops.gateway_status(ROUTERS, SERVICES, ops.acme_certificates(acme, now), 14)
    text = "\n".join(status["lines"])
    assert "echo-mcp@docker" in text
    assert "mcp-auth@file" in text
    assert "http://172.30.0.6:8000  DOWN" in text
    assert not status["ok"]
    assert status["problems"] == [
        'router broken@file: disabled (the service "nope@file" does not exist)',
        "service echo@docker: server http://172.30.0.6:8000 is DOWN",
        "certificate echo.gateway.test: 3.0 days left (warn below 14)",
    ]


def test_gateway_status_of_a_healthy_gateway_is_ok():
    status = ops.gateway_status(ROUTERS[:1], SERVICES[1:], [], 14)
    assert status["ok"]
    assert status["lines"][-1] == "No problems."


@pytest.mark.parametrize(
    ("args", "message"),
    [(({}, []), "routers"), (([], {}), "services"), (([], [], [], "soon"), "warn_days")],
)
def test_gateway_status_names_the_offending_argument(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ops.gateway_status(*args)


def test_traefik_service_servers_matches_containers_by_address():
    containers = [
        {"Id": "old", "NetworkSettings": {"Networks": {"public": {"IPAddress": "172.30.0.5"}}}},
        {"Id": "new", "NetworkSettings": {"Networks": {"public": {"IPAddress": "172.30.0.6"}}}},
        {"Id": "starting", "NetworkSettings": {"Networks": {"public": {"IPAddress": "172.30.0.7"}}}},
    ]
    servers = ops.traefik_service_servers(SERVICES[0], containers, "public", 8000)
    assert servers == {"up": ["old"], "down": ["new"], "absent": ["starting"]}
    assert ops.traefik_service_servers({}, containers, "public", 8000)["absent"] == ["old", "new", "starting"]
    # The auth service's servers are https:// URLs.
    auth = {"serverStatus": {"https://172.30.0.5:8000": "UP", "https://172.30.0.6:8000": "DOWN"}}
    assert ops.traefik_service_servers(auth, containers, "public", 8000) == servers
    with pytest.raises(AnsibleFilterError, match="containers"):
        ops.traefik_service_servers({}, None, "public", 8000)


def test_docker_healthcheck_fails_while_draining():
    check = ms.docker_healthcheck(8000, {"path": "/health", "interval": "2s"}, "echo")
    assert check["test"][0] == "CMD-SHELL"
    assert check["test"][1].startswith(f"test ! -e {ms.DRAIN_MARKER} && python3 -c")
    assert "http://127.0.0.1:8000/health" in check["test"][1]
    assert check["interval"] == "2s"
    own = ms.docker_healthcheck(80, {"path": "/", "command": "wget -qO- localhost/healthz"}, "web")
    assert own["test"][1].endswith("&& wget -qO- localhost/healthz")
    with pytest.raises(AnsibleFilterError, match=r"'web': key 'healthcheck\.command'"):
        ms.docker_healthcheck(80, {"path": "/", "command": ["wget"]}, "web")


def test_catalogue_compose_has_the_docker_healthcheck_only_with_a_healthcheck():
    [with_check, without] = ms.mcp_services_normalize(
        [
            {"name": "echo", "image": "e", "healthcheck": {"path": "/health"}},
            {"name": "plain", "image": "p"},
        ],
        "gateway.test",
    )
    assert "healthcheck" in ms.mcp_services_compose(with_check, {}, "public")["services"]["server"]
    assert "healthcheck" not in ms.mcp_services_compose(without, {}, "public")["services"]["server"]
