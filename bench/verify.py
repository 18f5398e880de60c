"""/verify alone: our auth service against the original gateway's.

The original is PyPI's `mcp-oauth-dynamicclient==0.2.0` (the auth service of the MCP
OAuth gateway this project replaces). It may not share our pins, so the harness
installs it into a venv of its own under build/bench/. Both services get the same
redis-server, the same worker count and uvloop, each under its own server (ours:
Granian, `mcp-gateway-auth serve`; the original: uvicorn with httptools, as it ships);
each token is minted by the service's own code:

- ours: `mcp_gateway_auth.keys.SigningKey` (ES256), `mcp-gateway-auth serve`;
- original: `AuthManager.create_jwt_token` (RS256, its token record in Redis), its
  module-level app `mcp_oauth_dynamicclient.server:app` under uvicorn with its settings
  from the environment (pydantic-settings). Its per-request INFO logging and uvicorn's
  access log are turned off (LOG_LEVEL=WARNING, --no-access-log): the comparison is
  generous to the original.

Two loads: wrk's keep-alive connections (the goal), and `Connection: close` on every
request, which is close to what Traefik's ForwardAuth client does under load (it keeps
only a couple of idle connections to the auth server, so most checks open a new one).
Goals: ours/original >= 6 req/s at an equal or lower p99, and at most 60 µs of CPU per
request in our service (its processes' utime + stime over the run, /proc; keep-alive).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import common

ORIGINAL = "mcp-oauth-dynamicclient==0.2.0"
ORIGINAL_VENV = common.BUILD / "original-venv"
GOAL_RATIO = 6.0
GOAL_CPU_US = 60.0

MINT = """
import asyncio

import redis.asyncio as redis
from mcp_oauth_dynamicclient.auth_authlib import AuthManager
from mcp_oauth_dynamicclient.config import Settings


async def main():
    settings = Settings()
    client = redis.from_url(settings.redis_url, password=settings.redis_password, decode_responses=True)
    token = await AuthManager(settings).create_jwt_token(
        {"sub": "bench-user", "username": "bench", "email": "bench@bench.test", "name": "Bench User",
         "scope": "mcp", "client_id": "bench-client"},
        client,
    )
    await client.aclose()
    print(token)


