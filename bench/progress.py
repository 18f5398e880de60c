"""Streaming through the gateway: progress-notification latency, directly and through Traefik.

server-everything's `trigger-long-running-operation` sends a progress notification every
duration/steps seconds on the call's SSE stream. Its latency is the time from the bridge
writing it to the HTTP side (stamped from the bridge's debug log, read as it is written) to
the client reading it off the stream; one machine, one clock. Measured directly on the bridge
and through Traefik with the traefik role's entrypoint settings and ForwardAuth to our
/verify (a valid token, real Redis), rounds interleaved. A gateway that buffered the stream
would deliver every notification at the end. Goal: through the gateway within 50 ms of directly (median).

The server and its bridge are the versions molecule/catalogue deploys from catalogue entries
(bench/progress/package-lock.json), run as plain processes on loopback like the other parts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

from . import common, request_path

GOAL_MS = 50
NPM_DIR = Path(__file__).resolve().parent / "progress"
INSTALL = common.BUILD / "progress"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("progress")
    group.add_argument("--progress-rounds", type=int, default=3, help="calls per path, interleaved")
    group.add_argument("--progress-steps", type=int, default=20, help="notifications per call")
    group.add_argument("--progress-duration", type=float, default=4.0, help="seconds per call")


def install() -> Path:
    """npm ci of bench/progress into build/bench/progress, again only when the lock changes."""
    lock = (NPM_DIR / "package-lock.json").read_bytes()
    stamp = INSTALL / "node_modules" / ".bench-lock"
    if stamp.is_file() and stamp.read_bytes() == lock:
        return INSTALL
    npm = shutil.which("npm")
    if npm is None:
        raise common.HarnessError("npm is missing (make testtools)")
    INSTALL.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(NPM_DIR / name, INSTALL / name)
    subprocess.run(
        [npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INSTALL, check=True
    )
    stamp.write_bytes(lock)
    return INSTALL


class Bridge:
    """server-everything behind supergateway, with the arguments the catalogue gives it, and
    its debug log read as it is written: the time each progress notification leaves the bridge
    for the HTTP side (the emit time) is stamped here, on the client's clock (one machine)."""

    PREFIX = "[supergateway] Child → StreamableHttp: "

    def __init__(self, install_dir: Path) -> None:
        self.port = common.free_port()
        server = install_dir / "node_modules" / ".bin" / "mcp-server-everything"
        argv = ["node", str(install_dir / "node_modules" / "supergateway" / "dist" / "index.js")]
        argv += ["--stdio", str(server), "--outputTransport", "streamableHttp", "--port", str(self.port)]
        argv += ["--streamableHttpPath", "/mcp", "--healthEndpoint", "/health", "--logLevel", "debug"]
        argv += ["--stateful", "--sessionTimeout", "1800000"]
        self.emitted: dict[tuple[str, int], float] = {}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 30
        while not self._answers():
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise common.HarnessError("the bridge (supergateway + server-everything) did not start")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            return common.http_status(f"http://127.0.0.1:{self.port}/health") == 200
        except OSError:
            return False

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(self.PREFIX) and "notifications/progress" in line:
                stamp = time.perf_counter()
                params = json.loads(line[len(self.PREFIX) :])["params"]
                self.emitted[(params["progressToken"], params["progress"])] = stamp

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _events(response: httpx2.Response):
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield time.perf_counter(), json.loads(line[5:])


