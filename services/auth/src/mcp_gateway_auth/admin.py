"""The operator's view: `mcp-gateway-auth clients|grants|consents|keys ...`.

The commands read the service's own configuration file and talk to the same Redis (and,
for keys, the same key directory) as the running service, so on a gateway host they run
inside its container: `docker exec auth-auth-1 mcp-gateway-auth grants list` (or through
playbooks/auth-admin.yml). Output is a table, or JSON with --json (for scripts). Exit
codes: 0 done, 1 refused or not found (the message says why), 2 a configuration or usage
problem.

    clients list                      registered clients and cached metadata-document clients
    clients show <client_id>          one client (never its secret or token)
    clients revoke <client_id>        delete it (RFC 7592's DELETE) and revoke all its grants
    grants list [--user U] [--client C]
    grants revoke --user U | --client C | --before <ISO time|now>
    consents list [--user U] [--client C]
    consents revoke --user U | --client C [--resource R]
    keys list | rotate | retire [--force]

Revocations take effect at once: /verify reads them in its one Redis command per request.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from .config import ConfigError, Settings, load_settings
from .keys import KeyRing, KeyRotationError
from .pages import redirect_target
from .store import PREFIX, Store


class Refused(Exception):
    """The command cannot be done (exit 1); the message says why."""


@dataclass
class Output:
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    # For one record (clients show): key: value lines.
    record: dict[str, Any] | None = None
    # What was done (revoke, rotate, retire), for people; `result` for --json.
    message: str = ""
    result: dict[str, Any] | None = None


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> int:
    """An ISO 8601 time (a date is its midnight; no zone is UTC) or `now`, as epoch seconds."""
    if value == "now":
        return int(dt.datetime.now(dt.UTC).timestamp())
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {value!r} (e.g. 2026-11-27T12:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    header = [column.upper() for column in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


def render(output: Output, as_json: bool) -> str:
    if as_json:
        if output.result is not None:
            return json.dumps(output.result, indent=2)
        if output.record is not None:
            return json.dumps(output.record, indent=2)
        return json.dumps(output.rows, indent=2)
    if output.message:
        return output.message
    if output.record is not None:
        width = max(len(key) for key in output.record)
        return "\n".join(f"{key.ljust(width)}  {_cell(value)}" for key, value in output.record.items())
    if not output.rows:
        return "(none)"
    return table(output.rows, output.columns)


# -- clients -------------------------------------------------------------------------------------
def _redirect_hosts(record: dict[str, Any]) -> list[str]:
    return sorted({redirect_target(uri).source for uri in record.get("redirect_uris", [])})


async def _records(store: Store, pattern: str) -> list[tuple[dict[str, Any], int]]:
    keys = [key async for key in store.redis.scan_iter(match=PREFIX + pattern, count=500)]
    if not keys:
        return []
    async with store.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        answers = await pipe.execute()
    return [
        (json.loads(value), ttl) for value, ttl in zip(answers[0::2], answers[1::2], strict=True) if value
    ]


async def clients_list(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    now = dt.datetime.now(dt.UTC).timestamp()
    rows = []
    for record, ttl in await _records(store, "client:*"):
        rows.append(
            {
                "client_id": record["client_id"],
                "name": record.get("client_name"),
                "kind": "registered",
                "auth": record.get("token_endpoint_auth_method"),
                "redirects": _redirect_hosts(record),
                "registered": iso(record.get("client_id_issued_at")),
                "expires": iso(now + ttl) if ttl > 0 else None,
            }
        )
    for record, ttl in await _records(store, "cimd:*"):
        rows.append(
            {
                "client_id": record["client_id"],
                "name": record.get("client_name"),
                "kind": "metadata document",
                "auth": "none",
                "redirects": _redirect_hosts(record),
                "registered": None,
                "expires": iso(now + ttl) if ttl > 0 else None,
            }
        )
    rows.sort(key=lambda row: (row["kind"], row["registered"] or "", row["client_id"]))
    return Output(rows, ("client_id", "name", "kind", "auth", "redirects", "registered", "expires"))


async def _active_grants(store: Store) -> list[dict[str, Any]]:
    grants = await store.list_grants()
    revoked = await store.grants_revoked(grants)
    return [grant for grant, gone in zip(grants, revoked, strict=True) if not gone]


async def clients_show(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    client_id = args.client_id
    record = None if client_id.startswith("https://") else await store.get_client(client_id)
    kind = "registered"
    if record is None:
        record, kind = await store.get_client_document(client_id), "metadata document"
    if record is None:
        raise Refused(f"no client {client_id!r} (unknown, deleted, or expired)")
    ttl = await store.redis.ttl(f"{PREFIX}client:{client_id}") if kind == "registered" else -1
    grants = [grant for grant in await _active_grants(store) if grant["client_id"] == client_id]
    approvals = await store.list_approvals(client_id=client_id)
    shown = {
        "client_id": client_id,
        "kind": kind,
        "client_name": record.get("client_name"),
        "redirect_uris": record.get("redirect_uris", []),
        "token_endpoint_auth_method": record.get("token_endpoint_auth_method"),
        "client_secret": "(set)" if record.get("client_secret") else None,
        "grant_types": record.get("grant_types", []),
        "scope": record.get("scope"),
        "registered": iso(record.get("client_id_issued_at")),
        "expires": iso(dt.datetime.now(dt.UTC).timestamp() + ttl) if ttl > 0 else None,
        "grants": len(grants),
        "users": sorted({grant["subject"] for grant in grants}),
        "consents": len(approvals),
    }
    for name in ("client_uri", "software_id", "software_version", "contacts"):
        if record.get(name):
            shown[name] = record[name]
    return Output(record=shown)


async def clients_revoke(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    client_id = args.client_id
    registered = not client_id.startswith("https://") and await store.get_client(client_id) is not None
    document = (
        await store.get_client_document(client_id) is not None if client_id.startswith("https://") else False
    )
    grants = [grant for grant in await _active_grants(store) if grant["client_id"] == client_id]
    if not (registered or document or grants):
        raise Refused(f"no client {client_id!r} (unknown, deleted, or expired) and no grants of it")
    if registered:
        await store.delete_client(client_id)
    if document:
        # Fetched afresh (and checked again) if it comes back.
        await store.delete_client_document(client_id)
    await store.revoke_client(client_id)
    consents = await store.delete_approvals(client_id=client_id)
    done = "deleted" if registered else "revoked"
    return Output(
        message=f"{done} client {client_id}: {len(grants)} grant(s) revoked, {consents} consent(s) withdrawn",
        result={
            "client_id": client_id,
            "deleted": registered,
            "grants_revoked": len(grants),
            "consents_withdrawn": consents,
        },
    )


# -- grants --------------------------------------------------------------------------------------
GRANT_COLUMNS = ("user", "name", "client_id", "resource", "scopes", "signed_in", "last_used", "expires")


async def grants_list(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    rows = []
    for grant in await _active_grants(store):
        if args.user is not None and grant["subject"] != args.user:
            continue
        if args.client is not None and grant["client_id"] != args.client:
            continue
        rows.append(
            {
                "user": grant["subject"],
                "name": grant.get("name"),
                "client_id": grant["client_id"],
                "resource": grant["resource"],
                "scopes": grant.get("scopes", []),
                "signed_in": iso(grant.get("auth_time")),
                "last_used": iso(grant.get("last_used")),
                "expires": iso(grant.get("expires_at")),
                "grant": grant["family"],
            }
        )
    rows.sort(key=lambda row: (row["user"], row["signed_in"] or ""))
    return Output(rows, GRANT_COLUMNS)


async def grants_revoke(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    grants = await _active_grants(store)
    if args.user is not None:
        affected = [grant for grant in grants if grant["subject"] == args.user]
        await store.revoke_user(args.user)
        what = f"every grant of user {args.user}"
    elif args.client is not None:
        affected = [grant for grant in grants if grant["client_id"] == args.client]
        await store.revoke_client(args.client)
        what = f"every grant of client {args.client}"
    else:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        if args.before > now:
            raise Refused("--before must not be in the future (use --before now for every grant)")
        affected = [grant for grant in grants if grant.get("auth_time", 0) <= args.before]
        await store.revoke_before(args.before)
        what = f"every grant signed in at or before {iso(args.before)}"
    return Output(
        message=f"revoked {what}: {len(affected)} active grant(s) ended",
        result={"revoked": what, "grants_revoked": len(affected)},
    )


# -- consents ------------------------------------------------------------------------------------
async def consents_list(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    rows = []
    for approval in await store.list_approvals(args.user, args.client):
        rows.append(
            {
                "user": approval["subject"],
                "name": approval.get("name"),
                "client_id": approval["client_id"],
                "client_name": approval.get("client_name"),
                "resource": approval["resource"],
                "redirect_uri": approval.get("redirect_uri"),
                "approved": iso(approval.get("approved_at")),
                "expires": iso(approval.get("approved_at", 0) + settings.consent_ttl),
            }
        )
    rows.sort(key=lambda row: (row["user"], row["approved"] or ""))
    return Output(rows, ("user", "client_id", "client_name", "resource", "approved", "expires"))


async def consents_revoke(store: Store, settings: Settings, args: argparse.Namespace) -> Output:
    count = await store.delete_approvals(args.user, args.client, args.resource)
    who = ", ".join(
        f"{name} {value}"
        for name, value in (("user", args.user), ("client", args.client), ("resource", args.resource))
        if value
    )
    return Output(
        message=f"withdrew {count} consent(s) of {who}: the consent page asks again next time "
        "(existing grants go on: `grants revoke` ends them)",
        result={"consents_withdrawn": count},
    )


# -- keys ----------------------------------------------------------------------------------------
def _ring(settings: Settings) -> KeyRing:
    return KeyRing(settings.signing_key_file, settings.signing_keys_dir)


def keys_list(settings: Settings, args: argparse.Namespace) -> Output:
    rows = [{**asdict(info), "since": iso(info.since)} for info in _ring(settings).describe()]
    return Output(rows, ("kid", "state", "since", "file"))


def keys_rotate(settings: Settings, args: argparse.Namespace) -> Output:
    ring = _ring(settings)
    key, old = ring.rotate()
    after = iso(ring.retire_after(settings.access_token_ttl))
    message = f"signing with {key.kid}"
    if old:
        message += f"\nretired later: {', '.join(old)} (their tokens stay valid; `keys retire` from {after})"
    return Output(message=message, result={"active": key.kid, "accepted": old, "retire_after": after})


def keys_retire(settings: Settings, args: argparse.Namespace) -> Output:
    retired = _ring(settings).retire(settings.access_token_ttl, force=args.force)
    message = (
        "\n".join(f"retired {kid}" for kid in retired) or "nothing to retire: only the active key is in use"
    )
    return Output(message=message, result={"retired": retired})


# -- the command line ----------------------------------------------------------------------------
Handler = Callable[[Store, Settings, argparse.Namespace], Awaitable[Output]]
REDIS_COMMANDS: dict[tuple[str, str], Handler] = {
    ("clients", "list"): clients_list,
    ("clients", "show"): clients_show,
    ("clients", "revoke"): clients_revoke,
    ("grants", "list"): grants_list,
    ("grants", "revoke"): grants_revoke,
    ("consents", "list"): consents_list,
    ("consents", "revoke"): consents_revoke,
}
KEY_COMMANDS: dict[tuple[str, str], Callable[[Settings, argparse.Namespace], Output]] = {
    ("keys", "list"): keys_list,
    ("keys", "rotate"): keys_rotate,
    ("keys", "retire"): keys_retire,
}
GROUPS = ("clients", "grants", "consents", "keys")


def add_commands(sub: Any) -> None:
    """The operator's subcommands, on the main parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON output, for scripts")

    clients = sub.add_parser("clients", help="registered and metadata-document clients").add_subparsers(
        dest="action", required=True
    )
    clients.add_parser("list", parents=[common], help="every client")
    for action, text in (("show", "one client"), ("revoke", "delete a client and revoke its grants")):
        clients.add_parser(action, parents=[common], help=text).add_argument("client_id")

    grants = sub.add_parser("grants", help="who signed in where (token families)").add_subparsers(
        dest="action", required=True
    )
    listing = grants.add_parser("list", parents=[common], help="active grants")
    listing.add_argument("--user", help="one user id")
    listing.add_argument("--client", help="one client id")
    revoke = grants.add_parser("revoke", parents=[common], help="end grants (their tokens stop at once)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="every grant of this user id, in every client")
    which.add_argument("--client", help="every grant of this client id")
    which.add_argument(
        "--before", type=parse_time, help="every grant signed in at or before this time (ISO 8601, or now)"
    )

    consents = sub.add_parser("consents", help="remembered answers of the consent page").add_subparsers(
        dest="action", required=True
    )
    listing = consents.add_parser("list", parents=[common], help="remembered approvals")
    listing.add_argument("--user")
    listing.add_argument("--client")
    revoke = consents.add_parser(
        "revoke", parents=[common], help="withdraw approvals (asked again next time)"
    )
    revoke.add_argument("--user")
    revoke.add_argument("--client")
    revoke.add_argument("--resource", help="one MCP server's resource URL")

    keys = sub.add_parser("keys", help="token signing keys").add_subparsers(dest="action", required=True)
    keys.add_parser("list", parents=[common], help="the keys and their state")
    keys.add_parser("rotate", parents=[common], help="a new signing key; the old one stays accepted")
    retire = keys.add_parser("retire", parents=[common], help="stop accepting the keys before the active one")
    retire.add_argument(
        "--force", action="store_true", help="even before their tokens expired (they stop working at once)"
    )


def run(args: argparse.Namespace) -> int:
    command = (args.command, args.action)
    if command == ("consents", "revoke") and not (args.user or args.client):
        print("mcp-gateway-auth: consents revoke needs --user or --client", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if command in KEY_COMMANDS:
            output = KEY_COMMANDS[command](settings, args)
        else:
            output = asyncio.run(_run_redis(REDIS_COMMANDS[command], settings, args))
    except ConfigError as error:
        print(f"mcp-gateway-auth: {error}", file=sys.stderr)
        return 2
    except (Refused, KeyRotationError) as error:
        print(f"mcp-gateway-auth: {error}", file=sys.stderr)
        return 1
    print(render(output, args.json))
    return 0


async def _run_redis(handler: Handler, settings: Settings, args: argparse.Namespace) -> Output:
    redis = Redis.from_url(
        settings.redis_url, password=settings.redis_password, socket_timeout=10, socket_connect_timeout=5
    )
    try:
        store = Store(redis, refresh_ttl=settings.refresh_token_ttl, access_ttl=settings.access_token_ttl)
        return await handler(store, settings, args)
    finally:
        await redis.aclose()
