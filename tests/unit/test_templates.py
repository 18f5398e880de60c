"""Every role template and every computed role variable renders with undefined names as errors."""

from __future__ import annotations

import pytest
import yaml

from mcpgw.catalogue import mcp_services_normalize

from .conftest import INTERNAL_CA_PEM, ROLES, render_template_file, render_var

TEMPLATES = sorted(ROLES.glob("*/templates/**/*.j2"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROLES)))
def test_template_renders_strictly(template):
    role = template.relative_to(ROLES).parts[0]
    overrides = {
        "docker_service_environment": {"HTTP_PROXY": "http://proxy:3128"},
        "_auth_redis_password": "redis-secret",  # a fact the auth role reads from the host
        # The package entry that mcp_services' package tasks loop over, and its executable.
        "mcp_service": mcp_services_normalize(
            [{"name": "time", "package": {"pypi": "mcp-server-time==2026.10.19"}}], "gateway.test"
        )[0],
        "mcp_service_bin": "mcp-server-time",
    }
    text = render_template_file(role, template, **overrides)
    assert "{{" not in text
    assert "{%" not in text


def test_templates_were_found():
    assert TEMPLATES, "no .j2 template found under roles/*/templates"


def test_docker_dropin_lists_the_environment():
    template = ROLES / "docker/templates/environment.conf.j2"
    text = render_template_file("docker", template, docker_service_environment={"B": "2", "A": "1"})
    assert text.splitlines()[1:] == ["[Service]", 'Environment="A=1"', 'Environment="B=2"']


def test_traefik_static_config_redirects_and_discovers():
    # Parse what the role writes to traefik.yml, as Traefik will read it.
    config = yaml.safe_load(render_var("traefik", "_traefik_config | to_nice_yaml(indent=2, sort_keys=true)"))
    web = config["entryPoints"]["web"]
    assert web["address"] == ":80"
    assert web["http"]["redirections"]["entryPoint"] == {
        "to": "websecure",
        "scheme": "https",
        "permanent": True,
    }
    assert config["providers"]["docker"] == {
        "endpoint": "unix:///var/run/docker.sock",
        "exposedByDefault": False,
        "network": "public",
    }
    assert config["entryPoints"]["websecure"]["http"]["tls"] == {"certResolver": "letsencrypt"}
    acme = config["certificatesResolvers"]["letsencrypt"]["acme"]
    assert acme["storage"] == "/acme/acme.json"
    assert acme["httpChallenge"] == {"entryPoint": "web"}


def test_traefik_config_extra_is_merged_recursively():
    config = render_var(
        "traefik",
        "_traefik_config",
        traefik_config_extra={"entryPoints": {"websecure": {"asDefault": True}}},
        gateway_acme_enabled=False,
    )
    websecure = config["entryPoints"]["websecure"]
    assert websecure["asDefault"] is True
    assert websecure["address"] == ":443"
    assert websecure["http"]["tls"] == {}
    assert "certificatesResolvers" not in config


