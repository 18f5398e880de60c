"""What the default scenario's converged host must show."""

from __future__ import annotations

from packaging.version import Version

COMPOSE_MIN = Version("2.18.0")


def test_docker_engine_runs_under_systemd(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled
    info = host.run("docker info --format '{{.ServerVersion}} {{.Driver}}'")
    assert info.rc == 0, info.stderr
    assert info.stdout.split()[1] == "overlay2"


def test_compose_v2_is_new_enough(host):
    cmd = host.run("docker compose version --short")
    assert cmd.rc == 0, cmd.stderr
    assert Version(cmd.stdout.strip().lstrip("v")) >= COMPOSE_MIN


def test_daemon_json_rotates_logs(host):
    daemon = host.file("/etc/docker/daemon.json")
    assert daemon.mode == 0o644
    assert '"max-size": "10m"' in daemon.content_string


def test_networks_exist(docker_json):
    public = docker_json("network inspect public")[0]
    assert public["Internal"] is False
    backend = docker_json("network inspect gateway-backend")[0]
    assert backend["Internal"] is True


def test_traefik_is_healthy(docker_json):
    state = docker_json("inspect traefik-traefik-1")[0]["State"]
    assert state["Status"] == "running"
    assert state["Health"]["Status"] == "healthy"


def test_http_redirects_get_with_301(http):
    status, headers = http(
        "http://fetch.gateway.test/anything?x=1", resolve="fetch.gateway.test:80:127.0.0.1"
    )
    assert status == 301
    assert headers["location"] == "https://fetch.gateway.test/anything?x=1"


def test_http_redirects_post_with_308(http):
    status, headers = http(
        "http://fetch.gateway.test/mcp", method="POST", resolve="fetch.gateway.test:80:127.0.0.1"
    )
    assert status == 308
    assert headers["location"] == "https://fetch.gateway.test/mcp"
