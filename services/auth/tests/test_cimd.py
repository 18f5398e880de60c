"""Client ID Metadata Documents: the client's document is fetched over real HTTPS from a
server the test starts (a local CA from trustme), checked, cached, and used for the flow."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
import trustme
from redis.asyncio import Redis

from mcp_gateway_auth.app import GatewayAuth
from mcp_gateway_auth.cimd import ClientMetadataError, cache_seconds, check_client_id_url
from mcp_gateway_auth.config import ClientMetadataSettings, ConfigError
from mcp_gateway_auth.keys import SigningKey

from .conftest import ISSUER, REDIRECT_URI, Flow, make_settings, pkce_pair
from .test_sdk_client import sdk_flow

pytestmark = pytest.mark.anyio


class DocumentServer:
    """HTTPS on loopback; each path answers (status, headers, body) set by the test."""

    def __init__(self, ca: trustme.CA) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                status, headers, body = server.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def document(self, path: str, document: dict | None = None, status: int = 200, **headers: str) -> str:
        """Serve a client metadata document (by default a valid one for this URL); returns the URL."""
        url = self.base + path
        body = {
            "client_id": url,
            "client_name": "Example MCP Client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        if document is not None:
            body = document(url) if callable(document) else document
        headers = {"Content-Type": "application/json", "Cache-Control": "max-age=300", **headers}
        self.routes[path] = (status, headers, json.dumps(body).encode())
        return url


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def documents(ca) -> Iterator[DocumentServer]:
    server = DocumentServer(ca)
    yield server
    server.httpd.shutdown()


async def _service(redis_server: str, key_file: Path, **documents_settings) -> GatewayAuth:
    redis = Redis.from_url(redis_server)
    await redis.flushdb()
    settings = make_settings(redis_server, key_file, client_metadata_documents=documents_settings)
    return GatewayAuth(settings, redis, SigningKey.from_file(key_file))


@pytest.fixture
async def cimd_service(redis_server, key_file, ca_file) -> AsyncIterator[GatewayAuth]:
    """Private addresses allowed: the document server of the test is on loopback."""
    service = await _service(redis_server, key_file, allow_private_addresses=True, ca_file=str(ca_file))
    yield service
    await service.redis.aclose()


@pytest.fixture
async def cimd_flow(cimd_service) -> AsyncIterator[Flow]:
    transport = httpx2.ASGITransport(app=cimd_service, client=("203.0.113.7", 50000))
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Flow(http)


async def test_metadata_advertises_client_id_metadata_documents(cimd_flow):
    metadata = (await cimd_flow.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["client_id_metadata_document_supported"] is True


async def test_a_url_client_id_gets_a_code_and_a_token_without_registration(cimd_flow, documents):
    client_id = documents.document("/clients/app.json")
    verifier, challenge = pkce_pair()
    response = await cimd_flow.authorize(client_id, challenge)
    assert response.status_code == 302, response.text
    page = await cimd_flow.http.get(response.headers["location"])
    # The login page shows the host the document came from, not only the name it claims.
    assert "<strong>Example MCP Client</strong>" in page.text
    assert "its details are published at localhost" in page.text
    signed_in = await cimd_flow.login(response.headers["location"], consent=None)
    # So does the consent page that follows.
    consent = await cimd_flow.http.get(signed_in.headers["location"])
    assert "<strong>Example MCP Client</strong> asks to use an MCP server as you." in consent.text
    assert "its details are published at localhost" in consent.text
    done = await cimd_flow.consent(signed_in)
    assert done.status_code == 302, done.text
    code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
    token = await cimd_flow.token(client_id, code, verifier)
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    assert (await cimd_flow.verify(access)).status_code == 200
    refreshed = await cimd_flow.refresh(client_id, token.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    # Fetched once, then served from the cache for authorize, token and refresh.
    assert documents.hits["/clients/app.json"] == 1


async def test_the_document_is_cached_for_its_max_age_within_bounds(cimd_service, cimd_flow, documents):
    client_id = documents.document("/clients/cached.json", **{"Cache-Control": "public, max-age=120"})
    _, challenge = pkce_pair()
    assert (await cimd_flow.authorize(client_id, challenge)).status_code == 302
    keys = [key async for key in cimd_service.redis.scan_iter("mcpgw:cimd:*")]
    assert len(keys) == 1
    ttl = await cimd_service.redis.ttl(keys[0])
    assert 100 < ttl <= 120


async def test_a_redirect_uri_outside_the_document_is_refused(cimd_flow, documents):
    client_id = documents.document("/clients/app.json")
    _, challenge = pkce_pair()
    response = await cimd_flow.authorize(client_id, challenge, redirect_uri="http://127.0.0.1:9/elsewhere")
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_finding_6_an_error_for_a_redirect_uri_off_the_documents_host_is_our_page(cimd_flow, documents):
    """Issue 13, finding 6: the document names a redirect URI on another host; an error does
    not go there on its own (a URI on the document's own host would: trusted_redirect)."""
    elsewhere = "https://app.example.com/callback"
    client_id = documents.document(
        "/elsewhere.json",
        lambda url: {"client_id": url, "redirect_uris": [elsewhere], "client_name": "Elsewhere"},
    )
    response = await cimd_flow.authorize(client_id, pkce_pair()[1], redirect_uri=elsewhere, scope="admin")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "<code>invalid_scope</code>" in response.text


BAD_DOCUMENTS = {
    "client_id differs": lambda url: {"client_id": url + "x", "redirect_uris": [REDIRECT_URI]},
    "secret inside": lambda url: {"client_id": url, "redirect_uris": [REDIRECT_URI], "client_secret": "s"},
    "confidential": lambda url: {
        "client_id": url,
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_basic",
    },
    "no redirect uris": lambda url: {"client_id": url},
    "http redirect uri": lambda url: {"client_id": url, "redirect_uris": ["http://evil.example/cb"]},
    "implicit grant": lambda url: {
        "client_id": url,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["implicit"],
    },
    "not an object": lambda url: [url],
    "too many redirect uris": lambda url: {
        "client_id": url,
        "redirect_uris": [REDIRECT_URI, *(f"http://127.0.0.1:{8000 + index}/cb" for index in range(10))],
    },
    "client name too long": lambda url: {
        "client_id": url,
        "redirect_uris": [REDIRECT_URI],
        "client_name": "x" * 201,
    },
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
async def test_an_invalid_document_is_refused(cimd_flow, documents, case):
    client_id = documents.document(f"/bad/{case.replace(' ', '-')}.json", BAD_DOCUMENTS[case])
    _, challenge = pkce_pair()
    response = await cimd_flow.authorize(client_id, challenge)
    assert response.status_code == 400, response.text
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("path", "status", "headers"),
    [
        ("/http/redirect.json", 302, {"Location": "/http/target.json"}),
        ("/http/missing.json", 404, {}),
        ("/http/html.json", 200, {"Content-Type": "text/html"}),
    ],
)
async def test_only_a_200_json_answer_counts_and_redirects_are_not_followed(
    cimd_flow, documents, path, status, headers
):
    client_id = documents.document(path, status=status, **headers)
    documents.document("/http/target.json")
    _, challenge = pkce_pair()
    assert (await cimd_flow.authorize(client_id, challenge)).status_code == 400
    assert documents.hits[path] == 1
    assert "/http/target.json" not in documents.hits


async def test_a_document_larger_than_the_limit_is_refused(cimd_flow, documents):
    big = lambda url: {  # noqa: E731 -- a one-line document factory
        "client_id": url,
        "redirect_uris": [REDIRECT_URI],
        "client_name": "x" * 6000,
    }
    client_id = documents.document("/clients/big.json", big)
    _, challenge = pkce_pair()
    assert (await cimd_flow.authorize(client_id, challenge)).status_code == 400


async def test_private_addresses_are_refused_by_default(redis_server, key_file, ca_file, documents):
    service = await _service(redis_server, key_file, ca_file=str(ca_file))
    client_id = documents.document("/clients/private.json")
    transport = httpx2.ASGITransport(app=service)
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        _, challenge = pkce_pair()
        assert (await Flow(http).authorize(client_id, challenge)).status_code == 400
    assert documents.hits.get("/clients/private.json", 0) == 0
    await service.redis.aclose()


async def test_hosts_outside_the_allow_list_are_not_fetched(redis_server, key_file, ca_file, documents):
    service = await _service(
        redis_server,
        key_file,
        ca_file=str(ca_file),
        allow_private_addresses=True,
        allowed_hosts=["clients.example.com"],
    )
    client_id = documents.document("/clients/not-allowed.json")
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=service), base_url=ISSUER) as http:
        _, challenge = pkce_pair()
        assert (await Flow(http).authorize(client_id, challenge)).status_code == 400
    assert documents.hits.get("/clients/not-allowed.json", 0) == 0
    await service.redis.aclose()


