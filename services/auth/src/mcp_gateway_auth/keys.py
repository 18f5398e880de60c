"""Token signing keys: ES256 (P-256).

The first key is a PEM file the `auth` role creates once (`signing_key_file`). Rotation
(`mcp-gateway-auth keys rotate|retire|list`) adds keys in a directory (`signing_keys_dir`,
a Docker volume the role keeps): `<kid>.pem` files (0600) and `state.json`, which names the
active key, when it became active, and the retired keys. The active key signs; every key
that is not retired verifies and is published in the JWKS. The key file is never written:
once retired, it stays retired (the role keeps the file, the state keeps it out of use).

Every process of the service (the server's workers) keeps a KeyRing and looks at `state.json`
at most every CHECK_INTERVAL seconds (a stat), and at once when a token names a kid it does
not know: a rotation reaches every worker within seconds, without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .config import ConfigError

ALGORITHM = "ES256"
# Seconds between two looks at the key directory's state, per process.
CHECK_INTERVAL = 2.0
STATE_FILE = "state.json"


class KeyRotationError(Exception):
    """A rotation or retirement that cannot be done now; the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey
    kid: str
    public_jwk: dict[str, str]

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the signing key must be an EC P-256 private key (ES256)")
        numbers = key.public_key().public_numbers()
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638 thumbprint: the required members, sorted, no whitespace.
        kid = _b64(hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest())
        return cls(key, kid, {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"})

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        return cls.from_pem(path.read_bytes())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_pem(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "at+jwt"}
        )

    def decode(self, token: str, issuer: str) -> dict[str, Any]:
        """Verify signature, issuer and expiry; audience is checked by the caller."""
        return jwt.decode(
            token,
            self.private_key.public_key(),
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"], "verify_aud": False},
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk]}


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only, atomically (a rename in its directory)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    state: str  # active | accepted | retired
    since: int | None
    file: str


