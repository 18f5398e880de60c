"""Command line: `mcp-gateway-auth serve` (the default), `hash-password`, `check-config`, and
the operator's commands `clients`, `grants`, `consents`, `keys` (admin.py)."""

from __future__ import annotations

import argparse
import getpass
import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import Any

from . import admin
from .app import create_app
from .config import load_settings


def app_factory():
    """The server's factory: every worker builds its own app (and Redis pool)."""
    return create_app(load_settings())


def server(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    factory: bool = True,
    tls: tuple[str, str] | None = None,
) -> Any:
    """The HTTP server of `serve` (and of the bench's always-200 ForwardAuth server, so that
    both run the same way): Granian, ASGI.

    `tls`: (certificate, key) files. With them the service speaks TLS, HTTP/2 or HTTP/1.1
    as the client offers (ALPN): Traefik's ForwardAuth client speaks HTTP/2 over TLS, so
    every check rides one connection instead of opening new ones (bench/README.md, d over
    TLS). Without them: plain HTTP/1.1.

    Over plain HTTP/1.1, Traefik's ForwardAuth client keeps two idle connections, so under
    load about half of the checks open a new TCP connection (bench/README.md). Granian
    accepts and parses in Rust (hyper): a check on a new connection cost 75 µs of CPU under
    it and 330 µs under uvicorn (`make bench`, verify's close rows, quiet machine). One
    single-threaded Rust runtime per worker: the cheapest per request on this service's
    one-Redis-command hot path. No websockets: nothing here uses them."""
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
    from granian.http import HTTP1Settings
    from granian.server import Server

    logging_config = log_config(log_level)
    protocol: dict[str, Any] = {"http": HTTPModes.http1}
    if tls:
        protocol = {"http": HTTPModes.auto, "ssl_cert": Path(tls[0]), "ssl_key": Path(tls[1])}
    return Server(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=factory,
        workers=workers,
        runtime_mode=RuntimeModes.st,
        runtime_threads=1,
        blocking_threads=1,
        loop=Loops.uvloop,
        **protocol,
        # Keep-alive until the client closes: Traefik's ForwardAuth client (Go's default
        # transport) closes a connection idle for 90 s.
        http1_settings=HTTP1Settings(keep_alive=True),
        websockets=False,
        log_dictconfig=logging_config,
        log_level=log_level.lower(),
        log_access=False,
        # A worker that dies is started again (uvicorn's supervisor did the same).
        respawn_failed_workers=True,
    )


def log_config(level: str) -> dict[str, Any]:
    """JSON lines on stdout (JsonFormatter), for dictConfig. The server applies it in every
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
    serve.add_argument(
        "--tls-certificate",
        default=os.environ.get("AUTH_TLS_CERTIFICATE", ""),
        help="PEM certificate (chain) to serve HTTPS with (HTTP/2 and HTTP/1.1); needs --tls-key",
    )
    serve.add_argument("--tls-key", default=os.environ.get("AUTH_TLS_KEY", ""), help="its PEM private key")
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
    logging.config.dictConfig(log_config(args.log_level))
    load_settings()  # fail fast, with the message naming the bad setting
    if bool(args.tls_certificate) != bool(args.tls_key):
        parser.error("--tls-certificate and --tls-key (AUTH_TLS_CERTIFICATE, AUTH_TLS_KEY) go together")
    for option, path in (("--tls-certificate", args.tls_certificate), ("--tls-key", args.tls_key)):
        if path and not os.access(path, os.R_OK):
            parser.error(f"{option}: cannot read {path}")
    # The app reads X-Forwarded-For itself, from its trusted_proxies only (app.py).
    server(
        "mcp_gateway_auth.__main__:app_factory",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        tls=(args.tls_certificate, args.tls_key) if args.tls_certificate else None,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
