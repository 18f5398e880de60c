"""Last: an entry set to `state: absent` loses its containers and its routes.

Runs after every other test of the scenario (file order), since it changes the host.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

GROUP_VARS = Path(__file__).resolve().parents[1] / "inventory/group_vars/gateway.yml"
ROOT = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"


def _active_signing_key(host) -> str:
    listed = host.run("docker exec auth-auth-1 mcp-gateway-auth keys list --json")
    assert listed.rc == 0, listed.stderr
    return next(key["kid"] for key in json.loads(listed.stdout) if key["state"] == "active")


def test_absent_entry_loses_containers_and_routes(host, tmp_path):
    signing_key = _active_signing_key(host)
    catalogue = yaml.safe_load(GROUP_VARS.read_text())["mcp_services"]
    for entry in catalogue:
        if entry["name"] == "sticky":
            entry["state"] = "absent"
    extra = tmp_path / "catalogue.yml"
    extra.write_text(yaml.safe_dump({"mcp_services": catalogue}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"),
            "-e",
            f"@{extra}",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"^gw1\s*:.*failed=0", run.stdout, re.MULTILINE)
    # A re-run of site.yml keeps the signing key, a rotation of it included (test_auth_admin.py).
    assert _active_signing_key(host) == signing_key

    containers = host.run("docker ps -a --format '{{.Names}}'").stdout.split()
    assert not [name for name in containers if name.startswith("mcp-sticky-")]
    assert any(name.startswith("mcp-echo-") for name in containers)
    assert not host.file("/opt/mcp-gateway/mcp/sticky").exists

    routers = host.run(
        f"curl -sS --cacert {ROOT} --resolve traefik.gateway.test:443:127.0.0.1 "
        "-u admin:molecule-dashboard https://traefik.gateway.test/api/http/routers"
    )
    names = {router["name"] for router in json.loads(routers.stdout)}
    assert "echo-mcp@docker" in names
    assert not {name for name in names if name.startswith("sticky-")}
    gone = host.run(
        f"curl -sS -o /dev/null -w '%{{http_code}}' --cacert {ROOT} "
        "--resolve sticky.gateway.test:443:127.0.0.1 -X POST https://sticky.gateway.test/mcp"
    )
    assert gone.stdout in {"404", "000"}
