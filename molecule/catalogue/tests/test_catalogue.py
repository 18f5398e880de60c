"""The catalogue's package entries on the test host: server-everything (npm) and
mcp-server-time (PyPI), built into images by the mcp_services role without a Dockerfile,
reached through the gateway by the official MCP Python SDK client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
from mcp import types

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.e2e.gateway_client import GatewayUser, tool_json

DOMAIN = "gateway.test"
EVERYTHING = f"https://everything.{DOMAIN}/mcp"
TIME = f"https://time.{DOMAIN}/mcp"


def docker_json(host, *args: str):
    cmd = host.run("docker " + " ".join(args))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def test_package_entries_run_images_the_role_built(host):
    for name, replicas in (("everything", 2), ("time", 1)):
        project = f"label=com.docker.compose.project=mcp-{name}"
        listing = host.run(f"docker ps --filter {project} --format '{{{{.Image}}}} {{{{.Status}}}}'")
        containers = [line for line in listing.stdout.split("\n") if line]
        assert len(containers) == replicas, containers
        for line in containers:
            image, status = line.split(" ", 1)
            assert image.startswith(f"mcp-package/{name}:"), image
            assert status.startswith("Up"), status


def test_a_stateful_server_with_replicas_gets_hrw_routing(host):
    labels = docker_json(host, "inspect", "mcp-everything-server-1")[0]["Config"]["Labels"]
    assert labels["traefik.http.services.everything.loadbalancer.strategy"] == "hrw"
    assert not any(".sticky." in key for key in labels)


def test_secrets_reach_the_server_but_not_the_container_definition(host):
    config = docker_json(host, "inspect", "mcp-time-server-1")[0]["Config"]
    assert not any("catalogue-test-secret-value" in variable for variable in config["Env"])
    assert "TZ=Europe/Paris" in config["Env"]
    secrets = host.file("/opt/mcp-gateway/mcp/time/secrets.env")
    assert secrets.mode == 0o400
    assert secrets.uid == 10100
    # The bridge (PID 1, after the entry point exported the file) passes it to the server.
    environ = host.run("docker exec mcp-time-server-1 cat /proc/1/environ").stdout.split("\0")
    assert "CATALOGUE_TEST_SECRET=catalogue-test-secret-value" in environ


def test_sdk_client_lists_and_calls_a_tool_of_server_everything(gateway):
    alice = GatewayUser(*gateway, "alice", "alice-password")

    async def go():
        async with alice.session(EVERYTHING) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            echoed = await session.call_tool("echo", {"message": "through the gateway"})
            return tools, echoed

    tools, echoed = anyio.run(go)
    assert {"echo", "get-sum", "trigger-long-running-operation"} <= tools
    assert not echoed.is_error
    assert "through the gateway" in echoed.content[0].text


def test_sdk_client_lists_and_calls_a_tool_of_the_pypi_server(gateway):
    alice = GatewayUser(*gateway, "alice", "alice-password")

    async def go():
        async with alice.session(TIME) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            now = await session.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
            return tools, now

    tools, now = anyio.run(go)
    assert {"get_current_time", "convert_time"} <= tools
    assert not now.is_error, now.content[0].text
    assert tool_json(now)["timezone"] == "Asia/Tokyo"


def test_server_to_client_requests_and_progress_reach_the_client_through_the_gateway(gateway):
    """What the conformance suite cannot check on server-everything (its scenarios call tools of
    its own test server): sampling and elicitation requests from the server, answered by the
    client, and progress notifications, each on a call's SSE stream through the gateway."""
    alice = GatewayUser(*gateway, "alice", "alice-password")
    asked, steps = [], []

    async def sampling(context, params):
        asked.append("sampling")
        content = types.TextContent(type="text", text="sampled by the client")
        return types.CreateMessageResult(role="assistant", content=content, model="test-model")

    async def elicitation(context, params):
        asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"name": "Alice Example", "check": True})

    async def on_progress(progress, total, message):
        steps.append((progress, total))

    async def go():
        options = {"sampling_callback": sampling, "elicitation_callback": elicitation}
        async with alice.session(EVERYTHING, **options) as session:
            sampled = await session.call_tool("trigger-sampling-request", {"prompt": "ping"})
            elicited = await session.call_tool("trigger-elicitation-request", {})
            arguments = {"duration": 1, "steps": 4}
            progress = await session.call_tool(
                "trigger-long-running-operation", arguments, progress_callback=on_progress
            )
            return sampled, elicited, progress

    sampled, elicited, progress = anyio.run(go)
    assert asked == ["sampling", "elicitation"]
    assert "sampled by the client" in sampled.content[0].text
    assert "- Name: Alice Example" in elicited.content[1].text
    assert "Long running operation completed" in progress.content[0].text
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
