"""The compose role's writer (roles/compose/library/compose_write.py), run as Ansible runs a
module: a process reading its arguments, on a temporary directory, as the current user."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.unit.conftest import ROLES

MODULE = ROLES / "compose" / "library" / "compose_write.py"
ME = str(os.getuid())


def run(tmp_path: Path, check: bool = False, diff: bool = False, **args) -> dict:
    arguments = tmp_path.parent / f"{tmp_path.name}-args.json"
    arguments.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}})
    )
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True)
    return json.loads(done.stdout)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_makes_directories_and_writes_files_then_changes_nothing(tmp_path):
    root = tmp_path / "project"
    args = {
        "root": str(root),
        "directories": [{"path": str(root)}, {"path": "dynamic", "mode": "0750", "owner": ME}],
        "files": [
            {"name": "compose.yml", "content": "services: {}\n", "owner": ME},
            {"name": "dynamic/key.pem", "content": "secret\n", "mode": "0600", "owner": ME, "secret": True},
        ],
    }
    first = run(tmp_path, **args)
    assert first["changed"] is True, first
    assert first["written"] == ["compose.yml", "dynamic/key.pem"]
    assert first["made"] == [str(root), str(root / "dynamic")]
    assert (root / "compose.yml").read_text() == "services: {}\n"
    assert mode(root / "dynamic") == 0o750
    assert mode(root / "dynamic" / "key.pem") == 0o600
    again = run(tmp_path, **args)
    assert (again["changed"], again["written"], again["made"]) == (False, [], [])
    assert sorted(os.listdir(root / "dynamic")) == ["key.pem"]  # no temporary file left


def test_a_changed_file_is_replaced_and_a_changed_mode_only_set(tmp_path):
    (tmp_path / "a.yml").write_text("old\n")
    (tmp_path / "b.yml").write_text("same\n")
    (tmp_path / "b.yml").chmod(0o666)
    inode = (tmp_path / "b.yml").stat().st_ino
    result = run(
        tmp_path,
        root=str(tmp_path),
        files=[
            {"name": "a.yml", "content": "new\n", "owner": ME},
            {"name": "b.yml", "content": "same\n", "owner": ME},
        ],
    )
    assert result["written"] == ["a.yml", "b.yml"]
    assert (tmp_path / "a.yml").read_text() == "new\n"
    assert mode(tmp_path / "b.yml") == 0o644
    assert (tmp_path / "b.yml").stat().st_ino == inode


def test_check_mode_changes_nothing_and_diff_hides_secrets(tmp_path):
    (tmp_path / "a.yml").write_text("old\n")
    result = run(
        tmp_path,
        check=True,
        diff=True,
        root=str(tmp_path),
        directories=[{"path": "new"}],
        files=[
            {"name": "a.yml", "content": "new\n", "owner": ME},
            {"name": "k.pem", "content": "secret\n", "owner": ME, "secret": True},
        ],
    )
    assert result["changed"] is True
    assert result["written"] == ["a.yml", "k.pem"]
    assert (tmp_path / "a.yml").read_text() == "old\n"
    assert not (tmp_path / "new").exists()
    assert not (tmp_path / "k.pem").exists()
    assert [(d["before"], d["after"]) for d in result["diff"]] == [("old\n", "new\n")]


def test_bad_input_fails_naming_it(tmp_path):
    result = run(tmp_path, root=str(tmp_path), files=[{"name": "a.yml", "content": "x", "mode": "rw"}])
    assert result["failed"] is True
    assert "a.yml" in result["msg"]
    assert "'rw'" in result["msg"]
    result = run(
        tmp_path, root=str(tmp_path), files=[{"name": "a.yml", "content": "x", "owner": "no-such-user"}]
    )
    assert result["failed"] is True
    assert "no-such-user" in result["msg"]
    assert not (tmp_path / "a.yml").exists()