async def test_disabled_documents_are_neither_advertised_nor_fetched(redis_server, key_file, documents):
    service = await _service(redis_server, key_file, enabled=False)
    client_id = documents.document("/clients/disabled.json")
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=service), base_url=ISSUER) as http:
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["client_id_metadata_document_supported"] is False
        _, challenge = pkce_pair()
        assert (await Flow(http).authorize(client_id, challenge)).status_code == 400
    assert documents.hits.get("/clients/disabled.json", 0) == 0
    await service.redis.aclose()


async def test_the_official_sdk_client_uses_its_metadata_url_instead_of_registering(cimd_service, documents):
    client_id = documents.document("/clients/sdk.json")
    storage, browser = await sdk_flow(cimd_service, client_metadata_url=client_id)
    assert storage.client is not None
    assert storage.client.client_id == client_id
    assert not [key async for key in cimd_service.redis.scan_iter("mcpgw:client:*")], "nothing registered"
    assert "its details are published at localhost" in browser.login_pages[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://clients.example.com/app.json",
        "https://clients.example.com",
        "https://clients.example.com/",
        "https://user:pw@clients.example.com/app.json",
        "https://clients.example.com/app.json#frag",
        "https://clients.example.com/a/../app.json",
        "https://clients.example.com/./app.json",
    ],
)
def test_client_id_url_rules(url):
    with pytest.raises(ClientMetadataError):
        check_client_id_url(url)


def test_a_good_client_id_url_names_its_host():
    assert check_client_id_url("https://Clients.Example.com:8443/oauth/app.json") == "clients.example.com"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 600),
        ("max-age=30", 60),
        ("public, max-age=3600", 3600),
        ("max-age=9999999", 86400),
        ("no-store", 60),
    ],
)
def test_cache_time_follows_max_age_within_bounds(header, seconds):
    assert cache_seconds(header, ClientMetadataSettings()) == seconds


def test_unknown_document_settings_are_config_errors(redis_server, key_file):
    with pytest.raises(ConfigError, match=r"client_metadata_documents\.allow_private"):
        make_settings(redis_server, key_file, client_metadata_documents={"allow_private": True})