def test_traefik_compose_publishes_on_the_bind_address():
    compose = render_var("traefik", "_traefik_compose", traefik_bind_address="127.0.0.1")
    service = compose["services"]["traefik"]
    assert service["ports"] == ["127.0.0.1:80:80", "127.0.0.1:443:443"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
    assert service["healthcheck"]["test"] == ["CMD", "traefik", "healthcheck", "--ping"]
    assert compose["networks"] == {"public": {"external": True}}


def test_traefik_compose_publishes_on_every_interface_by_default():
    compose = render_var("traefik", "_traefik_compose")
    assert compose["services"]["traefik"]["ports"] == ["80:80", "443:443"]
    assert compose["services"]["traefik"]["networks"] == {"public": {}}


def test_traefik_answers_to_its_network_aliases_at_its_fixed_address():
    compose = render_var(
        "traefik",
        "_traefik_compose",
        gateway_traefik_ipv4_address="172.30.0.2",
        gateway_network_public_subnet="172.30.0.0/24",
        traefik_network_aliases=["idp.example.com"],
    )
    assert compose["services"]["traefik"]["networks"] == {
        "public": {"ipv4_address": "172.30.0.2", "aliases": ["idp.example.com"]}
    }


@pytest.mark.parametrize(
    ("distribution", "major", "expected"),
    [("Debian", "13", "docker-compose"), ("Ubuntu", "24", "docker-compose-v2"), ("Debian", "12", "")],
)
def test_docker_distro_compose_package(distribution, major, expected):
    facts = {"distribution": distribution, "distribution_major_version": major}
    assert render_var("docker", "_docker_distro_compose_package", ansible_facts=facts) == expected


def test_traefik_dynamic_files_hold_the_middlewares_tls_and_dashboard():
    files = render_var(
        "traefik", "_traefik_dynamic_files_enabled", traefik_dashboard_users=["admin:$2b$05$hash"]
    )
    middlewares = files["middlewares.yml"]["http"]["middlewares"]
    assert set(middlewares) == {
        "mcp-auth",
        "secure-headers",
        "ip-allowlist",
        "cors",
        "dashboard-auth",
        "ratelimit-oauth",
        "ratelimit-mcp",
        "buffering-oauth",
        "internal-allowlist",
    }
    headers = middlewares["secure-headers"]["headers"]
    assert headers["customResponseHeaders"] == {"Server": ""}  # no banner of what runs behind
    assert headers["customRequestHeaders"] == {"Forwarded": ""}  # no client-made RFC 7239 header
    assert middlewares["ratelimit-mcp"]["rateLimit"] == {"average": 100, "burst": 300, "period": "1s"}
    assert middlewares["buffering-oauth"]["buffering"] == {"maxRequestBodyBytes": 65536}
    assert middlewares["internal-allowlist"]["ipAllowList"]["sourceRange"] == ["127.0.0.1/32", "::1/128"]
    internal = files["internal.yml"]["http"]["routers"]
    assert internal["ping"]["service"] == "ping@internal"
    assert internal["metrics"]["service"] == "prometheus@internal"
    assert internal["metrics"]["middlewares"] == ["internal-allowlist@file"]
    # The day-2 playbooks read the API from inside Traefik's network namespace, as 127.0.0.1.
    assert internal["api-internal"]["service"] == "api@internal"
    assert internal["api-internal"]["middlewares"] == ["internal-allowlist@file"]
    forward = middlewares["mcp-auth"]["forwardAuth"]
    # Over TLS to the name in the auth service's certificate, trusting the internal CA only.
    assert forward["address"] == "https://auth:8000/verify"
    assert forward["tls"] == {"ca": INTERNAL_CA_PEM}
    transport = files["transports.yml"]["http"]["serversTransports"]
    assert transport == {"auth": {"serverName": "auth", "rootCAs": [INTERNAL_CA_PEM]}}
    assert forward["trustForwardHeader"] is False
    assert forward["authResponseHeaders"] == ["X-User-Id", "X-User-Name", "X-Auth-Token"]
    assert middlewares["ip-allowlist"] == {"ipAllowList": {"sourceRange": ["0.0.0.0/0", "::/0"]}}
    assert middlewares["secure-headers"]["headers"]["stsSeconds"] == 31536000
    default_tls = files["tls.yml"]["tls"]["options"]["default"]
    assert default_tls["minVersion"] == "VersionTLS12"
    assert default_tls["sniStrict"] is True
    router = files["dashboard.yml"]["http"]["routers"]["dashboard"]
    assert router["rule"] == "Host(`traefik.gateway.test`)"
    assert router["service"] == "api@internal"
    assert router["middlewares"] == ["secure-headers@file", "dashboard-auth@file"]


def test_traefik_dashboard_can_use_mcp_auth_or_be_disabled():
    files = render_var("traefik", "_traefik_dynamic_files_enabled", traefik_dashboard_auth="mcp-auth")
    assert files["dashboard.yml"]["http"]["routers"]["dashboard"]["middlewares"][-1] == "mcp-auth@file"
    assert "dashboard-auth" not in files["middlewares.yml"]["http"]["middlewares"]
    files = render_var("traefik", "_traefik_dynamic_files_enabled", traefik_dashboard_enabled=False)
    assert "dashboard.yml" not in files


def test_traefik_entrypoints_drop_alias_headers_and_set_timeouts():
    config = render_var("traefik", "_traefik_config")
    for name in ("web", "websecure"):
        entrypoint = config["entryPoints"][name]
        assert entrypoint["http"]["aliasHeadersStrategy"] == "delete"
        assert entrypoint["transport"]["respondingTimeouts"]["writeTimeout"] == "0s"
    assert config["entryPoints"]["internal"]["address"] == ":8082"
    assert config["metrics"]["prometheus"]["entryPoint"] == "internal"
    # Routed by internal.yml behind internal-allowlist: not by Traefik's own open router.
    assert config["ping"] == {"entryPoint": "internal", "manualRouting": True}
    assert config["metrics"]["prometheus"]["manualRouting"] is True
    assert config["accessLog"]["fields"]["queryParameters"] == {"defaultMode": "drop"}
    assert "insecure" not in config["api"]


def test_traefik_trusts_a_private_acme_ca_bundle():
    compose = render_var("traefik", "_traefik_compose", traefik_acme_ca_bundle="/srv/ca.pem")
    service = compose["services"]["traefik"]
    assert "/srv/ca.pem:/etc/traefik/acme-ca-bundle.pem:ro" in service["volumes"]
    assert service["environment"]["LEGO_CA_CERTIFICATES"] == "/etc/traefik/acme-ca-bundle.pem"


def test_pebble_resolves_every_name_to_traefik():
    compose = render_var(
        "acme_test_ca",
        "_acme_test_ca_compose",
        gateway_traefik_ipv4_address="172.30.0.2",
        gateway_network_public_subnet="172.30.0.0/24",
    )
    command = compose["services"]["challtestsrv"]["command"]
    assert command[command.index("-defaultIPv4") + 1] == "172.30.0.2"
    pebble = compose["services"]["pebble"]
    assert pebble["ports"] == ["127.0.0.1:15000:15000"]
    config = render_var("acme_test_ca", "_acme_test_ca_pebble_config")
    assert config["pebble"]["httpPort"] == 80
    assert config["pebble"]["certificateValidityPeriod"] == 7776000


def test_auth_routes_come_from_the_label_filter_and_leave_verify_internal():
    labels = render_var(
        "auth",
        "_auth_labels",
        auth_resources=[{"host": "fetch.gateway.test"}, {"host": "echo.gateway.test"}],
        _auth_redis_password="x",
    )
    oauth = labels["traefik.http.routers.auth-oauth.rule"]
    assert oauth.startswith("Host(`auth.gateway.test`) && (")
    assert "/verify" not in oauth
    assert labels["traefik.http.routers.auth-oauth.priority"] == "4"
    assert "mcp-auth" not in labels["traefik.http.routers.auth-oauth.middlewares"]
    wellknown = labels["traefik.http.routers.auth-wellknown.rule"]
    assert "Host(`fetch.gateway.test`) || Host(`echo.gateway.test`)" in wellknown
    assert "PathPrefix(`/.well-known/oauth-protected-resource`)" in wellknown
    assert labels["traefik.http.services.auth.loadbalancer.server.port"] == "8000"
    assert labels["traefik.http.services.auth.loadbalancer.server.scheme"] == "https"
    assert labels["traefik.http.services.auth.loadbalancer.serverstransport"] == "auth@file"
    assert labels["traefik.http.services.auth.loadbalancer.healthcheck.path"] == "/health"


def test_auth_without_mcp_hosts_has_no_wellknown_router():
    labels = render_var("auth", "_auth_labels", _auth_redis_password="x")
    assert "traefik.http.routers.auth-wellknown.rule" not in labels


def test_auth_compose_keeps_redis_internal():
    compose = render_var("auth", "_auth_compose", _auth_redis_password="x")
    redis = compose["services"]["redis"]
    assert "ports" not in redis
    assert redis["networks"] == ["gateway-backend"]
    assert redis["user"] == "999:999"
    auth = compose["services"]["auth"]
    assert "ports" not in auth
    assert auth["read_only"] is True
    assert auth["networks"] == ["public", "gateway-backend"]
    assert compose["networks"]["gateway-backend"] == {"external": True}


def test_auth_config_carries_resources_users_and_header_names():
    config = render_var(
        "auth",
        "_auth_config",
        _auth_redis_password="x",
        auth_resources=[{"host": "fetch.gateway.test", "allowed_users": ["alice"]}],
        auth_local_users=[{"username": "alice", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y"}],
    )
    assert config["issuer"] == "https://auth.gateway.test"
    assert config["resources"] == [{"host": "fetch.gateway.test", "allowed_users": ["alice"]}]
    assert config["users"][0]["username"] == "alice"
    assert config["verify_headers"]["user_id"] == "X-User-Id"
    assert config["redis_url"] == "redis://redis:6379/0"


def test_mcp_services_know_the_users_own_middlewares():
    labels = render_var(
        "mcp_services",
        "_mcp_services_labels",
        mcp_services=[{"name": "echo", "image": "e", "middlewares": ["strict@file"]}],
        gateway_middlewares_extra={"strict": {"rateLimit": {"average": 10}}},
    )
    assert labels["echo"]["traefik.http.routers.echo-mcp.middlewares"] == (
        "secure-headers@file,ratelimit-mcp@file,strict@file,mcp-auth@file"
    )


def test_auth_serves_tls_with_its_certificate_and_checks_its_health_over_tls():
    compose = render_var("auth", "_auth_compose", _auth_redis_password="x")
    auth = compose["services"]["auth"]
    assert auth["environment"]["AUTH_TLS_CERTIFICATE"] == "/run/secrets/tls-cert.pem"
    assert auth["environment"]["AUTH_TLS_KEY"] == "/run/secrets/tls-key.pem"
    assert "/opt/mcp-gateway/auth/secrets/tls-key.pem:/run/secrets/tls-key.pem:ro" in auth["volumes"]
    assert "/opt/mcp-gateway/auth/secrets/tls-cert.pem:/run/secrets/tls-cert.pem:ro" in auth["volumes"]
    assert "/opt/mcp-gateway/internal-ca/ca.pem:/run/secrets/internal-ca.pem:ro" in auth["volumes"]
    probe = auth["healthcheck"]["test"][1]
    assert "https://127.0.0.1:8000/health" in probe
    assert "cafile='/run/secrets/internal-ca.pem'" in probe


def _tls_info(renew=True, aki="ca:1", sans=("DNS:auth", "IP:127.0.0.1")):
    current = {"valid_at": {"renew": renew}, "authority_key_identifier": aki, "subject_alt_name": list(sans)}
    return {"results": [current, {"subject_key_identifier": "ca:1"}]}


@pytest.mark.parametrize(
    ("info", "issue"),
    [
        (_tls_info(), False),
        # No certificate yet: x509_certificate_info failed (failed_when: false), no valid_at.
        ({"results": [{"msg": "no such file"}, {"subject_key_identifier": "ca:1"}]}, True),
        # None in the secrets listing: the read was skipped.
        ({"results": [{"skipped": True}, {"skipped": True}]}, True),
        ({"skipped": True}, True),
        (_tls_info(renew=False), True),  # ends within auth_tls_renew_days
        (_tls_info(aki="ca:old"), True),  # another CA signed it (a restored host's new CA)
        (_tls_info(sans=("DNS:auth",)), True),  # names other hosts
    ],
)
def test_auth_issues_a_new_certificate_exactly_when_needed(info, issue):
    assert (
        render_var("auth", "_auth_tls_issue | bool", _auth_tls_info=info, _auth_redis_password="x") is issue
    )
