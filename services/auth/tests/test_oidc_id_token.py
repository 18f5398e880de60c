"""ID-token checks of the oidc login, with tokens this test signs (a MockTransport as the provider)."""

from __future__ import annotations

import time

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from mcp_gateway_auth.config import settings_from_dict
from mcp_gateway_auth.consent import Consent
from mcp_gateway_auth.provider import GatewayProvider
from mcp_gateway_auth.upstream import OidcLogin, UpstreamError

pytestmark = pytest.mark.anyio

IDP = "https://idp.example.com"
CLIENT_ID = "mcp-gateway"
NONCE = "n-0S6_WzA2Mj"


class FakeProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.fetches = {"discovery": 0, "jwks": 0}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/openid-configuration":
            self.fetches["discovery"] += 1
            return httpx2.Response(
                200,
                json={
                    "issuer": IDP,
                    "authorization_endpoint": f"{IDP}/auth",
                    "token_endpoint": f"{IDP}/token",
                    "jwks_uri": f"{IDP}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256", "none"],
                },
            )
        if request.url.path == "/jwks":
            self.fetches["jwks"] += 1
            return httpx2.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx2.Response(404)


@pytest.fixture
def idp() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def login(idp, tmp_path) -> OidcLogin:
    key_file = tmp_path / "key.pem"
    key_file.write_text("unused")
    settings = settings_from_dict(
        {
            "issuer": "https://auth.gateway.test",
            "resources": [{"host": "fetch.gateway.test"}],
            "signing_key_file": str(key_file),
            "redis_url": "redis://127.0.0.1:1/0",
            "identity_providers": ["oidc"],
            "oidc": {
                "discovery_url": IDP,
                "client_id": CLIENT_ID,
                "client_secret": "s3cret",
                "allowed_subjects": ["alice"],
            },
        }
    )
    provider = GatewayProvider(settings, store=None, key=None)  # type: ignore[arg-type]
    return OidcLogin(
        settings, provider, consent=Consent(settings, provider), transport=httpx2.MockTransport(idp)
    )


def claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": IDP,
        "sub": "alice",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        **overrides,
    }


def sign(key, alg="RS256", **overrides) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims(**overrides), key)


async def validate(login: OidcLogin, token: str) -> dict:
    async with login.http() as http:
        return await login.validate_id_token(http, token, NONCE)


async def test_a_good_id_token(login, idp):
    assert (await validate(login, sign(idp.key)))["sub"] == "alice"
    assert (await validate(login, sign(idp.key, aud=["other", CLIENT_ID], azp=CLIENT_ID)))["sub"] == "alice"


DROP = object()


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "another-client"},
        {"aud": ["another-client", CLIENT_ID]},  # several audiences and no azp
        {"exp": int(time.time()) - 600},
        {"exp": DROP},
        {"nonce": "replayed"},
        {"nonce": DROP},
        {"sub": DROP},
    ],
)
async def test_bad_claims_are_refused(login, idp, overrides):
    payload = {k: v for k, v in {**claims(), **overrides}.items() if v is not DROP}
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, payload, idp.key)
    with pytest.raises(UpstreamError) as error:
        await validate(login, token)
    assert error.value.status == 400


async def test_a_foreign_key_or_symmetric_algorithm_is_refused(login, idp):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(UpstreamError):
        await validate(login, sign(stranger))
    secret = OctKey.import_key("s3cret-s3cret-s3cret-s3cret-s3cret!")
    with pytest.raises(UpstreamError):
        await validate(
            login, jwt.encode({"alg": "HS256", "kid": "k1"}, claims(), secret, algorithms=["HS256"])
        )


async def test_the_jwks_is_cached_and_fetched_again_for_a_new_key(login, idp):
    await validate(login, sign(idp.key))
    await validate(login, sign(idp.key))
    assert idp.fetches == {"discovery": 1, "jwks": 1}
    # The provider rotates to a new key: its kid is unknown, so the JWKS is fetched again.
    idp.key = ECKey.generate_key("P-256", parameters={"kid": "k2", "use": "sig"})
    assert (await validate(login, sign(idp.key, alg="ES256")))["sub"] == "alice"
    assert idp.fetches["jwks"] == 2
