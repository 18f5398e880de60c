"""The official MCP conformance suite's server scenarios against server-everything (a
catalogue package entry), twice: directly on one of its containers, and through the gateway
(TLS, ForwardAuth, Traefik's routing) with alice's OAuth token on every request. Nothing that
passes directly may fail through the gateway. Both tables are printed side by side and kept in
build/conformance.md."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.conformance import forward, suite
from tests.e2e.gateway_client import GatewayUser, pinned_transport

REPO = Path(__file__).resolve().parents[3]
DOMAIN = "gateway.test"
EVERYTHING = f"https://everything.{DOMAIN}"
RELAY_PORT = 18931


@pytest.fixture(scope="module")
def direct(host, gateway):
    """http://<test host>:RELAY_PORT: a TCP relay on the test host to one container of
    server-everything on the gateway's network (tests/conformance/tcp_relay.py)."""
    target = host.run(
        "docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' mcp-everything-server-1"
    ).stdout.strip()
    assert target
    subprocess.run(
        ["docker", "cp", str(REPO / "tests/conformance/tcp_relay.py"), "cat-gw:/usr/local/bin/tcp_relay.py"],
        check=True,
    )
    subprocess.run(
        [
            "docker",
            "exec",
            "-d",
            "cat-gw",
            "python3",
            "/usr/local/bin/tcp_relay.py",
            str(RELAY_PORT),
            target,
            "8000",
        ],
        check=True,
    )
    for _ in range(50):
        if host.run(f"curl -sf http://127.0.0.1:{RELAY_PORT}/healthz").rc == 0:
            break
        time.sleep(0.2)
    yield f"http://{gateway[0]}:{RELAY_PORT}"
    host.run("pkill -f /usr/local/bin/tcp_relay.py")


def test_nothing_that_passes_directly_fails_through_the_gateway(gateway, direct):
    alice = GatewayUser(*gateway, "alice", "alice-password")

    async def sign_in():
        async with alice.session(f"{EVERYTHING}/mcp") as session:
            await session.list_tools()
        return alice.storage.tokens.access_token

    token = anyio.run(sign_in)
    with forward.serve(forward.Forwarder(direct)) as url:
        direct_results = suite.run(f"{url}/mcp")
    through = forward.Forwarder(
        EVERYTHING, headers={"Authorization": f"Bearer {token}"}, transport=pinned_transport(*gateway)
    )
    with forward.serve(through) as url:
        gateway_results = suite.run(f"{url}/mcp")
        # Some scenarios wait a fixed time for a server's notification (resources-subscribe):
        # on a busy 2-core host one of them now and then misses it, directly or through the
        # gateway. What passed directly and failed through the gateway gets one more run
        # there; the retried scenarios are printed, and the second run decides.
        retried = [n for n, o in direct_results.items() if o.ok and not gateway_results.get(n, o).ok]
        if retried:
            again = suite.run(f"{url}/mcp")
            gateway_results.update({name: again[name] for name in retried if name in again})

    table = suite.side_by_side(direct_results, gateway_results, ("directly", "through the gateway"))
    print("\nThe official MCP conformance suite (server scenarios), server-everything:\n" + table)
    if retried:
        print(f"Run twice through the gateway (the second run counts): {', '.join(retried)}")
    (REPO / "build").mkdir(exist_ok=True)
    (REPO / "build" / "conformance.md").write_text(table + "\n")

    assert len(direct_results) >= 30, "the suite did not run its scenarios"
    assert sum(outcome.ok for outcome in direct_results.values()) >= 10
    worse = [
        name
        for name, outcome in direct_results.items()
        if outcome.ok and not gateway_results.get(name, outcome).ok
    ]
    missing = sorted(set(direct_results) - set(gateway_results))
    assert not missing, f"not run through the gateway: {missing}"
    assert not worse, f"pass directly, fail through the gateway: {worse}\n{table}"
