"""Unit tests of the catalogue's package entries (mcpgw.catalogue): validation, image names,
the bridge's command line, secrets, the choice of executable, and affinity for replicas."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile

import pytest
from ansible.errors import AnsibleFilterError

from mcpgw import catalogue as ms
from mcpgw import images
from mcpgw import labels as tl

DOMAIN = "gateway.test"
EVERYTHING = {"name": "everything", "package": {"npm": "@modelcontextprotocol/server-everything@2026.8.31"}}
TIME = {
    "name": "time",
    "package": {"pypi": "mcp-server-time==2026.10.19", "args": ["--local-timezone", "UTC"]},
}


def one(entry):
    [service] = ms.mcp_services_normalize([entry], DOMAIN)
    return service


def test_npm_entry_is_parsed_and_gets_the_package_defaults():
    service = one(EVERYTHING)
    package = service["package"]
    assert (package["kind"], package["name"], package["version"]) == (
        "npm",
        "@modelcontextprotocol/server-everything",
        "2026.8.31",
    )
    assert service["source"] == "build"
    assert service["stateful"] is True
    assert service["healthcheck"] == {"path": "/healthz", "interval": "10s", "timeout": "3s"}
    assert service["image"] == ""  # named by mcp_services_package_image


def test_pypi_entry_with_extras_is_pinned():
    service = one({"name": "fetch", "package": {"pypi": "mcp-server-fetch[socks]==2026.10.24"}})
    assert (service["package"]["name"], service["package"]["version"]) == ("mcp-server-fetch", "2026.10.24")


def test_secret_values_never_enter_the_normalized_catalogue():
    entry = {"name": "time", "package": {**TIME["package"], "secrets": {"API_KEY": "s3cret"}}}
    service = one(entry)
    assert service["package"]["secret_names"] == ["API_KEY"]
    assert "s3cret" not in json.dumps(service)
    assert ms.mcp_services_secrets_env([entry], "time") == "API_KEY=s3cret\n"
    assert ms.mcp_services_secrets_env([{"name": "x", "package": {"secrets": {"K": "a b'c"}}}], "x") == (
        "K='a b'\"'\"'c'\n"
    )
    assert ms.mcp_services_secrets_env([TIME], "time") == ""


ERRORS = [
    (
        {"name": "e", "package": {"npm": "@scope/server@^1.2.0"}},
        "key 'package.npm': '@scope/server@^1.2.0' is not pinned",
    ),
    ({"name": "e", "package": {"npm": "server-memory"}}, "write server-memory@<version>"),
    (
        {"name": "t", "package": {"pypi": "mcp-server-time>=1"}},
        "key 'package.pypi': 'mcp-server-time>=1' is not pinned",
    ),
    (
        {"name": "t", "package": {"npm": "a@1.0.0", "pypi": "b==1"}},
        "key 'package': must name exactly one of npm and pypi",
    ),
    ({"name": "t", "package": {"pypi": "b==1", "tag": "x"}}, "key 'package': unknown key(s) tag"),
    ({"name": "t", "image": "x", "package": {"pypi": "b==1"}}, "key 'image': is not used with package"),
    (
        {"name": "t", "archive": "/x.tar", "package": {"pypi": "b==1"}},
        "key 'archive': is not used with package",
    ),
    ({"name": "t", "environment": {"A": "1"}, "package": {"pypi": "b==1"}}, "use package.env"),
    (
        {"name": "t", "source": "registry", "package": {"pypi": "b==1"}},
        "key 'source': a package entry's image is built",
    ),
    (
        {"name": "t", "package": {"pypi": "b==1", "log_level": "loud"}},
        "key 'package.log_level': must be one of",
    ),
    (
        {"name": "t", "package": {"pypi": "b==1", "env": {"1A": "x"}}},
        "key 'package.env': invalid variable name '1A'",
    ),
    (
        {"name": "t", "package": {"pypi": "b==1", "env": {"A": "x"}, "secrets": {"A": "y"}}},
        "A is also in package.env",
    ),
    (
        {"name": "t", "package": {"pypi": "b==1", "bin": "../sh"}},
        "key 'package.bin': must be the name of an executable",
    ),
    ({"name": "t", "package": {"pypi": "b==1"}, "volumes": ["data"]}, "key 'volumes': 'data' must be"),
    (
        {"name": "t", "package": {"pypi": "b==1"}, "volumes": ["data:rel"]},
        "the path in the container must be absolute",
    ),
    (
        {"name": "t", "package": {"pypi": "b==1"}, "replicas": 2, "sticky": False},
        "key 'sticky': a stateful server with 2 replicas needs every request of a session on one replica",
    ),
    ({"name": "t", "image": "x", "stateful": "yes"}, "key 'stateful': must be true or false"),
]


@pytest.mark.parametrize(("entry", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_bad_package_entries_are_named(entry, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        ms.mcp_services_normalize([entry], DOMAIN)


def test_stateful_replicas_get_hrw_or_the_cookie_they_ask_for():
    hrw = one({**EVERYTHING, "replicas": 2})
    assert (hrw["sticky"], hrw["strategy"]) == (False, "hrw")
    labels = tl.traefik_labels(ms.mcp_services_label_spec(hrw), {"domain": DOMAIN})
    assert labels["traefik.http.services.everything.loadbalancer.strategy"] == "hrw"
    cookie = one({**EVERYTHING, "replicas": 2, "sticky": True})
    assert (cookie["sticky"], cookie["strategy"]) == (True, "")
    single = one(EVERYTHING)
    assert single["strategy"] == ""
    stateless = one({**EVERYTHING, "replicas": 3, "stateful": False})
    assert (stateless["sticky"], stateless["strategy"]) == (False, "")


def test_image_tag_follows_the_entry_and_the_recipe_only():
    service = one(EVERYTHING)
    image = ms.mcp_services_package_image(service, "recipe-1")["image"]
    assert re.fullmatch(r"mcp-package/everything:[0-9a-f]{16}", image)
    assert ms.mcp_services_package_image(one({**EVERYTHING, "replicas": 3}), "recipe-1")["image"] == image
    assert ms.mcp_services_package_image(service, "recipe-2")["image"] != image
    newer = one(
        {"name": "everything", "package": {"npm": "@modelcontextprotocol/server-everything@2026.9.1"}}
    )
    assert ms.mcp_services_package_image(newer, "recipe-1")["image"] != image
    plain = one({"name": "echo", "image": "mcpgw/echo:0.1.0"})
    assert ms.mcp_services_package_image(plain, "recipe-1") == plain


def test_compose_runs_the_bridge_with_the_server_and_its_secrets():
    entry = {**TIME, "package": {**TIME["package"], "env": {"TZ": "UTC"}, "secrets": {"KEY": "v"}}}
    service = ms.mcp_services_package_image(one({**entry, "volumes": ["tzdata:/data:ro"]}), "r")
    definition = ms.mcp_services_compose(service, {"traefik.enable": "true"}, "public")
    server = definition["services"]["server"]
    assert server["command"][:2] == ["--stdio", "mcp-server --local-timezone UTC"]
    assert server["command"][2:4] == ["--outputTransport", "streamableHttp"]
    assert "--stateful" in server["command"]
    assert server["command"][server["command"].index("--sessionTimeout") + 1] == "1800000"
    assert server["environment"] == {"TZ": "UTC"}
    assert server["volumes"] == ["tzdata:/data:ro", "./secrets.env:/run/secrets/mcp-package.env:ro"]
    assert definition["volumes"] == {"tzdata": {}}


def test_arguments_are_quoted_for_the_bridges_shell():
    service = one({"name": "fs", "package": {"npm": "fs-server@1.0.0", "args": ["/srv/my files", "$HOME"]}})
    assert ms.package_bridge_command(service)[1] == "mcp-server '/srv/my files' '$HOME'"


def npm_context(tmp_path, name, bins):
    manifest = tmp_path / "server" / "node_modules" / name / "package.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"name": name, "bin": bins}))
    return str(tmp_path)


def test_executable_of_an_npm_package(tmp_path):
    service = one(EVERYTHING)
    context = npm_context(
        tmp_path, "@modelcontextprotocol/server-everything", {"mcp-server-everything": "i.js"}
    )
    assert ms.mcp_services_package_bin(service, context) == "mcp-server-everything"


def test_executable_named_like_the_package_wins_among_several(tmp_path):
    service = one({"name": "m", "package": {"npm": "server-memory@1.0.0"}})
    context = npm_context(tmp_path, "server-memory", {"server-memory": "a.js", "memory-admin": "b.js"})
    assert ms.mcp_services_package_bin(service, context) == "server-memory"


def test_an_unclear_or_wrong_executable_is_named(tmp_path):
    context = npm_context(tmp_path, "pkg", {"one": "a.js", "two": "b.js"})
    with pytest.raises(
        AnsibleFilterError, match=r"entry 'p': key 'package.bin': pkg has the executables one, two"
    ):
        ms.mcp_services_package_bin(one({"name": "p", "package": {"npm": "pkg@1.0.0"}}), context)
    with pytest.raises(AnsibleFilterError, match=r"key 'package.bin': pkg has no executable 'three'"):
        ms.mcp_services_package_bin(
            one({"name": "p", "package": {"npm": "pkg@1.0.0", "bin": "three"}}), context
        )


def test_executable_of_a_wheel(tmp_path):
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / "mcp_server_time-2026.10.19-py3-none-any.whl", "w") as wheel:
        wheel.writestr(
            "mcp_server_time-2026.10.19.dist-info/entry_points.txt",
            "[console_scripts]\nmcp-server-time = mcp_server_time:main\n",
        )
    assert ms.mcp_services_package_bin(one(TIME), str(tmp_path)) == "mcp-server-time"


def test_archive_tags_are_read_from_the_manifest(tmp_path):
    assert images.docker_archive_image_tags(str(tmp_path / "none.tar")) == []
    archive = tmp_path / "image.tar"
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["mcp-package/time:abc"], "Layers": []}]).encode()
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    assert images.docker_archive_image_tags(str(archive)) == ["mcp-package/time:abc"]
    (tmp_path / "bad.tar").write_text("not a tar")
    with pytest.raises(AnsibleFilterError, match=r"docker_archive_image_tags: .*not a docker save archive"):
        images.docker_archive_image_tags(str(tmp_path / "bad.tar"))
