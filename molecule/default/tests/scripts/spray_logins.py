"""Failed sign-ins with random user names, from one address, as a password sprayer sends them.

Runs inside a throwaway container on the gateway's public network (the Python standard
library only): starts one authorization request, then posts the login form `count` times.
Prints {"address": <this container's address>, "statuses": [...], "retry_after": ...}.
"""

import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

AUTH = "https://auth.gateway.test"
REDIRECT = "http://127.0.0.1:9/callback"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile="/ca.pem")),
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    NoRedirect,
)


def call(url, data=None, content_type=None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data else {})
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


count = int(sys.argv[1])
_, _, body = call(
    AUTH + "/register",
    json.dumps(
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "spray"}
    ).encode(),
    "application/json",
)
client_id = json.loads(body)["client_id"]
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
query = urllib.parse.urlencode(
    {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "spray",
        "resource": "https://echo.gateway.test/mcp",
    }
)
status, headers, body = call(AUTH + "/authorize?" + query)
assert status == 302, (status, body)
_, _, page = call(urllib.parse.urljoin(AUTH, headers["Location"]))
fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page))
statuses, retry_after = [], None
for _ in range(count):
    form = {**fields, "username": "u" + secrets.token_hex(4), "password": "wrong"}
    status, headers, _ = call(
        AUTH + "/login", urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    )
    statuses.append(status)
    retry_after = headers.get("Retry-After") or retry_after
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((socket.gethostbyname("auth.gateway.test"), 443))
print(json.dumps({"address": probe.getsockname()[0], "statuses": statuses, "retry_after": retry_after}))
