"""Command line: `mcp-gateway-auth serve` (the default), `hash-password`, `check-config`, and
the operator's commands `clients`, `grants`, `consents`, `keys` (admin.py)."""

from __future__ import annotations

import argparse
import getpass
import logging
import logging.config
import os
import sys
from typing import Any

import uvicorn

from . import admin
from .app import create_app
from .config import load_settings


def app_factory():
    """uvicorn's factory: every worker builds its own app (and Redis pool)."""
    return create_app(load_settings())


def log_config(level: str) -> dict[str, Any]:
    """JSON lines on stdout (JsonFormatter), for dictConfig. uvicorn applies it in every
    process it starts, its spawned workers included: configured in the parent alone, the
    workers dropped INFO (the login audit events) and the `extra` fields of the rest."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "mcp_gateway_auth.app.JsonFormatter"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
        },
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        # httpx2 logs every outgoing request (upstream identity providers) at info: too chatty.
        "loggers": {"httpx2": {"level": max(logging.WARNING, logging.getLevelName(level.upper()))}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-gateway-auth", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default=os.environ.get("AUTH_HOST", "0.0.0.0"))  # noqa: S104 -- in its container
    serve.add_argument("--port", type=int, default=int(os.environ.get("AUTH_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("AUTH_WORKERS", "1")))
    serve.add_argument("--log-level", default=os.environ.get("AUTH_LOG_LEVEL", "info"))
    sub.add_parser("hash-password", help="print the argon2id hash of a password read from stdin")
    sub.add_parser("check-config", help="load the configuration and the signing key, then exit")
    admin.add_commands(sub)
    args = parser.parse_args(argv)

    if args.command in admin.GROUPS:
        return admin.run(args)

    if args.command == "hash-password":
        from argon2 import PasswordHasher

        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        print(PasswordHasher().hash(password))
        return 0
    if args.command == "check-config":
        create_app(load_settings())
        print("ok")
        return 0

    args = args if args.command == "serve" else serve.parse_args([])
    logging_config = log_config(args.log_level)
    logging.config.dictConfig(logging_config)
    load_settings()  # fail fast, with the message naming the bad setting
    uvicorn.run(
        "mcp_gateway_auth.__main__:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # The app reads X-Forwarded-For itself, from its trusted_proxies only (app.py).
        proxy_headers=False,
        log_config=logging_config,
        log_level=args.log_level.lower(),
        # No `server: uvicorn` banner.
        server_header=False,
        # Longer than the 90 s idle timeout of Go's default HTTP transport, which Traefik's
        # ForwardAuth client uses: the client, not the server, closes an idle connection.
        timeout_keep_alive=95,
        # A worker answers the parent's liveness ping only once it has imported the app: on a
        # busy 2-core host that took longer than uvicorn's 5 s, and the parent killed every
        # worker it started until the container was marked unhealthy.
        timeout_worker_healthcheck=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
