"""Provisioning: converge site.yml on bench test hosts and time it.

    python -m bench.provisioning [--provisioning-hosts 3] [--noop-repeats 2]

What it measures, on Debian 13 test hosts made like Molecule's `gw1` (same image and
container options, read from molecule/default/molecule.yml; names bench-gw<N> on their
own network) and with the Molecule inventory's group_vars:

1. a converge of site.yml on one bare (freshly booted) host: wall time;
2. a no-op re-run on that host: wall time, changed=0 expected;
3. the other hosts converged from bare together, in one run (forks >= 3): wall time;
4. no-op re-runs on 1 and on all hosts (forks >= 3), interleaved: the scaling ratio.

Goals: a no-op re-run <= 30 s; 3 hosts <= 1.5x one host. Every container and volume it
creates is removed at the end, whatever way it ends; only when bench.first_cert runs next
in the same process is one converged host handed over to it (and removed by it).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: python bench/provisioning.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ROOT = common.ROOT
WORK = common.BUILD / "provisioning"
MOLECULE = ROOT / "molecule" / "default"
NETWORK = "bench-provisioning"
# Outside Docker's default pools, and away from the gateway's own 172.30.0.0/24 that
# every test host creates inside itself.
SUBNET = "10.231.7.0/24"
LABEL = "mcpgw.bench"
HOST_PREFIX = "bench-gw"

NOOP_GOAL_S = 30.0
SCALING_GOAL = 1.5

_handoff: str | None = None


# -- test hosts ------------------------------------------------------------------------------------
def docker(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker")
    if not binary:
        raise common.HarnessError("no docker CLI on PATH")
    done = subprocess.run([binary, *argv], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise common.HarnessError(f"docker {' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def platform_spec() -> dict[str, Any]:
    """Molecule's platform for gw1: the test hosts here are made exactly like it."""
    config = yaml.safe_load((MOLECULE / "molecule.yml").read_text())
    return config["platforms"][0]


def ensure_network() -> None:
    if docker("network", "inspect", NETWORK, check=False).returncode != 0:
        docker("network", "create", "--subnet", SUBNET, "--label", f"{LABEL}=1", NETWORK)


def remove_network() -> None:
    done = docker("network", "inspect", NETWORK, "--format", "{{len .Containers}}", check=False)
    if done.returncode == 0 and done.stdout.strip() == "0":
        docker("network", "rm", NETWORK, check=False)


def start_host(name: str) -> None:
    """`docker run` a test host the way molecule-plugins' docker driver does for gw1."""
    spec = platform_spec()
    argv = ["run", "--detach", "--name", name, "--hostname", name, "--network", NETWORK]
    argv += ["--label", f"{LABEL}=1", "--cgroupns", spec.get("cgroupns_mode", "host")]
    for path in spec.get("tmpfs", []):
        argv += ["--tmpfs", path]
    for volume in spec.get("volumes", []):  # /var/lib/docker: an anonymous volume, removed with -v
        argv += ["--volume", volume]
    for option in spec.get("security_opts", []):
        argv += ["--security-opt", option]
    if os.environ.get("MOLECULE_PRIVILEGED", "false").lower() == "true":
        argv.append("--privileged")
    else:
        for capability in spec.get("capabilities", []):
            argv += ["--cap-add", capability]
    argv.append(spec["image"])
    argv += shlex.split(spec.get("command", ""))
    docker(*argv)


