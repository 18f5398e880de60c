"""Day-2 operations under load (issue 14), in order: rollouts of echo (a new release, then
a broken one), of the auth service, a Traefik restart, a certificate renewal, backup ->
destroy -> restore, and status.yml.

A load loop on the controller sends requests with valid tokens to the test host's Traefik
(its address on the controller's Docker bridge, names pinned, certificates checked against
Pebble's root) and counts every non-2xx answer and every connection error; one MCP session
on fetch keeps an SSE stream open meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from mcpgw.ops import acme_certificates
from tests.e2e.gateway_client import GatewayUser, molecule_gateway, pinned_transport

ROOT = Path(__file__).resolve().parents[3]

DOMAIN = "gateway.test"
ECHO = f"https://echo.{DOMAIN}/mcp"
FETCH = f"https://fetch.{DOMAIN}/mcp"
AUTH = f"https://auth.{DOMAIN}"
PEBBLE_ROOT = "/opt/mcp-gateway/acme-test-ca/issuing-root.pem"
ACCEPT = "application/json, text/event-stream"
RESULTS: dict[str, object] = {}


def report(key: str, value: object) -> None:
    """Measured numbers: printed (pytest -s / molecule's verifier output) and kept."""
    RESULTS[key] = value
    print(f"\nDAY2 {key}: {value}", flush=True)


# Task names of the long steps the playbooks take (rollouts, restarts, restore): printed as
# they start, so that a slow step shows where it is.
PROGRESS = re.compile(
    r"^TASK \[(?:[^:\]]+ : )?((?:Waiting|Roll|Start|Stop|Drain|Refuse|Restart|Restore|Report)[^\]]*)\]"
)


def playbook(name: str, *extra: str) -> subprocess.CompletedProcess:
    """ansible-playbook from the controller: progress lines while it runs, then its exit code,
    wall time and its slowest tasks (ansible.posix.profile_tasks)."""
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    }
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    command = ["ansible-playbook", "-i", inventory, str(ROOT / "playbooks" / name)]
    started = time.monotonic()
    print(f"\n{name} {' '.join(extra)}:", flush=True)
    with subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        lines = []
        for line in process.stdout:
            lines.append(line)
            match = PROGRESS.match(line)
            if match:
                print(f"  +{time.monotonic() - started:5.1f} s  {match.group(1)[:110]}", flush=True)
        stderr = process.stderr.read()
    stdout = "".join(lines)
    run = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    slowest = re.findall(r"^(.+?) -+ (\d+\.\d+)s$", stdout, re.M)[:4]
    print(f"  rc={run.returncode} in {time.monotonic() - started:.1f} s", flush=True)
    for task, seconds in slowest:
        print(f"    {seconds:>7} s  {task.strip()[:100]}", flush=True)
    return run


