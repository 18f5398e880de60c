#!/usr/bin/python
"""Write a Compose project's directories and files on the host in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_write
short_description: Make directories and write files, all in one module call
description:
  - The compose role's writer. One C(ansible.builtin.copy) per file costs a few round
    trips each (a first converge wrote Traefik's seven files in 7 s); this module makes the
    directories and writes every file in one call.
  - Each file is written only when its content differs (to a temporary file in the same
    directory, then renamed over it, so that a reader never sees half a file); its mode and
    owner are set when they differ. Directories are made when missing, and their mode and
    owner set when they differ.
  - Supports check mode and diff mode (no diff for files marked O(files[].secret)).
options:
  root:
    description: The directory relative paths are taken from.
    type: path
    required: true
  directories:
    description: Directories to make, parents first.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute, or relative to O(root)., type: str, required: true}
      mode: {description: Mode; default O(directory_mode)., type: str}
      owner: {description: Owner and group (a name or an id); default root., type: str}
  directory_mode:
    description: Mode of directories that name none.
    type: str
    default: "0755"
  files:
    description: Files to write; their directories must exist or be in O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Absolute, or relative to O(root)., type: str, required: true}
      content: {description: The whole content., type: str, required: true}
      mode: {description: Mode., type: str, default: "0644"}
      owner: {description: Owner (a name or an id)., type: str, default: root}
      group: {description: Group; default the owner., type: str}
      secret:
        description: No diff of this file. Its content is in the task's arguments, so a task
          writing secrets sets C(no_log) (the compose role does).
        type: bool
        default: false
author: the mcp-gateway project
"""

EXAMPLES = r"""
- name: Write the project's files
  compose_write:
    root: /opt/mcp-gateway/traefik
    directories: [{path: dynamic}]
    files:
      - {name: dynamic/middlewares.yml, content: "http: {}\n"}
"""

RETURN = r"""
written:
  description: The O(files[].name) of the files whose content, mode or owner changed.
  type: list
  elements: str
  returned: always
made:
  description: The paths of the directories made or changed.
  type: list
  elements: str
  returned: always
"""

import grp  # noqa: E402 -- after the documentation, as Ansible's modules are
import os  # noqa: E402
import pwd  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def _uid(owner: str) -> int:
    return int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid


def _gid(group: str) -> int:
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def _mode(value: str, what: str, module: AnsibleModule) -> int:
    try:
        return int(str(value), 8)
    except ValueError:
        module.fail_json(msg=f"{what}: mode {value!r} is not an octal number")
    return 0  # unreachable: fail_json exits


def _attributes_differ(path: str, mode: int, uid: int, gid: int) -> bool:
    have = os.lstat(path)
    return stat.S_IMODE(have.st_mode) != mode or have.st_uid != uid or have.st_gid != gid


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    """The new content in a temporary file beside `path`, its attributes set, then renamed
    over `path`: readers see the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "directories": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "str", "required": True},
                    "mode": {"type": "str"},
                    "owner": {"type": "str"},
                },
            },
            "directory_mode": {"type": "str", "default": "0755"},
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "content": {"type": "str", "required": True},
                    "mode": {"type": "str", "default": "0644"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str"},
                    "secret": {"type": "bool", "default": False},
                },
            },
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    made: list[str] = []
    written: list[str] = []
    diffs: list[dict[str, str]] = []
    try:
        for directory in module.params["directories"]:
            path = os.path.join(root, directory["path"])
            mode = _mode(directory["mode"] or module.params["directory_mode"], path, module)
            owner = directory["owner"] or "root"
            uid, gid = _uid(owner), _gid(owner)
            if os.path.isdir(path) and not _attributes_differ(path, mode, uid, gid):
                continue
            made.append(path)
            if module.check_mode:
                continue
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
            os.chown(path, uid, gid)
        for file in module.params["files"]:
            path = os.path.join(root, file["name"])
            mode = _mode(file["mode"], path, module)
            owner = file["owner"]
            uid, gid = _uid(owner), _gid(file["group"] or owner)
            data = file["content"].encode()
            before = _read(path)
            if before == data and not _attributes_differ(path, mode, uid, gid):
                continue
            written.append(file["name"])
            if module._diff and not file["secret"] and before != data:
                diffs.append(
                    {
                        "before_header": path,
                        "after_header": path,
                        "before": (before or b"").decode(errors="replace"),
                        "after": file["content"],
                    }
                )
            if module.check_mode:
                continue
            if before == data:
                os.chmod(path, mode)
                os.chown(path, uid, gid)
            else:
                _write(path, data, mode, uid, gid)
    except (KeyError, OSError) as err:  # KeyError: an owner or group the host does not know
        module.fail_json(msg=f"compose_write: {type(err).__name__}: {err}", made=made, written=written)
    result = {"changed": bool(made or written), "made": made, "written": written}
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