def wait_booted(name: str, timeout: float = 120) -> None:
    """systemd is up (`running`, or `degraded` as usual in containers)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        # Fails at once while systemd's bus is not there yet; then waits for the boot's end.
        done = docker("exec", name, "systemctl", "is-system-running", "--wait", timeout=timeout, check=False)
        state = done.stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.2)
    raise common.HarnessError(f"{name} did not boot: {state!r}")


def create_hosts(names: list[str]) -> float:
    """Start the hosts (all at once) and wait until they are booted; the seconds it took."""
    t0 = time.monotonic()
    for name in names:
        remove_host(name)  # a leftover of an interrupted run
    ensure_network()
    for name in names:
        start_host(name)
    for name in names:
        wait_booted(name)
    return round(time.monotonic() - t0, 1)


def remove_host(name: str) -> None:
    docker("rm", "--force", "--volumes", name, timeout=180, check=False)


def remove_hosts(names: list[str]) -> None:
    for name in names:
        remove_host(name)
    remove_network()


def host_ip(name: str) -> str:
    return docker(
        "inspect", name, "--format", f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}'
    ).stdout.strip()


# -- converging ------------------------------------------------------------------------------------
def write_inventory(names: list[str]) -> Path:
    """An inventory of the bench hosts, with the Molecule inventory's group_vars (linked)."""
    inventory = WORK / "inventory"
    inventory.mkdir(parents=True, exist_ok=True)
    group_vars = inventory / "group_vars"
    if not group_vars.is_symlink():
        group_vars.symlink_to(os.path.relpath(MOLECULE / "inventory" / "group_vars", inventory))
    hosts = {name: {"ansible_connection": "community.docker.docker"} for name in names}
    path = inventory / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"gateway": {"hosts": hosts}}}}, sort_keys=False))
    return path


TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.+)\]")
RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)
ROLE_TIME = re.compile(r"^(\S+) -{3,} (\d+(?:\.\d+)?)s$", re.MULTILINE)