def wait_for(condition, seconds: float, message: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(every)


def tail(run: subprocess.CompletedProcess) -> str:
    return run.stdout[-4000:] + run.stderr[-2000:]


@pytest.fixture(autouse=True)
def step_timing(request):
    """The wall time of every step, printed as it ends and summed up at the end."""
    started = time.monotonic()
    yield
    seconds = time.monotonic() - started
    # Short: Molecule's output wraps long lines.
    name = request.node.originalname.removeprefix("test_")[:60]
    STEPS[name] = seconds
    print(f"\nDAY2 step {name}: {seconds:.1f} s", flush=True)


STEPS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def step_summary():
    yield
    print("\nDAY2 steps (s):", flush=True)
    for name, seconds in STEPS.items():
        print(f"  {seconds:7.1f}  {name}", flush=True)
    print(f"  {sum(STEPS.values()):7.1f}  total of verify", flush=True)


@pytest.fixture(scope="module")
def gateway(host, tmp_path_factory):
    return molecule_gateway("day2-gw", host.file(PEBBLE_ROOT).content_string, tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def users(gateway):
    """Signed-in clients of alice: one for the load on echo, one for the SSE session on
    fetch, one whose refresh token waits for the restore."""
    address, ca_file = gateway
    signed_in = {}
    for name, url in (("load", ECHO), ("sse", FETCH), ("refresh", ECHO)):
        user = GatewayUser(address, ca_file, "alice", "alice-password")

        async def sign_in(user=user, url=url):
            async with user.session(url) as session:
                await session.list_tools()

        anyio.run(sign_in)
        signed_in[name] = user
    return signed_in


def served_serial(gateway, name: str = f"echo.{DOMAIN}") -> str:
    address, ca_file = gateway
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection((address, 443), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return format(x509.load_der_x509_certificate(der).serial_number, "x")


def stored_serials(host, name: str = f"echo.{DOMAIN}") -> set[str]:
    """The serials of every certificate in the host's acme.json that covers `name` (its own,
    and SAN certificates that name it too: Traefik may serve either)."""
    text = host.file("/opt/mcp-gateway/traefik/acme/acme.json").content_string
    return {row["serial"] for row in acme_certificates(text) if name in [row["domain"], *row["sans"]]}


def tool_call(name: str, request_id: int) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}},
    }


class Load:
    """Requests with valid tokens, as fast as a few workers go: echo's `replica` tool and the
    auth service's metadata; plus one MCP session on fetch holding an SSE stream open."""

    def __init__(self, gateway, echo_token: str, fetch_token: str | None = None, workers: int = 4) -> None:
        self.gateway = gateway
        self.echo_token = echo_token
        self.fetch_token = fetch_token
        self.workers = workers
        self.ok = 0
        self.failed = 0
        self.failures: list[str] = []
        self.replicas: dict[str, int] = {}
        self.sse_events = 0
        self.sse_error: str | None = None
        self.sse_open = False
        self.sse_session: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: anyio.run(self._main), daemon=True)

    def start(self) -> Load:
        self._thread.start()
        deadline = time.monotonic() + 30
        while self.ok < 10 or (self.fetch_token and not self.sse_open and not self.sse_error):
            assert time.monotonic() < deadline, (
                f"the load never got going: {self.failures[:5]} {self.sse_error}"
            )
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _fail(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append(f"{time.strftime('%H:%M:%S')} {what}")

    async def _main(self) -> None:
        async with anyio.create_task_group() as group:
            for index in range(self.workers):
                group.start_soon(self._echo, index)
            group.start_soon(self._auth)
            if self.fetch_token:
                group.start_soon(self._sse)
            await anyio.to_thread.run_sync(self._stop.wait)
            group.cancel_scope.cancel()

    def _client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=pinned_transport(*self.gateway), timeout=30)

    async def _echo(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.echo_token}", "Accept": ACCEPT}
        async with self._client() as http:
            number = 0
            while True:
                number += 1
                try:
                    response = await http.post(ECHO, json=tool_call("replica", number), headers=headers)
                except Exception as err:
                    self._fail(f"echo: {type(err).__name__}: {err}")
                else:
                    if 200 <= response.status_code < 300:
                        self.ok += 1
                        text = response.json()["result"]["content"][0]["text"]
                        self.replicas[text] = self.replicas.get(text, 0) + 1
                    else:
                        self._fail(f"echo: {response.status_code} {response.text[:200]}")
                await anyio.sleep(0.05)

    async def _auth(self) -> None:
        async with self._client() as http:
            while True:
                try:
                    response = await http.get(f"{AUTH}/.well-known/oauth-authorization-server")
                except Exception as err:
                    self._fail(f"auth: {type(err).__name__}: {err}")
                else:
                    if 200 <= response.status_code < 300:
                        self.ok += 1
                    else:
                        self._fail(f"auth: {response.status_code} {response.text[:200]}")
                await anyio.sleep(0.05)

    async def _sse(self) -> None:
        """initialize, then GET /mcp: the server's stream stays open until the load stops."""
        headers = {"Authorization": f"Bearer {self.fetch_token}", "Accept": ACCEPT}
        async with self._client() as http:
            try:
                init = await http.post(
                    FETCH,
                    headers=headers,
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-06-18",
                            "capabilities": {},
                            "clientInfo": {"name": "day2-load", "version": "1"},
                        },
                    },
                )
                assert init.status_code == 200, init.text
                self.sse_session = init.headers["mcp-session-id"]
                session = {
                    **headers,
                    "Mcp-Session-Id": self.sse_session,
                    "Mcp-Protocol-Version": "2025-06-18",
                }
                done = await http.post(
                    FETCH, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
                )
                assert done.status_code == 202, done.text
                stream_headers = {**session, "Accept": "text/event-stream"}
                async with http.stream("GET", FETCH, headers=stream_headers, timeout=None) as stream:
                    assert stream.status_code == 200, stream.status_code
                    self.sse_open = True
                    async for _ in stream.aiter_bytes():
                        self.sse_events += 1
                self.sse_error = "the SSE stream ended"
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as err:
                self.sse_error = f"{type(err).__name__}: {err}"
            finally:
                self.sse_open = False

    def session_call(self) -> int:
        """A request in the long-lived session (tools/list): its status."""

        async def go():
            headers = {
                "Authorization": f"Bearer {self.fetch_token}",
                "Accept": ACCEPT,
                "Mcp-Session-Id": self.sse_session,
                "Mcp-Protocol-Version": "2025-06-18",
            }
            async with self._client() as http:
                return (
                    await http.post(
                        FETCH, headers=headers, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}
                    )
                ).status_code

        return anyio.run(go)