asyncio.run(main())
"""


def ensure_original() -> Path:
    """The original's own venv (created once; `make clean` removes build/)."""
    marker = ORIGINAL_VENV / ".installed"
    if marker.exists() and marker.read_text().strip() == ORIGINAL:
        return ORIGINAL_VENV / "bin"
    print(f"    installing {ORIGINAL} into {ORIGINAL_VENV} ...", flush=True)
    base = sys.executable if not sys.prefix.startswith(str(common.ROOT)) else "python3"
    subprocess.run([base, "-m", "venv", "--clear", str(ORIGINAL_VENV)], check=True)
    done = subprocess.run(
        [str(ORIGINAL_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", ORIGINAL],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise common.HarnessError(f"pip install {ORIGINAL} failed:\n{done.stdout}\n{done.stderr}")
    marker.write_text(ORIGINAL + "\n")
    return ORIGINAL_VENV / "bin"


def original_environment(redis_port: int, redis_password: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    return {
        "GITHUB_CLIENT_ID": "bench",
        "GITHUB_CLIENT_SECRET": "bench",
        "JWT_SECRET": secrets.token_hex(32),
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY_B64": base64.b64encode(pem.encode()).decode(),
        "BASE_DOMAIN": "bench.test",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "REDIS_PASSWORD": redis_password,
        "ACCESS_TOKEN_LIFETIME": "3600",
        "REFRESH_TOKEN_LIFETIME": "86400",
        "SESSION_TIMEOUT": "300",
        "CLIENT_LIFETIME": "0",
        "ALLOWED_GITHUB_USERS": "bench",
        "MCP_PROTOCOL_VERSION": "2025-06-18",
        "LOG_LEVEL": "WARNING",
    }


def start_original(
    bin_dir: Path, redis_port: int, redis_password: str, workers: int, workdir: Path
) -> tuple[common.Proc, int, str]:
    env = original_environment(redis_port, redis_password)
    # Settings also read ./.env: run where there is none.
    token = subprocess.run(
        [str(bin_dir / "python"), "-c", MINT],
        env={**os.environ, **env},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    port = common.free_port()
    argv = [str(bin_dir / "uvicorn"), "mcp_oauth_dynamicclient.server:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "95"]
    proc = common.Proc(
        "auth-original",
        argv,
        env=env,
        cwd=workdir,
    )
    headers = {"Authorization": f"Bearer {token}"}
    proc.wait_ready(common.http_ok(f"http://127.0.0.1:{port}/verify", headers), timeout=60)
    return proc, port, token


def run(args: argparse.Namespace) -> dict[str, Any]:
    workers = args.workers
    load = {"threads": args.threads, "connections": args.connections, "duration": args.duration}
    load["warmup"] = args.warmup
    started = time.time()
    bin_dir = ensure_original()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        workdir = Path(tmp)
        password = secrets.token_hex(16)
        redis, redis_port = common.start_redis(password)
        ours, ours_port, token = common.start_our_auth(redis_port, password, workers, workdir)
        original, original_port, original_token = start_original(
            bin_dir, redis_port, password, workers, workdir
        )
        try:
            ours_headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Host": common.BENCH_HOST}
            original_headers = {
                "Authorization": f"Bearer {original_token}",
                "X-Forwarded-Host": common.BENCH_HOST,
            }
            close = {"Connection": "close"}
            targets = {}
            for name, port, headers in (
                ("ours", ours_port, ours_headers),
                ("original", original_port, original_headers),
            ):
                url = f"http://127.0.0.1:{port}/verify"
                targets[f"{name}/keep-alive"] = (url, headers)
                targets[f"{name}/close"] = (url, {**headers, **close})
            cpu_of = {key: {"server": (ours if key.startswith("ours") else original).pid} for key in targets}
            results = common.measure_interleaved(targets, args.rounds, load, cpu_of)
        finally:
            for proc in (original, ours, redis):
                proc.stop()
    names = {"ours": f"ours ({workers} workers)", "original": f"original 0.2.0 ({workers} workers)"}
    rows = [
        common.load_row(results[f"{service}/{load}"], ("server",), service=names[service], connections=load)
        for load in ("keep-alive", "close")
        for service in ("ours", "original")
    ]
    ratios = {
        "ours/original (keep-alive)": common.ratio(
            results["ours/keep-alive"]["rps"], results["original/keep-alive"]["rps"]
        ),
        "ours/original (close)": common.ratio(results["ours/close"]["rps"], results["original/close"]["rps"]),
    }
    valid = all(result["non_2xx"] == 0 and result["errors"] == 0 for result in results.values())
    ratio = ratios["ours/original (keep-alive)"]
    p99_ok = results["ours/keep-alive"]["p99_ms"] <= results["original/keep-alive"]["p99_ms"]
    cpu_us = results["ours/keep-alive"]["cpu_us_per_request"]["server"]
    return {
        "title": "/verify alone (valid token, wrk straight at the auth service)",
        "rows": rows,
        "ratios": ratios,
        "goals": [
            {
                "goal": f"ours/original >= {GOAL_RATIO:g} req/s at an equal or lower p99 (keep-alive)",
                "value": ratio,
                "met": bool(valid and ratio is not None and ratio >= GOAL_RATIO and p99_ok),
            },
            {
                "goal": f"ours: CPU per request <= {GOAL_CPU_US:g} µs (keep-alive, all its processes)",
                "value": cpu_us,
                "met": bool(valid and cpu_us and cpu_us <= GOAL_CPU_US),
            },
        ],
        "settings": {
            "original": ORIGINAL,
            "original_server": "uvicorn mcp_oauth_dynamicclient.server:app --loop uvloop --http httptools "
            "--no-access-log, LOG_LEVEL=WARNING",
            "ours": "mcp-gateway-auth serve (Granian, uvloop, no access log)",
            "workers": workers,
            "wrk": results["ours/keep-alive"]["wrk"],
            "rounds": args.rounds,
        },
        "raw": results,
        "notes": [] if valid else ["some runs had errors or non-2xx answers: their numbers are not valid"],
        "seconds": round(time.time() - started, 1),
    }