def busy_jiffies() -> tuple[int, int]:
    """The machine's busy and total CPU time (/proc/stat, clock ticks), all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def host_cpu_s(names: list[str]) -> float | None:
    """CPU seconds used so far by the test hosts' own processes (their cgroups: systemd, the
    Engine, what Ansible runs over `docker exec`; not their containers, which the Engine
    puts in cgroups of their own). None where the cgroup cannot be read."""
    total = 0.0
    for name in names:
        cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
        elif v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            total += int(usage["usage_usec"]) / 1e6
        else:
            return None
    return total


def ansible_playbook() -> str:
    for candidate in (common.VENV_BIN / "ansible-playbook", shutil.which("ansible-playbook")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise common.HarnessError("no ansible-playbook: make venv")


def converge(names: list[str], forks: int, tag: str) -> dict[str, Any]:
    """ansible-playbook site.yml on these hosts; wall time, the recap per host, time per role."""
    WORK.mkdir(parents=True, exist_ok=True)
    inventory = write_inventory(names)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        # The Molecule group_vars find the image archives through it.
        "MOLECULE_PROJECT_DIRECTORY": str(ROOT),
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer,ansible.posix.profile_roles",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{common.VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    argv = [ansible_playbook(), "-i", str(inventory), str(ROOT / "site.yml"), "--forks", str(forks)]
    log = WORK / f"{tag}.log"
    print(f"    {tag}: converging {', '.join(names)} (forks {forks}) ...", end=" ", flush=True)
    load_before = os.getloadavg()[0]
    busy_before, total_before = busy_jiffies()
    hosts_before = host_cpu_s(names)
    controller_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as out:
        t0 = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
        wall = round(time.monotonic() - t0, 1)
    busy_after, total_after = busy_jiffies()
    controller_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    hosts_after = host_cpu_s(names)
    # The run's own CPU time: ansible-playbook with its workers and docker CLIs, and the test
    # hosts' processes. Unlike the wall time it hardly depends on other work on the machine.
    controller_cpu = (controller_after.ru_utime + controller_after.ru_stime) - (
        controller_before.ru_utime + controller_before.ru_stime
    )
    cpu_s = None
    if hosts_before is not None and hosts_after is not None:
        cpu_s = controller_cpu + hosts_after - hosts_before
    # How many of the machine's cores were busy on average (everything: the controller, the
    # test hosts' Engines and containers, and any other work).
    share = (busy_after - busy_before) / max(1, total_after - total_before)
    cores_busy = round(share * (os.cpu_count() or 1), 2)
    text = log.read_text(errors="replace")
    recap = {
        host: {key: int(value) for key, value in (pair.split("=") for pair in counts.split())}
        for host, counts in RECAP.findall(text)
        if host in names
    }
    print(f"{wall} s", flush=True)
    if done.returncode != 0 or set(recap) != set(names):
        tail = "\n".join(text.splitlines()[-30:])
        raise common.HarnessError(f"converge {tag} failed (exit {done.returncode}), log {log}:\n{tail}")
    roles = {role: float(seconds) for role, seconds in ROLE_TIME.findall(text) if role != "total"}
    changed_tasks, task = [], None
    for line in text.splitlines():
        found = TASK.match(line)
        task = found.group(1) if found else task
        if line.startswith("changed: [") and task:
            changed_tasks.append(f"{line[len('changed: [') :].split(']')[0]}: {task}")
    return {
        "tag": tag,
        "hosts": len(names),
        "forks": forks,
        "wall_s": wall,
        "changed": sum(counts.get("changed", 0) for counts in recap.values()),
        "recap": recap,
        "roles_s": roles,
        "changed_tasks": changed_tasks,
        # The machine's 1-minute load before and after: other work running beside the bench.
        "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cores_busy": cores_busy,
        "cpu_s": None if cpu_s is None else round(cpu_s, 1),
        "controller_cpu_s": round(controller_cpu, 1),
        "log": str(log.relative_to(ROOT)),
    }


# -- the part --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("provisioning")
    group.add_argument(
        "--provisioning-hosts", type=int, default=3, help="test hosts of the scaling run (default 3)"
    )
    group.add_argument(
        "--noop-repeats", type=int, default=2, help="no-op runs on 1 and on all hosts, each (default 2)"
    )


def _first_cert_follows(args: argparse.Namespace) -> bool:
    """bench.run runs first_cert after this part: hand it a converged host."""
    only = getattr(args, "only", None)
    skip = getattr(args, "skip", None)
    if only is None and skip is None:  # run alone
        return False
    return "first_cert" in (only or ["first_cert"]) and "first_cert" not in (skip or [])


def take_handoff() -> str | None:
    """The converged host this part left for first_cert (the taker removes it), or None."""
    global _handoff
    name, _handoff = _handoff, None
    return name


def _remove_handoff() -> None:
    name = take_handoff()
    if name:
        remove_hosts([name])


def _row(what: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": what,
        "hosts": result["hosts"],
        "forks": result["forks"],
        "wall s": result["wall_s"],
        "changed": result["changed"],
        "CPU s": result["cpu_s"],
        "cores busy": result["cores_busy"],
        "load": result["loadavg"][0],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    global _handoff
    count = max(1, getattr(args, "provisioning_hosts", 3))
    repeats = max(1, getattr(args, "noop_repeats", 2))
    forks = max(3, count)
    names = [f"{HOST_PREFIX}{i}" for i in range(1, count + 1)]
    keep = _first_cert_follows(args)
    runs: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    ok = False
    try:
        runs["boot_1_s"] = create_hosts(names[:1])
        runs["bare_1"] = converge(names[:1], 1, "bare-1host")
        rows.append(_row("bare converge", runs["bare_1"]))
        runs["noop_1_first"] = converge(names[:1], 1, "noop-1host-first")
        rows.append(_row("no-op re-run", runs["noop_1_first"]))
        noop_1 = [runs["noop_1_first"]]
        noop_n: list[dict[str, Any]] = []
        if count > 1:
            runs[f"boot_{count - 1}_s"] = create_hosts(names[1:])
            runs["bare_rest"] = converge(names[1:], forks, f"bare-{count - 1}hosts")
            rows.append(_row(f"bare converge of hosts 2-{count} together", runs["bare_rest"]))
            for i in range(1, repeats + 1):
                noop_1.append(converge(names[:1], forks, f"noop-1host-{i}"))
                rows.append(_row(f"no-op re-run #{i}", noop_1[-1]))
                noop_n.append(converge(names, forks, f"noop-{count}hosts-{i}"))
                rows.append(_row(f"no-op re-run #{i}", noop_n[-1]))
        runs["noop_1"] = noop_1
        runs["noop_n"] = noop_n
        ok = True
    finally:
        if ok and keep:
            remove_hosts(names[1:])
            _handoff = names[0]
            atexit.register(_remove_handoff)
        else:
            remove_hosts(names)

    noop_1_s = statistics.median(r["wall_s"] for r in noop_1)
    # The ratio compares the interleaved runs only (same forks, same conditions).
    paired_1 = statistics.median(r["wall_s"] for r in noop_1[1:]) if noop_n else None
    noop_n_s = statistics.median(r["wall_s"] for r in noop_n) if noop_n else None
    scaling = common.ratio(noop_n_s, paired_1)
    max_changed = max(r["changed"] for r in noop_1 + noop_n)
    goals = [
        {
            "goal": f"no-op re-run (1 host, median of {len(noop_1)}) <= {NOOP_GOAL_S:g} s",
            "value": noop_1_s,
            "target": NOOP_GOAL_S,
            "met": noop_1_s <= NOOP_GOAL_S,
        },
        {
            "goal": "no-op re-runs change nothing (changed=0)",
            "value": max_changed,
            "target": 0,
            "met": max_changed == 0,
        },
        {
            "goal": f"no-op on {count} hosts <= {SCALING_GOAL:g}x one host (forks {forks})",
            "value": scaling,
            "target": SCALING_GOAL,
            "met": None if scaling is None or count < 3 else scaling <= SCALING_GOAL,
        },
    ]
    measurements = {
        "boot_s": runs["boot_1_s"],
        "bare_converge_1host_s": runs["bare_1"]["wall_s"],
        "bare_converge_1host_roles_s": runs["bare_1"]["roles_s"],
        "noop_1host_s": [r["wall_s"] for r in noop_1],
        "noop_1host_median_s": noop_1_s,
        f"bare_converge_{count - 1}hosts_together_s": runs["bare_rest"]["wall_s"] if count > 1 else None,
        f"noop_{count}hosts_s": [r["wall_s"] for r in noop_n],
        f"noop_{count}hosts_median_s": noop_n_s,
        "noop_1host_paired_median_s": paired_1,
        "scaling_ratio": scaling,
        "noop_changed": [r["changed"] for r in noop_1 + noop_n],
        "noop_roles_s": noop_1[-1]["roles_s"],
        "noop_1host_cores_busy": [r["cores_busy"] for r in noop_1],
        "noop_1host_cpu_s": [r["cpu_s"] for r in noop_1],
        f"noop_{count}hosts_cpu_s": [r["cpu_s"] for r in noop_n],
        f"noop_{count}hosts_cores_busy": [r["cores_busy"] for r in noop_n],
        "noop_changed_tasks": sorted({t for r in noop_1 + noop_n for t in r["changed_tasks"]}),
    }
    notes = [
        "Test hosts: Molecule's platform (molecule/default/molecule.yml) on network "
        f"{NETWORK} ({SUBNET}), community.docker.docker connection, Molecule's group_vars.",
        "Hosts 2..N were converged from bare together in one run, not one by one.",
        f"Scaling ratio: median no-op on {count} hosts / median no-op on 1 host, both with "
        f"forks {forks}, run alternately; the first no-op (forks 1) counts for the 30 s goal only.",
        "`CPU s`: the run's own CPU time (ansible-playbook, its workers and docker CLIs, and the "
        "test hosts' own processes; not their containers), which hardly depends on other work. "
        "`cores busy`: the machine's CPU time over the run's wall time (/proc/stat, everything "
        f"on the machine): near {os.cpu_count()} the run was bound by CPU. On {os.cpu_count()} "
        f"cores, {count} hosts take at least {count} x CPU s (1 host) / {os.cpu_count()} of wall time.",
        f"Logs: {WORK.relative_to(ROOT)}/*.log",
    ]
    if measurements["noop_changed_tasks"]:
        notes.append("Changed in no-op runs: " + "; ".join(measurements["noop_changed_tasks"]))
    loads = [r["load"] for r in rows]
    if max(loads) > (os.cpu_count() or 1):
        notes.append(
            f"Other work shared the machine (1-minute load up to {max(loads):g} on {os.cpu_count()} "
            "cores, column `load`, taken at each run's start): the wall times are upper bounds."
        )
    if keep:
        notes.append(f"{names[0]} is left converged for first_cert, which removes it.")
    return {
        "title": f"Provisioning (site.yml on Debian 13 test hosts, {os.cpu_count()} cores)",
        "rows": rows,
        "ratios": {f"no-op {count} hosts / 1 host": scaling},
        "goals": goals,
        "measurements": measurements,
        "settings": {
            "hosts": count,
            "forks": forks,
            "noop_repeats": repeats,
            "image": platform_spec()["image"],
        },
        "notes": notes,
        "runs": runs,
        "host": _handoff,
    }


def main(argv: list[str] | None = None) -> int:
    return common.part_main("bench.provisioning", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