@pytest.fixture(scope="module")
def load(host, gateway, users):
    first_serial, first_stored = served_serial(gateway), stored_serials(host)
    running = Load(
        gateway, users["load"].storage.tokens.access_token, users["sse"].storage.tokens.access_token
    ).start()
    running.first_serial = first_serial
    running.first_stored = first_stored
    yield running
    running.stop()


ACCESS_LOG = "/opt/mcp-gateway/traefik/logs/access.log"


def access_log_lines(host) -> int:
    return int(host.run(f"wc -l < {ACCESS_LOG}").stdout.strip() or 0)


def access_log_5xx(host, since: int) -> list[dict]:
    """Traefik's access-log entries with a 5xx answer after line `since`: the evidence of a
    failed request (router, upstream, durations)."""
    out = host.run(f"tail -n +{since + 1} {ACCESS_LOG} | grep '\"DownstreamStatus\":5' | head -n 5").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def replica_names(host) -> list[str]:
    out = host.run(
        "docker ps --filter label=com.docker.compose.project=mcp-echo --format '{{.Names}}'"
    ).stdout
    return sorted(out.split())


# -- rollouts under load ------------------------------------------------------------------------------
def test_echo_rollout_to_a_new_release_fails_no_request(host, load):
    before = replica_names(host)
    failed, ok, since = load.failed, load.ok, access_log_lines(host)
    run = playbook("rollout.yml", "-e", "service=echo", "-e", "echo_release=v2")
    assert run.returncode == 0, tail(run)
    assert "drain" in run.stdout
    after = replica_names(host)
    report("echo rollout: requests ok / failed", f"{load.ok - ok} / {load.failed - failed}")
    assert load.failed - failed == 0, (load.failures, access_log_5xx(host, since))
    assert len(after) == 2
    assert not set(before) & set(after)
    seen = dict(load.replicas)
    wait_for(lambda: load.replicas.get("v2", 0) > seen.get("v2", 0), 10, f"no v2 answer: {load.replicas}")


