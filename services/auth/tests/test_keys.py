"""Signing-key rotation: `mcp-gateway-auth keys rotate` publishes a new key beside the old
one and signs with it; tokens of the old key stay valid until `keys retire`, which waits
for the longest access-token lifetime (or is forced). The single-file setup keeps working."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import jwt
import pytest
from redis.asyncio import Redis

from mcp_gateway_auth import keys
from mcp_gateway_auth.__main__ import main
from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.keys import KeyRing, SigningKey

from .conftest import FETCH, HASHES, ISSUER, Flow, make_settings

pytestmark = pytest.mark.anyio

# Short access tokens, so that a retirement may come soon after a rotation.
TTL = 2


@pytest.fixture(autouse=True)
def check_at_once(monkeypatch):
    """Workers (and so the wait before a retirement) look at the key directory at once."""
    monkeypatch.setattr(keys, "CHECK_INTERVAL", 0.0)


class Gateway:
    """A config file with a key directory, and services ("workers") reading it."""

    def __init__(self, redis_url: str, key_file: Path, keys_dir: Path, config: Path) -> None:
        self.redis_url = redis_url
        self.key_file = key_file
        self.keys_dir = keys_dir
        self.config = config
        self.redis = Redis.from_url(redis_url)
        self.clients: list[httpx2.AsyncClient] = []

    def worker(self, check_interval: float = 0.0) -> tuple[GatewayAuth, Flow]:
        settings = make_settings(
            self.redis_url, self.key_file, signing_keys_dir=str(self.keys_dir), access_token_ttl=TTL
        )
        ring = KeyRing(settings.signing_key_file, settings.signing_keys_dir, check_interval=check_interval)
        app = GatewayAuth(settings, self.redis, ring)
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("203.0.113.7", 1)), base_url=ISSUER
        )
        self.clients.append(http)
        return app, Flow(http)

    async def cli(self, capsys, *argv: str) -> tuple[int, str]:
        """The command as an operator runs it (in a thread: it runs its own event loop)."""
        capsys.readouterr()
        code = await anyio.to_thread.run_sync(main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err


@pytest.fixture
async def gateway(redis_server, tmp_path, monkeypatch) -> AsyncIterator[Gateway]:
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(SigningKey.generate().to_pem())
    keys_dir = tmp_path / "signing-keys"
    keys_dir.mkdir(mode=0o700)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "issuer": ISSUER,
                "resources": [{"host": FETCH}],
                "signing_key_file": str(key_file),
                "signing_keys_dir": str(keys_dir),
                "redis_url": redis_server,
                "users": [{"username": "alice", "password_hash": HASHES["alice"]}],
                "access_token_ttl": TTL,
            }
        )
    )
    monkeypatch.setenv("AUTH_CONFIG", str(config))
    gateway = Gateway(redis_server, key_file, keys_dir, config)
    await gateway.redis.flushdb()
    yield gateway
    for http in gateway.clients:
        await http.aclose()
    await gateway.redis.aclose()


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def jwks_kids(flow: Flow) -> list[str]:
    return [key["kid"] for key in (await flow.http.get("/.well-known/jwks.json")).json()["keys"]]


async def test_a_rotation_publishes_the_new_key_and_signs_with_it(gateway, capsys):
    app, flow = gateway.worker()
    old_kid = app.key.kid
    _, old = await flow.tokens_for()
    assert kid_of(old["access_token"]) == old_kid
    code, out = await gateway.cli(capsys, "keys", "rotate")
    assert code == 0, out
    assert f"retired later: {old_kid}" in out
    new_kid = next(line.split()[-1] for line in out.splitlines() if line.startswith("signing with"))
    assert new_kid != old_kid
    # Both keys published (the new one first), new tokens signed with the new key ...
    assert await jwks_kids(flow) == [new_kid, old_kid]
    _, new = await flow.tokens_for()
    assert kid_of(new["access_token"]) == new_kid
    # ... and tokens of the old key still valid.
    assert (await flow.verify(old["access_token"])).status_code == 200
    assert (await flow.verify(new["access_token"])).status_code == 200
    # On disk: one new private key file, owner-only.
    (pem,) = gateway.keys_dir.glob("*.pem")
    assert pem.name == f"{new_kid}.pem"
    assert pem.stat().st_mode & 0o777 == 0o600


async def test_retiring_too_early_is_refused_and_changes_nothing(gateway, capsys):
    _app, flow = gateway.worker()
    _, old = await flow.tokens_for()
    await gateway.cli(capsys, "keys", "rotate")
    code, out = await gateway.cli(capsys, "keys", "retire")
    assert code == 1
    assert "not yet" in out
    assert "--force" in out
    assert len(await jwks_kids(flow)) == 2
    assert (await flow.verify(old["access_token"])).status_code == 200


async def test_retiring_after_the_longest_token_lifetime_removes_the_old_key(gateway, capsys):
    app, flow = gateway.worker()
    old_kid = app.key.kid
    _, _old = await flow.tokens_for()
    await gateway.cli(capsys, "keys", "rotate")
    await anyio.sleep(TTL + 1.1)  # the longest access-token lifetime, counted in whole seconds
    code, out = await gateway.cli(capsys, "keys", "retire")
    assert code == 0, out
    assert f"retired {old_kid}" in out
    assert old_kid not in await jwks_kids(flow)
    _, new = await flow.tokens_for()
    assert (await flow.verify(new["access_token"])).status_code == 200


async def test_a_forced_retirement_rejects_the_old_keys_tokens_at_once(gateway, capsys):
    """An emergency (a leaked key): forced, and tokens /verify already cached fail too."""
    _app, flow = gateway.worker()
    _, old = await flow.tokens_for()
    assert (await flow.verify(old["access_token"])).status_code == 200  # now in the cache
    await gateway.cli(capsys, "keys", "rotate")
    code, out = await gateway.cli(capsys, "keys", "retire", "--force")
    assert code == 0, out
    refused = await flow.verify(old["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    _, new = await flow.tokens_for()
    assert (await flow.verify(new["access_token"])).status_code == 200


async def test_another_worker_accepts_the_new_keys_tokens_before_it_looked(gateway, capsys):
    """Workers check the key directory every few seconds, and at once for a kid they do not
    know: a token signed by a worker that saw the rotation passes everywhere."""
    _, signer = gateway.worker()
    _, checker = gateway.worker(check_interval=3600)
    await checker.verify("warm-up")
    await gateway.cli(capsys, "keys", "rotate")
    _, tokens = await signer.tokens_for()
    assert (await checker.verify(tokens["access_token"])).status_code == 200


async def test_a_rotation_survives_a_restart(gateway, capsys):
    app, _ = gateway.worker()
    old_kid = app.key.kid
    await gateway.cli(capsys, "keys", "rotate")
    await gateway.cli(capsys, "keys", "retire", "--force")
    # The single key file is still there (the auth role keeps it), but stays retired.
    assert gateway.key_file.exists()
    restarted, flow = gateway.worker()
    assert restarted.key.kid != old_kid
    assert await jwks_kids(flow) == [restarted.key.kid]


async def test_keys_list_shows_each_key_and_its_state(gateway, capsys):
    app, _ = gateway.worker()
    old_kid = app.key.kid
    await gateway.cli(capsys, "keys", "rotate")
    code, out = await gateway.cli(capsys, "keys", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KID", "STATE", "SINCE", "FILE"]
    assert any(line.startswith(old_kid) and "accepted" in line for line in lines)
    code, out = await gateway.cli(capsys, "keys", "list", "--json")
    keys = json.loads(out)
    assert [key["state"] for key in keys] == ["active", "accepted"]
    assert keys[1]["kid"] == old_kid


async def test_without_a_key_directory_rotation_says_what_to_set(
    redis_server, key_file, tmp_path, capsys, monkeypatch
):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "issuer": ISSUER,
                "resources": [{"host": FETCH}],
                "signing_key_file": str(key_file),
                "redis_url": redis_server,
            }
        )
    )
    monkeypatch.setenv("AUTH_CONFIG", str(config))
    code = await anyio.to_thread.run_sync(main, ["keys", "rotate"])
    assert code == 2
    assert "'signing_keys_dir'" in capsys.readouterr().err


def test_the_single_file_setup_keeps_working(key_file):
    ring = KeyRing(key_file, None)
    assert [key["kid"] for key in ring.jwks()["keys"]] == [ring.kid]
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "a", "aud": "x", "jti": "j", "iat": now, "exp": now + 60}
    assert ring.decode(ring.sign(claims), ISSUER)["sub"] == "a"
    assert ring.refresh() is False
