"""Unit tests of the label filters (mcpgw.labels), through a real Jinja environment."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgw import labels as tl

GATEWAY = {"domain": "gateway.test"}


def render(jinja_env, service, gateway=GATEWAY):
    """Apply the filter the way a role does: inside a Jinja expression."""
    template = jinja_env.from_string("{{ service | traefik_labels(gateway) | tojson }}")
    import json

    return json.loads(template.render(service=service, gateway=gateway))


# --- what a valid spec gives -------------------------------------------------------


def test_default_router_is_an_mcp_route(jinja_env):
    labels = render(jinja_env, {"name": "fetch", "port": 8000, "path_prefix": "/mcp"})
    r = "traefik.http.routers.fetch-mcp"
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.docker.network"] == "public"
    assert labels[f"{r}.rule"] == "Host(`fetch.gateway.test`) && PathPrefix(`/mcp`)"
    assert labels[f"{r}.entrypoints"] == "websecure"
    assert labels[f"{r}.priority"] == "2"
    assert labels[f"{r}.service"] == "fetch"
    assert labels[f"{r}.tls"] == "true"
    assert labels[f"{r}.tls.certresolver"] == "letsencrypt"
    # secure-headers first (every answer gets them, ForwardAuth's 401 too), the auth check last.
    assert labels[f"{r}.middlewares"] == "secure-headers@file,ratelimit-mcp@file,mcp-auth@file"
    assert labels["traefik.http.services.fetch.loadbalancer.server.port"] == "8000"
    assert not any("sticky" in key or "healthcheck" in key for key in labels)


def test_a_service_may_be_reached_on_a_network_of_its_own(jinja_env):
    labels = render(jinja_env, {"name": "fetch", "port": 8000, "network": "mcp-fetch"})
    assert labels["traefik.docker.network"] == "mcp-fetch"


def test_every_label_value_is_a_string(jinja_env):
    labels = render(jinja_env, {"name": "fetch", "port": 8000, "sticky": True, "healthcheck": {"path": "/h"}})
    assert all(isinstance(value, str) for value in labels.values())


def test_priority_classes_and_routers(jinja_env):
    service = {
        "name": "auth",
        "port": 8000,
        "hosts": ["auth.gateway.test"],
        "routers": [
            {"name": "oauth", "priority_class": "oauth"},
            {"name": "support", "priority_class": "auth_support", "path_prefix": "/login"},
            {
                "name": "wellknown",
                "priority_class": "oauth",
                "hosts": ["fetch.gateway.test", "echo.gateway.test"],
                "path_prefix": [
                    "/.well-known/oauth-protected-resource",
                    "/.well-known/oauth-authorization-server",
                ],
            },
        ],
    }
    labels = render(jinja_env, service)
    assert labels["traefik.http.routers.auth-oauth.priority"] == "4"
    assert labels["traefik.http.routers.auth-oauth.rule"] == "Host(`auth.gateway.test`)"
    assert labels["traefik.http.routers.auth-oauth.middlewares"] == (
        "secure-headers@file,ratelimit-oauth@file,buffering-oauth@file"
    )
    assert labels["traefik.http.routers.auth-support.priority"] == "3"
    assert labels["traefik.http.routers.auth-wellknown.rule"] == (
        "(Host(`fetch.gateway.test`) || Host(`echo.gateway.test`)) && "
        "(PathPrefix(`/.well-known/oauth-protected-resource`) || "
        "PathPrefix(`/.well-known/oauth-authorization-server`))"
    )


def test_catchall_has_priority_one_and_forward_auth(jinja_env):
    service = {"name": "echo", "port": 8000, "routers": [{"name": "catchall", "priority_class": "catchall"}]}
    labels = render(jinja_env, service)
    assert labels["traefik.http.routers.echo-catchall.priority"] == "1"
    assert labels["traefik.http.routers.echo-catchall.rule"] == "Host(`echo.gateway.test`)"
    assert labels["traefik.http.routers.echo-catchall.middlewares"].endswith(",mcp-auth@file")


def test_own_middlewares_go_before_the_auth_check_without_repeats(jinja_env):
    """A CORS preflight, an allow-list or a rate limit answers before ForwardAuth is asked."""
    service = {
        "name": "fetch",
        "port": 8000,
        "middlewares": ["ip-allowlist@file", "secure-headers@file"],
        "routers": [{"name": "mcp", "path_prefix": "/mcp", "middlewares": ["cors@file"]}],
    }
    labels = render(jinja_env, service)
    assert labels["traefik.http.routers.fetch-mcp.middlewares"] == (
        "secure-headers@file,ratelimit-mcp@file,ip-allowlist@file,cors@file,mcp-auth@file"
    )


def test_user_defined_middlewares_are_known_through_the_gateway(jinja_env):
    gateway = {**GATEWAY, "middlewares": [*tl.DEFAULT_GATEWAY["middlewares"], "ratelimit@file"]}
    labels = render(jinja_env, {"name": "fetch", "port": 8000, "middlewares": ["ratelimit@file"]}, gateway)
    assert labels["traefik.http.routers.fetch-mcp.middlewares"].endswith(",ratelimit@file,mcp-auth@file")


def test_extra_middlewares_add_to_the_known_ones(jinja_env):
    gateway = {**GATEWAY, "extra_middlewares": ["ratelimit@file"]}
    service = {"name": "fetch", "port": 8000, "middlewares": ["ratelimit@file", "cors@file"]}
    labels = render(jinja_env, service, gateway)
    assert labels["traefik.http.routers.fetch-mcp.middlewares"].endswith(
        ",ratelimit@file,cors@file,mcp-auth@file"
    )


def test_healthcheck_and_sticky_cookie(jinja_env):
    service = {
        "name": "echo",
        "port": 8000,
        "healthcheck": {"path": "/healthz", "interval": "5s", "timeout": "500ms"},
        "sticky": True,
    }
    labels = render(jinja_env, service)
    lb = "traefik.http.services.echo.loadbalancer"
    assert labels[f"{lb}.healthcheck.path"] == "/healthz"
    assert labels[f"{lb}.healthcheck.interval"] == "5s"
    assert labels[f"{lb}.healthcheck.timeout"] == "500ms"
    assert labels[f"{lb}.sticky.cookie.name"] == "mcp_session"
    assert labels[f"{lb}.sticky.cookie.secure"] == "true"
    assert labels[f"{lb}.sticky.cookie.httponly"] == "true"


def test_sticky_cookie_name_and_healthcheck_defaults(jinja_env):
    service = {"name": "echo", "port": 8000, "sticky": {"cookie_name": "pin"}, "healthcheck": {"path": "/"}}
    labels = render(jinja_env, service)
    lb = "traefik.http.services.echo.loadbalancer"
    assert labels[f"{lb}.sticky.cookie.name"] == "pin"
    assert labels[f"{lb}.healthcheck.interval"] == "10s"
    assert labels[f"{lb}.healthcheck.timeout"] == "3s"


def test_strategy_hrw_keeps_a_client_address_on_one_server(jinja_env):
    labels = render(jinja_env, {"name": "everything", "port": 8000, "strategy": "hrw"})
    assert labels["traefik.http.services.everything.loadbalancer.strategy"] == "hrw"
    assert not any(".sticky." in key for key in labels)


def test_https_to_the_server_goes_through_its_servers_transport(jinja_env):
    spec = {"name": "auth", "port": 8000, "scheme": "https", "servers_transport": "auth@file"}
    labels = render(jinja_env, spec)
    assert labels["traefik.http.services.auth.loadbalancer.server.scheme"] == "https"
    assert labels["traefik.http.services.auth.loadbalancer.serverstransport"] == "auth@file"
    plain = render(jinja_env, {"name": "fetch", "port": 8000})
    assert not any(key.endswith((".server.scheme", ".serverstransport")) for key in plain)


def test_no_certresolver_gives_plain_tls(jinja_env):
    labels = render(jinja_env, {"name": "fetch", "port": "8000"}, {**GATEWAY, "certresolver": ""})
    assert labels["traefik.http.routers.fetch-mcp.tls"] == "true"
    assert "traefik.http.routers.fetch-mcp.tls.certresolver" not in labels
    assert labels["traefik.http.services.fetch.loadbalancer.server.port"] == "8000"


def test_check_accepts_distinct_services(jinja_env):
    a = render(jinja_env, {"name": "fetch", "port": 8000})
    b = render(jinja_env, {"name": "echo", "port": 8000})
    assert tl.traefik_labels_check([a, b]) == [a, b]
    assert tl.traefik_labels_check({"fetch": a, "echo": b}) == {"fetch": a, "echo": b}


# --- errors: each names the service and the key -------------------------------------

ERROR_CASES = [
    ({"name": "fetch"}, "service 'fetch': key 'port': is required"),
    ({"name": "fetch", "port": "http"}, "service 'fetch': key 'port': must be an integer, got 'http'"),
    ({"name": "fetch", "port": 0}, "service 'fetch': key 'port': must be between 1 and 65535, got 0"),
    ({"name": "fetch", "port": 70000}, "service 'fetch': key 'port': must be between 1 and 65535, got 70000"),
    ({"name": "fetch", "port": True}, "service 'fetch': key 'port': must be an integer, got True"),
    ({"name": "Fetch_1", "port": 80}, "service 'Fetch_1': key 'name': invalid service name 'Fetch_1'"),
    ({"port": 80}, "service 'None': key 'name': invalid service name None"),
    (
        {"name": "fetch", "port": 80, "hosts": ["bad_host.example.com"]},
        "service 'fetch': key 'hosts': invalid host name 'bad_host.example.com'",
    ),
    (
        {"name": "fetch", "port": 80, "hosts": ["Fetch.example.com"]},
        "service 'fetch': key 'hosts': invalid host name 'Fetch.example.com'",
    ),
    ({"name": "fetch", "port": 80, "hosts": []}, "service 'fetch': key 'hosts': must name at least one host"),
    (
        {"name": "fetch", "port": 80, "hosts": "fetch.example.com"},
        "service 'fetch': key 'hosts': must be a list of host names",
    ),
    (
        {"name": "fetch", "port": 80, "hosts": ["a.example.com", "a.example.com"]},
        "service 'fetch': key 'hosts': lists a host twice",
    ),
    (
        {"name": "fetch", "port": 80, "path_prefix": "mcp"},
        "key 'routers[0].path_prefix': invalid path prefix 'mcp'",
    ),
    (
        {"name": "fetch", "port": 80, "middlewares": ["nope@file"]},
        "service 'fetch': key 'middlewares': undefined middleware 'nope@file'",
    ),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "mcp", "middlewares": ["bad name"]}]},
        "service 'fetch': key 'routers[0].middlewares': invalid middleware name 'bad name'",
    ),
    (
        {"name": "fetch", "port": 80, "strategy": "random"},
        "service 'fetch': key 'strategy': must be one of wrr, p2c, hrw, leasttime, got 'random'",
    ),
    (
        {"name": "fetch", "port": 80, "strategy": "hrw", "sticky": True},
        "service 'fetch': key 'strategy': hrw and a sticky cookie exclude each other",
    ),
    (
        {"name": "fetch", "port": 80, "priority_class": "urgent"},
        "service 'fetch': key 'routers[0].priority_class': unknown priority class 'urgent'",
    ),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "a"}, {"name": "a", "path_prefix": "/x"}]},
        "service 'fetch': key 'routers[1].name': duplicate router name 'fetch-a'",
    ),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "a"}, {"name": "b"}]},
        "service 'fetch': key 'routers[1]': same rule and priority as routers[0]",
    ),
    (
        {"name": "fetch", "port": 80, "routers": []},
        "service 'fetch': key 'routers': must be a non-empty list",
    ),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "UP"}]},
        "key 'routers[0].name': invalid router name 'UP'",
    ),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "a", "prio": 3}]},
        "service 'fetch': key 'routers[0]': unknown key(s) prio",
    ),
    (
        {"name": "fetch", "port": 80, "sticky": "yes"},
        "service 'fetch': key 'sticky': must be true, false or a dict",
    ),
    (
        {"name": "fetch", "port": 80, "sticky": {"cookie_name": "bad cookie"}},
        "service 'fetch': key 'sticky.cookie_name': invalid cookie name 'bad cookie'",
    ),
    (
        {"name": "fetch", "port": 80, "healthcheck": {"interval": "5s"}},
        "service 'fetch': key 'healthcheck.path': is required",
    ),
    (
        {"name": "fetch", "port": 80, "healthcheck": {"path": "/h", "interval": "5 seconds"}},
        "service 'fetch': key 'healthcheck.interval': invalid duration '5 seconds'",
    ),
    (
        {"name": "fetch", "port": 80, "healthcheck": {"path": "/h", "retries": 3}},
        "service 'fetch': key 'healthcheck': unknown key(s) retries",
    ),
    ({"name": "fetch", "port": 80, "replicas": 2}, "service 'fetch': key '(spec)': unknown key(s) replicas"),
    (
        {"name": "fetch", "port": 80, "routers": [{"name": "a", "service": "x y"}]},
        "service 'fetch': key 'routers[0].service': invalid service reference 'x y'",
    ),
    (
        {"name": "fetch", "port": 80, "scheme": "h2c"},
        "service 'fetch': key 'scheme': must be one of http, https",
    ),
    (
        {"name": "fetch", "port": 80, "scheme": "https"},
        "service 'fetch': key 'servers_transport': is required with scheme https",
    ),
    (
        {"name": "fetch", "port": 80, "scheme": "https", "servers_transport": "auth"},
        "service 'fetch': key 'servers_transport': must be <name>@file or <name>@docker, got 'auth'",
    ),
]


@pytest.mark.parametrize(("spec", "message"), ERROR_CASES, ids=[m for _, m in ERROR_CASES])
def test_bad_spec_raises_naming_service_and_key(jinja_env, spec, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        render(jinja_env, spec)


def test_error_case_count():
    assert len(ERROR_CASES) >= 15


def test_no_domain_needs_hosts():
    with pytest.raises(AnsibleFilterError, match=re.escape("service 'fetch': key 'hosts': is required")):
        tl.traefik_labels({"name": "fetch", "port": 80}, {"domain": ""})


def test_unknown_gateway_setting():
    with pytest.raises(AnsibleFilterError, match="unknown gateway setting"):
        tl.traefik_labels({"name": "fetch", "port": 80}, {"domian": "x.test"})


def test_check_rejects_a_router_name_used_by_two_services():
    a = tl.traefik_labels({"name": "fetch", "port": 80}, GATEWAY)
    with pytest.raises(
        AnsibleFilterError, match=re.escape("router name 'fetch-mcp' is also defined by fetch")
    ):
        tl.traefik_labels_check({"fetch": a, "fetch2": a})


def test_check_rejects_the_same_rule_and_priority_in_two_services():
    a = tl.traefik_labels({"name": "fetch", "port": 80}, GATEWAY)
    b = tl.traefik_labels({"name": "other", "port": 80, "hosts": ["fetch.gateway.test"]}, GATEWAY)
    with pytest.raises(AnsibleFilterError, match=re.escape("same rule and priority as router 'fetch-mcp'")):
        tl.traefik_labels_check([a, b])


def test_check_rejects_bad_input():
    with pytest.raises(AnsibleFilterError, match="expected a list or dict"):
        tl.traefik_labels_check("labels")


# --- property: any valid spec gives well-formed routers -----------------------------

names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
hosts = st.lists(st.builds(lambda a, b: f"{a}.{b}.test", names, names), min_size=1, max_size=3, unique=True)
routers = st.lists(
    st.fixed_dictionaries(
        {"name": names},
        optional={
            "priority_class": st.sampled_from(sorted(tl.PRIORITY_CLASSES)),
            "path_prefix": st.from_regex(r"/[a-z0-9/._-]{0,12}", fullmatch=True),
        },
    ),
    min_size=1,
    max_size=5,
    # Routers of one service that share hosts collide when class and path are equal too.
    unique_by=(lambda r: r["name"], lambda r: (r.get("priority_class", "mcp"), r.get("path_prefix"))),
)
specs = st.fixed_dictionaries(
    {"name": names, "port": st.integers(1, 65535), "routers": routers},
    optional={"hosts": hosts, "sticky": st.booleans()},
)


@settings(max_examples=200, deadline=None)
@given(specs)
def test_any_valid_spec_gives_unique_complete_routers(spec):
    labels = tl.traefik_labels(spec, GATEWAY)
    routers_found = tl._routers_of(labels)
    assert len(routers_found) == len(spec["routers"])
    assert set(routers_found) == {f"{spec['name']}-{r['name']}" for r in spec["routers"]}
    for fields in routers_found.values():
        assert {"rule", "entrypoints", "service", "priority"} <= set(fields)
        assert int(fields["priority"]) in tl.PRIORITY_CLASSES.values()
    tl.traefik_labels_check([labels])