def test_a_broken_release_is_rolled_back_and_fails_no_request(host, load):
    before = replica_names(host)
    failed, ok, since = load.failed, load.ok, access_log_lines(host)
    run = playbook("rollout.yml", "-e", "service=echo", "-e", "echo_release=v2", "-e", "echo_broken=true")
    assert run.returncode != 0
    assert "ROLLED BACK" in run.stdout + run.stderr, tail(run)
    report("broken echo rollout: requests ok / failed", f"{load.ok - ok} / {load.failed - failed}")
    assert load.failed - failed == 0, (load.failures, access_log_5xx(host, since))
    assert replica_names(host) == before
    compose = host.file("/opt/mcp-gateway/mcp/echo/compose.yml").content_string
    assert "9000" not in compose
    v2 = load.replicas.get("v2", 0)
    wait_for(lambda: load.replicas.get("v2", 0) > v2, 10, f"v2 stopped answering: {load.replicas}")


def test_auth_rollout_fails_no_request(host, load):
    names = "docker ps --filter label=com.docker.compose.service=auth --format '{{.Names}}'"
    before = set(host.run(names).stdout.split())
    failed, ok, since = load.failed, load.ok, access_log_lines(host)
    run = playbook("rollout.yml", "-e", "service=auth", "-e", "echo_release=v2")
    assert run.returncode == 0, tail(run)
    report("auth rollout: requests ok / failed", f"{load.ok - ok} / {load.failed - failed}")
    assert load.failed - failed == 0, (load.failures, access_log_5xx(host, since))
    after = set(host.run(names).stdout.split())
    assert len(after) == 2
    assert not before & after


AUTH_TLS_CERT = "/opt/mcp-gateway/auth/secrets/tls-cert.pem"


def auth_serials_served(host) -> set[str]:
    """The serials of the certificates the auth service's replicas serve on the public
    network, as Traefik sees them (TLS with the name `auth`)."""
    script = (
        "for c in $(docker ps -q --filter label=com.docker.compose.service=auth); do "
        "ip=$(docker inspect -f '{{(index .NetworkSettings.Networks \"public\").IPAddress}}' $c); "
        "echo | openssl s_client -connect $ip:8000 -servername auth 2>/dev/null "
        "| openssl x509 -noout -serial; done"
    )
    return set(host.run(script).stdout.split())


def test_auth_tls_certificate_renewed_by_a_rollout_fails_no_request(host, load):
    """The auth service's certificate (from the internal CA), renewed ahead of its time: a
    rollout with a renewal window longer than the certificate's life issues a new one and
    starts the new replicas with it; Traefik trusts the CA, not the certificate, and keeps
    every request."""
    serial = f"openssl x509 -noout -serial -enddate -in {AUTH_TLS_CERT}"
    before = host.run(serial).stdout.split()
    assert auth_serials_served(host) == {before[0]}
    failed, ok, since = load.failed, load.ok, access_log_lines(host)
    run = playbook(
        "rollout.yml",
        *("-e", "service=auth", "-e", "echo_release=v2"),
        *("-e", "auth_tls_renew_days=400", "-e", "auth_tls_certificate_days=401"),
    )
    assert run.returncode == 0, tail(run)
    after = host.run(serial).stdout.split()
    report("auth certificate renewal: serials", f"{before[0]} -> {after[0]}")
    report("auth certificate renewal: requests ok / failed", f"{load.ok - ok} / {load.failed - failed}")
    assert after[0] != before[0]
    assert auth_serials_served(host) == {after[0]}
    assert load.failed - failed == 0, (load.failures, access_log_5xx(host, since))


def test_the_sse_session_stayed_open_through_the_rollouts(load):
    assert load.sse_open, load.sse_error
    assert load.session_call() == 200
    report("load during rollouts", {"ok": load.ok, "failed": load.failed})
    assert load.failed == 0, load.failures


