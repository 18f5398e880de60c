"""Fixtures: a real redis-server started for the session, the service on an in-process transport."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.config import Settings, settings_from_dict
from mcp_gateway_auth.keys import SigningKey

ISSUER = "https://auth.gateway.test"
FETCH = "fetch.gateway.test"
ECHO = "echo.gateway.test"
REDIRECT_URI = "http://127.0.0.1:33418/callback"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
HASHES = {name: _hasher.hash(password) for name, password in PASSWORDS.items()}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on a free loopback port, with a password, for the whole session."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: `make test` installs Debian's redis-server"
    port = _free_port()
    password = secrets.token_hex(16)
    workdir = tempfile.mkdtemp(prefix="auth-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--save",
            "",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("redis-server did not start")
    yield f"redis://:{password}@127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


def write_cli_config(path: Path, redis_url: str, key_file: Path, **extra) -> Path:
    """config.json for the real CLI (`mcp-gateway-auth serve` with AUTH_CONFIG): the issuer,
    the fetch resource, the signing key and Redis, plus `extra`."""
    config = {
        "issuer": ISSUER,
        "resources": [{"host": FETCH}],
        "signing_key_file": str(key_file),
        "redis_url": redis_url,
    }
    path.write_text(json.dumps(config | extra))
    return path


def make_settings(redis_url: str, key_file: Path, **overrides) -> Settings:
    data = {
        "issuer": ISSUER,
        "resources": [{"host": FETCH}, {"host": ECHO, "allowed_users": ["alice"]}],
        "signing_key_file": str(key_file),
        "redis_url": redis_url,
        "users": [
            {"username": "alice", "password_hash": HASHES["alice"], "name": "Alice A."},
            {"username": "bob", "password_hash": HASHES["bob"]},
        ],
        "login_max_failures": 3,
    }
    data.update(overrides)
    return settings_from_dict(data)


@pytest.fixture(scope="session")
def key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "signing-key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


@pytest.fixture
async def service(redis_server, key_file) -> AsyncIterator[GatewayAuth]:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    app = GatewayAuth(make_settings(redis_server, key_file), redis, SigningKey.from_file(key_file))
    yield app
    await redis.aclose()


@pytest.fixture
def mget_calls(service, monkeypatch) -> list[list[str]]:
    """The keys of every MGET the service sends from now on (/verify's revocation batches),
    one list per command, in order; clear it to count from a later point."""
    calls: list[list[str]] = []
    mget = service.redis.mget

    async def recording(keys, *args):
        calls.append([*keys, *args])
        return await mget(keys, *args)

    monkeypatch.setattr(service.redis, "mget", recording)
    return calls


@pytest.fixture
async def client(service) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=service, client=("203.0.113.7", 50000))
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class Flow:
    """Drives the OAuth flow of one client against the service, step by step."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http

    async def register(self, redirect_uris=(REDIRECT_URI,), **extra) -> dict:
        body = {
            "redirect_uris": list(redirect_uris),
            "client_name": "test client",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **extra,
        }
        response = await self.http.post("/register", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def authorize(self, client_id: str, challenge: str, resource=f"https://{FETCH}/mcp", **extra):
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "state-123",
            "resource": resource,
            **extra,
        }
        return await self.http.get("/authorize", params={k: v for k, v in params.items() if v is not None})

    async def login(
        self, login_url: str, username="alice", password=None, consent: str | None = "allow"
    ) -> httpx2.Response:
        """Sign in with the form; then, if the consent page comes, answer it with `consent`
        (None: return the redirect to it)."""
        page = await self.http.get(login_url)
        assert page.status_code == 200, page.text
        fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
        response = await self.http.post(
            "/login",
            data={**fields, "username": username, "password": password or PASSWORDS.get(username, "x")},
        )
        return await self.consent(response, consent) if consent else response

    async def consent(self, response: httpx2.Response, decision: str = "allow") -> httpx2.Response:
        """If a sign-in's answer leads to the consent page, open it and click `decision`
        (allow or deny), as a person would; any other answer is returned as it is."""
        location = response.headers.get("location", "")
        if response.status_code != 303 or not location.startswith(f"{ISSUER}/consent?"):
            return response
        page = await self.http.get(location)
        assert page.status_code == 200, page.text
        fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
        return await self.http.post("/consent", data={**fields, "decision": decision})

    async def code_for(self, username="alice", resource=f"https://{FETCH}/mcp") -> tuple[dict, str, str]:
        client = await self.register()
        verifier, challenge = pkce_pair()
        response = await self.authorize(client["client_id"], challenge, resource=resource)
        assert response.status_code == 302, response.text
        done = await self.login(response.headers["location"], username=username)
        assert done.status_code == 302, done.text
        query = parse_qs(urlparse(done.headers["location"]).query)
        return client, query["code"][0], verifier

    async def token(
        self,
        client_id: str,
        code: str,
        verifier: str,
        redirect_uri=REDIRECT_URI,
        resource=f"https://{FETCH}/mcp",
    ) -> httpx2.Response:
        return await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "resource": resource,
            },
        )

    async def tokens_for(self, username="alice", resource=f"https://{FETCH}/mcp") -> tuple[dict, dict]:
        client, code, verifier = await self.code_for(username, resource)
        response = await self.token(client["client_id"], code, verifier)
        assert response.status_code == 200, response.text
        return client, response.json()

    async def refresh(self, client_id: str, refresh_token: str) -> httpx2.Response:
        return await self.http.post(
            "/token",
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token},
        )

    async def verify(self, token: str | None, host: str = FETCH) -> httpx2.Response:
        headers = {"X-Forwarded-Host": host, "X-Forwarded-Proto": "https", "X-Forwarded-Uri": "/mcp"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.get("/verify", headers=headers)


@pytest.fixture
def flow(client) -> Flow:
    return Flow(client)
