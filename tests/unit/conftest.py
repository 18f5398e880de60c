"""Shared fixtures of the unit tests: role variables templated the way Ansible does."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from typing import Any

import jinja2
import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

# Ansible's own plugins (lookups such as ansible.builtin.file, which role variables use).
init_plugin_loader()

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
FILTER_PLUGINS = ROOT / "filter_plugins"

INTERNAL_CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB (the internal CA)\n-----END CERTIFICATE-----\n"

# Facts and inventory variables of a typical Debian 13 gateway host.
HOST_VARS: dict[str, Any] = {
    "ansible_facts": {
        "distribution": "Debian",
        "distribution_major_version": "13",
        "distribution_release": "trixie",
        "architecture": "x86_64",
        "service_mgr": "systemd",
    },
    "ansible_managed": "Ansible managed",
    "ansible_check_mode": False,
    "inventory_hostname": "gw1",
    "gateway_domain": "gateway.test",
    # What the traefik role's slurp of the internal CA's certificate registers.
    "_traefik_internal_ca_file": {"content": base64.b64encode(INTERNAL_CA_PEM.encode()).decode()},
}


def load_role_vars(role: str) -> dict[str, Any]:
    """defaults/main.yml and vars/main.yml of a role, trusted as templates like Ansible does."""
    loader = DataLoader()
    merged: dict[str, Any] = {}
    for part in ("defaults", "vars"):
        path = ROLES / role / part / "main.yml"
        if path.exists():
            merged.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    return merged


def gateway_settings(**overrides: Any) -> dict[str, Any]:
    """The fact the gateway role sets, from its defaults and the gateway_* (and mcp_services)
    variables among `overrides`, as every other role sees it."""
    variables = {**HOST_VARS, **load_role_vars("gateway"), **overrides}
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template("{{ _gateway_inputs | gateway_settings }}"))


def role_templar(role: str, **overrides: Any) -> Templar:
    variables = {**HOST_VARS, "role_path": str(ROLES / role), **load_role_vars(role), **overrides}
    if role != "gateway" and "gateway_settings" not in overrides:
        variables["gateway_settings"] = gateway_settings(**overrides)
    return Templar(loader=DataLoader(), variables=variables)


def render_var(role: str, name: str, **overrides: Any) -> Any:
    """The fully templated value of one role variable (undefined names raise)."""
    return role_templar(role, **overrides).template(trust_as_template("{{ " + name + " }}"))


def failing_checks(role: str, **overrides: Any) -> list[str]:
    """The variables named by the checks of roles/<role>/tasks/validate.yml that fail with
    these variables, in the order the role reports them."""
    loader = DataLoader()
    tasks = loader.load_from_file(str(ROLES / role / "tasks" / "validate.yml"), trusted_as_template=True)
    check = next(task for task in tasks if "ansible.builtin.fail" in task)
    checks_var = check["loop"].split("|")[0].strip(" {")
    task_vars = {name: value for name, value in check["vars"].items() if name != checks_var}
    templar = role_templar(role, **task_vars, **overrides)
    return [
        item["var"]
        for item in check["vars"][checks_var]
        if templar.template(trust_as_template("{{ (" + item["bad"].strip("{} ") + ") | bool }}"))
    ]


def render_template_file(role: str, template: Path, **overrides: Any) -> str:
    return role_templar(role, **overrides).template(trust_as_template(template.read_text()))


def project_filters() -> dict[str, Any]:
    """Every filter of the project's filter_plugins/, by name."""
    filters: dict[str, Any] = {}
    for path in sorted(FILTER_PLUGINS.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"filter_plugins.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "FilterModule"):
            filters.update(module.FilterModule().filters())
    return filters


@pytest.fixture(scope="session")
def jinja_env() -> jinja2.Environment:
    """A real Jinja environment with StrictUndefined and the project's filters."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(project_filters())
    return env