# -- certificates renewed by Traefik itself ---------------------------------------------------------
def test_a_renewal_under_load_serves_a_new_serial_without_a_failed_request(gateway, load):
    # The certificates issued at converge renew about 4 minutes later, while the rollouts'
    # load (every request counted) runs, or in the seconds after: the same load keeps going.
    known = load.first_stored | {load.first_serial}
    failed, ok = load.failed, load.ok
    wait_for(lambda: served_serial(gateway) not in known, 300, "no renewal within 5 minutes", every=2)
    report("renewal: serials", f"{load.first_serial} -> {served_serial(gateway)}")
    report("renewal: requests ok / failed while waiting for it", f"{load.ok - ok} / {load.failed - failed}")
    report("load from the first rollout to the renewal", {"ok": load.ok, "failed": load.failed})
    assert load.failed == 0, load.failures


# -- Traefik -----------------------------------------------------------------------------------------
def test_traefik_restart_gap_is_measured_and_reported(load):
    load.stop()
    run = playbook("rollout.yml", "-e", "service=traefik", "-e", "echo_release=v2")
    assert run.returncode == 0, tail(run)
    match = re.search(r"Traefik restart gap on day2-gw: ([0-9.]+) s without an answer", run.stdout)
    assert match, tail(run)
    report("Traefik restart gap (s)", float(match.group(1)))


# -- certificates by hand ----------------------------------------------------------------------------
def test_certs_status_shows_every_certificate(gateway):
    run = playbook("certs.yml", "--tags", "status")
    assert run.returncode == 0, tail(run)
    assert "DOMAIN" in run.stdout
    assert served_serial(gateway) in run.stdout


def test_forced_renewal_serves_a_new_serial_after_one_restart_gap(host, gateway):
    name = f"echo.{DOMAIN}"
    before = served_serial(gateway)
    run = playbook("certs.yml", "--tags", "renew", "-e", json.dumps({"gateway_ops_renew_domains": [name]}))
    assert run.returncode == 0, tail(run)
    match = re.search(r"Traefik restart gap on day2-gw: ([0-9.]+) s without an answer", run.stdout)
    assert match, tail(run)
    report("forced renewal: Traefik restart gap (s)", float(match.group(1)))
    wait_for(lambda: served_serial(gateway) != before, 30, "the renewed certificate is not served")
    # Traefik serves what it stores within its providers' throttle (2 s by default).
    with contextlib.suppress(AssertionError):
        wait_for(lambda: served_serial(gateway) in stored_serials(host), 15, "", every=1)
    renewed = served_serial(gateway)
    # Evidence if not: what Traefik logged about the domain, and what acme.json holds.
    assert renewed in stored_serials(host), (
        host.run(f"docker logs traefik-traefik-1 2>&1 | grep -F '{name}' | tail -n 20").stdout,
        acme_certificates(host.file("/opt/mcp-gateway/traefik/acme/acme.json").content_string),
    )
    report("forced renewal: serials", f"{before} -> {renewed}")


