"""playbooks/auth-admin.yml: the auth service's operator commands on the gateway hosts.

Run for real here, without Docker: the gateway host is this machine (local connection) and
`docker` is a stand-in on PATH that records its arguments and answers like the command
would, so what the playbook runs on the host is what is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

PLAYBOOK = ROOT / "playbooks" / "auth-admin.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
FAKE_DOCKER = """#!/bin/sh
if [ "$1" = ps ]; then
  # docker ps --filter label=com.docker.compose.project=<project> ...: the replicas after a rollout.
  project=$(printf '%s' "$3" | sed 's/^label=com.docker.compose.project=//')
  printf '%s\\n' "$project-auth-4" "$project-auth-3"
  exit 0
fi
printf '%s\\n' "$@" > "$RECORD"
echo "revoked every grant of user alice: 2 active grant(s) ended"
exit "${DOCKER_EXIT:-0}"
"""


def run(tmp_path: Path, command: str | None, *, inventory: str, docker_exit: int = 0):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(inventory)
    record = tmp_path / "argv"
    argv = [ANSIBLE_PLAYBOOK, str(PLAYBOOK), "-i", str(hosts)]
    if command is not None:
        argv += ["-e", json.dumps({"auth_admin_command": command})]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "DOCKER_EXIT": str(docker_exit),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=120)
    ran = record.read_text().splitlines() if record.exists() else None
    return done, ran


LOCAL = """
gateway:
  hosts:
    gw1:
      ansible_connection: local
      ansible_become: false
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""
# A host nobody can reach: a refusal must come before any attempt to.
UNREACHABLE = """
gateway:
  hosts:
    gw1:
      ansible_host: 192.0.2.1
      ansible_connection: ssh
      ansible_ssh_common_args: -o ConnectTimeout=1
"""


def test_a_command_runs_in_the_auth_container_and_its_output_is_printed(tmp_path):
    done, ran = run(tmp_path, "grants revoke --user alice", inventory=LOCAL)
    assert done.returncode == 0, done.stdout + done.stderr
    # Found by its Compose labels (after a rollout the replicas have new numbers).
    assert ran == ["exec", "auth-auth-3", "mcp-gateway-auth", "grants", "revoke", "--user", "alice"]
    assert "revoked every grant of user alice: 2 active grant(s) ended" in done.stdout
    # A revocation changes the host; a listing would not.
    assert "changed=1" in done.stdout


def test_a_listing_changes_nothing(tmp_path):
    done, ran = run(tmp_path, "grants list --json", inventory=LOCAL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran[-3:] == ["grants", "list", "--json"]
    assert "changed=0" in done.stdout


def test_a_refused_command_fails_the_play_with_its_message(tmp_path):
    done, _ = run(tmp_path, "keys retire", inventory=LOCAL, docker_exit=1)
    assert done.returncode != 0
    assert "failed=1" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        None,
        "",
        "serve",
        "hash-password",
        "grants",
        "grants delete --user alice",
        "clients list; reboot",
        "keys",
    ],
)
def test_an_unknown_command_is_refused_before_any_host_is_touched(tmp_path, command):
    done, ran = run(tmp_path, command, inventory=UNREACHABLE)
    assert done.returncode != 0
    assert "auth-admin: auth_admin_command must be one of" in done.stdout + done.stderr
    assert "UNREACHABLE" not in done.stdout
    assert ran is None


def test_the_container_follows_the_compose_project(tmp_path):
    inventory = LOCAL + "  vars:\n    auth_compose_project: gatewayauth\n"
    done, ran = run(tmp_path, "keys list", inventory=inventory)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran[:2] == ["exec", "gatewayauth-auth-3"]