class KeyRing:
    """The active signing key and every key whose tokens are still accepted."""

    def __init__(
        self, key_file: Path | None, keys_dir: Path | None = None, check_interval: float | None = None
    ) -> None:
        self.key_file = key_file
        self.keys_dir = keys_dir
        self.check_interval = CHECK_INTERVAL if check_interval is None else check_interval
        self.keys: dict[str, SigningKey] = {}
        self.files: dict[str, Path] = {}
        self.state: dict[str, Any] = {}
        self.active: SigningKey
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        # Counts the reloads that took a key out: whoever caches verified tokens drops them.
        self.removals = 0
        self._load()

    @classmethod
    def of(cls, key: SigningKey) -> KeyRing:
        """A ring of one key, without files (tests, and the single-key case)."""
        ring = cls.__new__(cls)
        ring.key_file = ring.keys_dir = None
        ring.check_interval = CHECK_INTERVAL
        ring.keys, ring.files, ring.state = {key.kid: key}, {}, {}
        ring.active = key
        ring._stamp, ring._next_check, ring.removals = None, 0.0, 0
        return ring

    # -- loading ----------------------------------------------------------------------------------
    def _state_path(self) -> Path | None:
        return self.keys_dir / STATE_FILE if self.keys_dir else None

    def _read_stamp(self) -> tuple[int, int, int] | None:
        path = self._state_path()
        try:
            stat = path.stat() if path else None
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_ino, stat.st_size) if stat else None

    def _load(self) -> None:
        stamp = self._read_stamp()
        state: dict[str, Any] = {}
        if stamp is not None:
            state = json.loads(self._state_path().read_text())  # type: ignore[union-attr]
        retired = set(state.get("retired", []))
        keys: dict[str, SigningKey] = {}
        files: dict[str, Path] = {}
        candidates = [self.key_file] if self.key_file else []
        if self.keys_dir and self.keys_dir.is_dir():
            candidates += sorted(self.keys_dir.glob("*.pem"))
        for path in candidates:
            key = SigningKey.from_file(path)
            if key.kid not in retired and key.kid not in keys:
                keys[key.kid] = key
                files[key.kid] = path
        active_kid = state.get("active")
        if active_kid not in keys:
            # No rotation yet: the key file signs.
            active_kid = SigningKey.from_file(self.key_file).kid if self.key_file else None
        if active_kid not in keys:
            raise KeyRotationError("no signing key: the active key is missing or retired")
        self.keys, self.files, self.state = keys, files, state
        self.active = keys[active_kid]  # type: ignore[index]
        self._stamp = stamp

    def refresh(self, force: bool = False) -> bool:
        """Reload if the key directory's state changed (looked at every check_interval
        seconds, or now with `force`); True when a key left the ring (drop cached tokens)."""
        if self.keys_dir is None:
            return False
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.check_interval
        if self._read_stamp() == self._stamp:
            return False
        before = set(self.keys)
        self._load()
        if before - set(self.keys):
            self.removals += 1
            return True
        return False

    # -- signing and verifying --------------------------------------------------------------------
    @property
    def kid(self) -> str:
        return self.active.kid

    def sign(self, claims: dict[str, Any]) -> str:
        self.refresh()
        return self.active.sign(claims)

    def decode(self, token: str, issuer: str) -> dict[str, Any]:
        """Verify with the key the token's `kid` names (looking for new keys when unknown)."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.keys.get(kid)
        if key is None:
            self.refresh(force=True)
            key = self.keys.get(kid)
        if key is None:
            raise jwt.InvalidKeyError("unknown key")
        return key.decode(token, issuer)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key that verifies, the active one first."""
        self.refresh()
        others = [key.public_jwk for kid, key in self.keys.items() if kid != self.active.kid]
        return {"keys": [self.active.public_jwk, *others]}

    # -- the operator's commands ------------------------------------------------------------------
    def describe(self) -> list[KeyInfo]:
        since = self.state.get("activated_at")
        active = KeyInfo(self.active.kid, "active", since, str(self.files[self.active.kid]))
        others = [
            KeyInfo(kid, "accepted", None, str(self.files[kid]))
            for kid in self.keys
            if kid != self.active.kid
        ]
        return [active, *others]

    def _require_dir(self) -> Path:
        if self.keys_dir is None:
            raise ConfigError(
                "auth config: 'signing_keys_dir' is not set: key rotation needs a directory for the new keys"
            )
        if not self.keys_dir.is_dir():
            raise KeyRotationError(f"the key directory {self.keys_dir} does not exist")
        return self.keys_dir

    def _write_state(self, state: dict[str, Any]) -> None:
        _write_private(self._require_dir() / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())

    def rotate(self) -> tuple[SigningKey, list[str]]:
        """A new active key, written before the state that names it; the keys it replaces
        stay accepted until retire()."""
        keys_dir = self._require_dir()
        self.refresh(force=True)
        key = SigningKey.generate()
        _write_private(keys_dir / f"{key.kid}.pem", key.to_pem())
        self._write_state({**self.state, "active": key.kid, "activated_at": int(time.time())})
        self._load()
        return key, [kid for kid in self.keys if kid != key.kid]

    def retire_after(self, access_token_ttl: int) -> int:
        """When the keys beside the active one may be retired: once every token they signed
        has expired (a worker may sign with the old key until it sees the rotation)."""
        return int(self.state.get("activated_at", 0)) + access_token_ttl + int(CHECK_INTERVAL) + 1

    def retire(self, access_token_ttl: int, force: bool = False) -> list[str]:
        """Stop accepting every key but the active one; their files in the directory go."""
        self._require_dir()
        self.refresh(force=True)
        old = [kid for kid in self.keys if kid != self.active.kid]
        if not old:
            return []
        allowed = self.retire_after(access_token_ttl)
        if time.time() < allowed and not force:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(allowed))
            raise KeyRotationError(
                f"not yet: tokens signed by {', '.join(old)} may be valid until {when} (the longest "
                "access-token lifetime after the rotation); retire then, or now with --force (those "
                "tokens stop working at once)"
            )
        retired = sorted(set(self.state.get("retired", [])) | set(old))
        self._write_state({**self.state, "retired": retired})
        for kid in old:
            path = self.files[kid]
            if path != self.key_file:
                path.unlink(missing_ok=True)
        self._load()
        return old