def test_certs_backup_and_restore(host, gateway, tmp_path):
    backup = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backups" / "day2-gw-acme.json.vault"
    run = playbook("certs.yml", "--tags", "backup")
    assert run.returncode == 0, tail(run)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert backup.read_text().startswith("$ANSIBLE_VAULT;")
    password = tmp_path / "password"
    password.write_text("molecule-day2-backup-password\n")
    decrypted = subprocess.run(
        ["ansible-vault", "decrypt", "--vault-password-file", str(password), "--output", "-", str(backup)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    acme = host.file("/opt/mcp-gateway/traefik/acme/acme.json")
    assert json.loads(decrypted) == json.loads(acme.content_string)
    serial = served_serial(gateway)

    # acme.json lost on the host (Traefik still holds the certificates in memory).
    assert host.run(f"echo '{{}}' > {acme.path}").rc == 0
    run = playbook("certs.yml", "--tags", "restore")
    assert run.returncode == 0, tail(run)
    match = re.search(r"Traefik restart gap on day2-gw: ([0-9.]+) s without an answer", run.stdout)
    assert match, tail(run)
    report("certs restore: Traefik restart gap (s)", float(match.group(1)))
    assert acme.mode == 0o600
    assert json.loads(acme.content_string) == json.loads(decrypted)
    assert served_serial(gateway) == serial
    report("certs backup -> restore: serial served", serial)


# -- backup, loss, restore ---------------------------------------------------------------------------
def test_backup_destroy_restore_keeps_certificates_and_tokens(host, gateway, users):
    backup = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backups" / "day2-gw.vault"
    run = playbook("backup.yml")
    assert run.returncode == 0, tail(run)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert backup.read_text().startswith("$ANSIBLE_VAULT;")
    serial = served_serial(gateway)
    backed_up = stored_serials(host)
    assert serial in backed_up

    # The host loses its gateway data: certificates, keys, Redis.
    for command in (
        "docker compose --project-directory /opt/mcp-gateway/auth down --volumes",
        "docker compose --project-directory /opt/mcp-gateway/traefik down",
        "rm -rf /opt/mcp-gateway/traefik/acme /opt/mcp-gateway/auth/secrets",
    ):
        assert host.run(command).rc == 0, command
    assert not host.file("/opt/mcp-gateway/auth/secrets/signing-key.pem").exists

    run = playbook("restore.yml", "-e", "echo_release=v2")
    assert run.returncode == 0, tail(run)
    assert host.file("/opt/mcp-gateway/traefik/acme/acme.json").mode == 0o600
    restored = served_serial(gateway)
    report("restore: serial served before backup / after restore", f"{serial} / {restored}")
    # Served from the restored acme.json, and nothing new was asked of the CA.
    assert restored in backed_up
    assert stored_serials(host) == backed_up

    # A token issued before the backup still verifies; a refresh token from before still refreshes.
    refresh = users["refresh"]
    tokens, client = refresh.storage.tokens, refresh.storage.client

    async def go():
        async with httpx2.AsyncClient(transport=pinned_transport(*gateway), timeout=30) as http:
            old = await http.post(
                ECHO,
                json=tool_call("replica", 1),
                headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": ACCEPT},
            )
            refreshed = await http.post(
                f"{AUTH}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens.refresh_token,
                    "client_id": client.client_id,
                    "resource": ECHO,
                },
            )
            new = None
            if refreshed.status_code == 200:
                new = await http.post(
                    ECHO,
                    json=tool_call("replica", 2),
                    headers={"Authorization": f"Bearer {refreshed.json()['access_token']}", "Accept": ACCEPT},
                )
            return old, refreshed, new

    old, refreshed, new = anyio.run(go)
    assert old.status_code == 200, old.text
    assert refreshed.status_code == 200, refreshed.text
    assert new.status_code == 200, new.text
    report(
        "restore: old access token / refresh / new token",
        f"{old.status_code} / {refreshed.status_code} / 200",
    )


# -- status ------------------------------------------------------------------------------------------
BROKEN = "/opt/mcp-gateway/traefik/dynamic/zz-broken.yml"


def test_status_prints_the_tables_and_fails_on_a_broken_router(host):
    run = playbook("status.yml")
    assert run.returncode == 0, tail(run)
    for needle in ("Routers:", "Services:", "Certificates:", "No problems.", "echo-mcp@docker", "UP"):
        assert needle in run.stdout, needle
    host.run(
        "printf 'http:\\n  routers:\\n    broken:\\n      rule: PathPrefix(`/broken`)\\n"
        f"      service: missing@file\\n      entryPoints: [internal]\\n' > {BROKEN}"
    )
    try:
        broken = playbook("status.yml")
        if broken.returncode == 0:  # the file provider had not read it yet
            broken = playbook("status.yml")
        assert broken.returncode != 0, tail(broken)
        assert "router broken@file" in broken.stdout + broken.stderr, tail(broken)
    finally:
        host.run(f"rm -f {BROKEN}")
    print(broken.stdout[-3000:])
