"""Unit tests of the catalogue filters (mcpgw.catalogue)."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from mcpgw import catalogue as ms
from mcpgw import labels as tl

DOMAIN = "gateway.test"


def test_defaults_are_filled(jinja_env):
    template = jinja_env.from_string("{{ catalogue | mcp_services_normalize(domain) | tojson }}")
    import json

    [entry] = json.loads(
        template.render(catalogue=[{"name": "echo", "image": "mcpgw/echo:0.1.0"}], domain=DOMAIN)
    )
    assert entry["hosts"] == ["echo.gateway.test"]
    assert entry["path"] == "/mcp"
    assert entry["replicas"] == 1
    assert entry["state"] == "present"
    assert entry["source"] == "registry"
    assert entry["allowed_users"] == []
    assert entry["sticky"] is False


def test_resources_cover_every_host_of_present_services():
    services = ms.mcp_services_normalize(
        [
            {
                "name": "echo",
                "image": "e",
                "hosts": ["a.gateway.test", "b.gateway.test"],
                "allowed_users": ["alice"],
            },
            {"name": "old", "image": "o", "state": "absent"},
        ],
        DOMAIN,
    )
    assert ms.mcp_services_resources(services) == [
        {"host": "a.gateway.test", "path": "/mcp", "allowed_users": ["alice"], "allowed_groups": []},
        {"host": "b.gateway.test", "path": "/mcp", "allowed_users": ["alice"], "allowed_groups": []},
    ]


def test_label_spec_gives_an_mcp_route_and_a_catchall():
    [service] = ms.mcp_services_normalize(
        [{"name": "echo", "image": "e", "replicas": 2, "sticky": True, "healthcheck": {"path": "/health"}}],
        DOMAIN,
    )
    labels = tl.traefik_labels(ms.mcp_services_label_spec(service), {"domain": DOMAIN})
    assert labels["traefik.http.routers.echo-mcp.rule"] == "Host(`echo.gateway.test`) && PathPrefix(`/mcp`)"
    assert labels["traefik.http.routers.echo-mcp.priority"] == "2"
    assert labels["traefik.http.routers.echo-mcp.middlewares"].endswith(",mcp-auth@file")
    # Reached on a network of its own, which only Traefik shares.
    assert labels["traefik.docker.network"] == "mcp-echo"
    assert labels["traefik.http.routers.echo-catchall.rule"] == "Host(`echo.gateway.test`)"
    assert labels["traefik.http.routers.echo-catchall.priority"] == "1"
    assert labels["traefik.http.services.echo.loadbalancer.sticky.cookie.name"] == "mcp_session"
    assert labels["traefik.http.services.echo.loadbalancer.healthcheck.path"] == "/health"


ERRORS = [
    ([{"name": "Echo", "image": "e"}], "entry 'Echo': key 'name': invalid name 'Echo'"),
    (
        [{"name": "echo", "image": "e"}, {"name": "echo", "image": "e"}],
        "entry 'echo': key 'name': is used by two",
    ),
    ([{"name": "echo", "image": "e", "replica": 2}], "entry 'echo': key '(entry)': unknown key(s) replica"),
    (
        [{"name": "echo", "image": "e", "state": "gone"}],
        "entry 'echo': key 'state': must be present or absent",
    ),
    (
        [{"name": "echo", "source": "build"}],
        "entry 'echo': key 'build_context': is required with source build",
    ),
    ([{"name": "echo", "source": "archive"}], "entry 'echo': key 'archive': is required with source archive"),
    ([{"name": "echo"}], "entry 'echo': key 'image': is required with source registry"),
    ([{"name": "echo", "image": "e", "source": "ftp"}], "entry 'echo': key 'source': must be one of"),
    ([{"name": "echo", "image": "e", "port": "80"}], "entry 'echo': key 'port': must be an integer"),
    (
        [{"name": "echo", "image": "e", "replicas": 0}],
        "entry 'echo': key 'replicas': must be a positive integer",
    ),
    ([{"name": "echo", "image": "e", "path": "mcp"}], "entry 'echo': key 'path': must start with '/'"),
    (
        [{"name": "echo", "image": "e", "allowed_users": "alice"}],
        "entry 'echo': key 'allowed_users': must be a list",
    ),
    (
        [{"name": "echo", "image": "e", "environment": ["A=1"]}],
        "entry 'echo': key 'environment': must be a dict",
    ),
    (
        [{"name": "echo", "image": "e", "command": 42}],
        "entry 'echo': key 'command': must be a string or a list",
    ),
    (
        [
            {"name": "a", "image": "e", "hosts": ["x.gateway.test"]},
            {"name": "b", "image": "e", "hosts": ["x.gateway.test"]},
        ],
        "entry 'b': key 'hosts': host 'x.gateway.test' is also served by entry 'a'",
    ),
]


@pytest.mark.parametrize(("catalogue", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_bad_entries_are_named(catalogue, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        ms.mcp_services_normalize(catalogue, DOMAIN)


def test_catalogue_must_be_a_list():
    with pytest.raises(AnsibleFilterError, match="mcp_services: must be a list"):
        ms.mcp_services_normalize({"name": "echo"}, DOMAIN)