def one_call(
    bridge: Bridge, url: str, headers: dict[str, str], steps: int, duration: float, token: str
) -> list[float]:
    """One session, one long-running call: each notification's latency in ms, from the bridge
    sending it to the client receiving it."""
    with httpx2.Client(timeout=httpx2.Timeout(30, read=duration + 30)) as http:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
        answer = http.post(url, json=init, headers={**headers, **ACCEPT})
        if answer.status_code != 200:
            raise common.HarnessError(
                f"initialize at {url} answered {answer.status_code}: {answer.text[:200]}"
            )
        session = {**headers, **ACCEPT, "Mcp-Session-Id": answer.headers["mcp-session-id"]}
        http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "trigger-long-running-operation",
                "arguments": {"duration": duration, "steps": steps},
                "_meta": {"progressToken": token},
            },
        }
        arrivals = {}
        with http.stream("POST", url, json=call, headers=session) as response:
            for arrived, message in _events(response):
                if message.get("method") == "notifications/progress":
                    arrivals[message["params"]["progress"]] = arrived
                elif message.get("id") == 2:
                    break
        http.delete(url, headers=session)
    time.sleep(0.2)  # the bridge's log line of the last notification
    latencies = [
        (at - bridge.emitted[(token, step)]) * 1000
        for step, at in arrivals.items()
        if (token, step) in bridge.emitted
    ]
    if len(latencies) != steps:
        raise common.HarnessError(f"{url}: {len(latencies)} of {steps} progress notifications matched")
    return latencies


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    install_dir = install()
    steps, duration = args.progress_steps, args.progress_duration
    with tempfile.TemporaryDirectory(prefix="bench-progress-") as tmp:
        workdir = Path(tmp)
        password = secrets.token_hex(16)
        redis, redis_port = common.start_redis(password)
        bridge = Bridge(install_dir)
        bridge_port = bridge.port
        # Our auth service as the roles run it: TLS (HTTP/2 to Traefik), `tls.ca` in ForwardAuth.
        tls_files = request_path.self_signed(workdir)
        config_file, token = common.our_auth_config(redis_port, password, workdir)
        ours, ours_port = common.start_our_auth_server(
            config_file, token, lambda port: common.serve_argv(port, 1, tls_files), ca=tls_files[0]
        )
        mcp_auth = request_path.forward_auth(f"https://127.0.0.1:{ours_port}/verify", ca=tls_files[0])
        routes = {
            "http": {
                "middlewares": {"mcp-auth": mcp_auth},
                "routers": {
                    "plain": request_path.router("gateway", "plain.bench.test", "bridge", []),
                    "ours": request_path.router("gateway", common.BENCH_HOST, "bridge", ["mcp-auth"]),
                },
                "services": {
                    "bridge": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{bridge_port}"}]}}
                },
            }
        }
        traefik, ports = request_path.start_traefik(
            workdir, {"gateway": {}}, routes, ("gateway", "plain.bench.test")
        )
        traefik_port = ports["gateway"]
        procs = [traefik, ours, bridge, redis]
        bearer = {"Authorization": f"Bearer {token}"}
        paths = {
            "direct": (f"http://127.0.0.1:{bridge_port}/mcp", bearer),
            "gateway": (f"http://127.0.0.1:{traefik_port}/mcp", {**bearer, "Host": common.BENCH_HOST}),
        }
        samples: dict[str, list[float]] = {key: [] for key in paths}
        try:
            for round_ in range(args.progress_rounds):
                for key, (url, headers) in paths.items():
                    samples[key] += one_call(bridge, url, headers, steps, duration, f"{key}-{round_}")
        finally:
            for proc in procs:
                proc.stop()

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median ms": round(statistics.median(ordered), 2),
            "p90 ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            "max ms": round(ordered[-1], 2),
        }

    stats = {key: summary(values) for key, values in samples.items()}
    labels = {
        "direct": "the bridge directly (supergateway + server-everything)",
        "gateway": "through Traefik + ForwardAuth to our /verify",
    }
    rows = [
        {"path": key, "what": labels[key], "notifications": len(samples[key]), **stats[key]} for key in paths
    ]
    added = round(stats["gateway"]["median ms"] - stats["direct"]["median ms"], 2)
    return {
        "title": "Progress notifications, emit to arrival (server-everything's long-running operation)",
        "rows": rows,
        "ratios": {"gateway - direct, median ms": added},
        "goals": [
            {
                "goal": f"through the gateway within {GOAL_MS} ms of directly (median)",
                "value": added,
                "met": added <= GOAL_MS,
            }
        ],
        "settings": {
            "steps": steps,
            "duration_s": duration,
            "rounds": args.progress_rounds,
            "latency": "client reads the notification - the bridge logs it (supergateway --logLevel debug)",
            "forward_auth": request_path.forward_auth("https://<auth>/verify", ca=Path("<internal CA>"))[
                "forwardAuth"
            ],
        },
        "seconds": round(time.time() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    return common.part_main("bench.progress", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
