"""The administration commands of the ``nestml-registry`` CLI (registered by :mod:`nestml_registry.cli.main`):
``token create|list|revoke`` and ``owner set`` work on the database directly (whoever can reach it
administers the registry); ``token list|revoke --server URL`` and ``audit`` ask a server (an admin token)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

from nestml_registry.cli import console
from nestml_registry.cli.command_line import EXIT_OK, UsageError, print_json, registry_client, remote_options
from nestml_registry.service.settings import Settings

ROLES = ("reader", "publisher", "admin", "worker")  # registry.tables.ROLES, without importing SQLAlchemy at start-up


def add_parsers(sub: Any) -> None:
    tk = sub.add_parser("token", help="API tokens (works on the database directly)")
    tk_sub = tk.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tc = tk_sub.add_parser("create", help="create a token and print it (it is shown only once)")
    tc.add_argument("--role", required=True, choices=ROLES,
                    help="reader: read and download; publisher: also push; admin: everything; worker: an HTTP compile "
                         "worker (worker --server URL), nothing else")
    tc.add_argument("--name", help="the principal: who uses the token, and so who owns the model names it "
                                   "publishes (default: user@host)")
    tc.add_argument("--toolchain", action="append", default=[], metavar="ID",
                    help="with --role worker: a toolchain the worker may serve (repeat for more; approves it)")
    tc.add_argument("--json", action="store_true", help='print {"id", "name", "role", "token"} as JSON')
    tc.set_defaults(func=cmd_token_create)
    tl = tk_sub.add_parser("list", help="the tokens: id, name, role, created, revoked (never the secrets)")
    tl.add_argument("--json", action="store_true", help="print a JSON list")
    tl.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                    help="ask this registry (GET /v1/tokens, an admin token) instead of the database")
    tl.set_defaults(func=cmd_token_list)
    tr = tk_sub.add_parser("revoke", help="revoke a token at once (requests with it get 401)")
    tr.add_argument("id", type=int, help="the token's id (see token list)")
    tr.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                    help="ask this registry (DELETE /v1/tokens/ID: an admin token, or the token itself)")
    tr.set_defaults(func=cmd_token_revoke)

    ow = sub.add_parser("owner", help="who may publish new versions of a model name (on the database directly)")
    ow_sub = ow.add_subparsers(dest="owner_command", required=True, metavar="ACTION")
    os_ = ow_sub.add_parser("set", help="give a model name to another principal (a token's name, or 'local')")
    os_.add_argument("name", help="the model name as NEST registers it, e.g. my_neuron_nestml")
    os_.add_argument("user", help="the new owner")
    os_.set_defaults(func=cmd_owner_set)

    tcs = sub.add_parser("toolchain", help="toolchains reported by workers (on the database directly)")
    tcs_sub = tcs.add_subparsers(dest="toolchain_command", required=True, metavar="ACTION")
    ta = tcs_sub.add_parser("approve", help="let builds be queued for a toolchain an HTTP worker reported, and let "
                                            "worker tokens serve it")
    ta.add_argument("id", help="the toolchain's id (GET /v1/toolchains, the /toolchains page, or the worker's error)")
    ta.add_argument("--token", type=int, action="append", default=[], metavar="TOKEN_ID",
                    help="a worker token (its id, see token list) that may serve it; repeat for more")
    ta.set_defaults(func=cmd_toolchain_approve)

    au = sub.add_parser("audit", help="the audit log: who published, rebuilt, made tokens... (admin token)")
    au.add_argument("--limit", type=int, default=50, help="at most this many events, newest first (default 50)")
    au.add_argument("--action", help="only events of this action (publish, rebuild, token_create, ...)")
    remote_options(au, "print the events as a JSON list")
    au.set_defaults(func=cmd_audit)


def _actor() -> str:
    """Who runs an administration command: the operating system's user on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator[Any]:
    from nestml_registry.registry.db import make_engine, make_sessionmaker, prepare

    prepare(settings.database_url, settings.home)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as s:
            yield s
    finally:
        engine.dispose()


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.records import record_event
    from nestml_registry.registry.tables import KnownToolchain
    from nestml_registry.registry.tokens import create_token
    from nestml_registry.registry.toolchains import check_id

    name = args.name or _actor()
    if args.toolchain and args.role != "worker":
        raise UsageError("--toolchain is for worker tokens: add --role worker, or leave --toolchain out")
    allowed = sorted({check_id(t) for t in args.toolchain})
    with _session(settings) as s:
        token, secret = create_token(s, name, args.role)
        token.toolchains = allowed or None
        for known in allowed:  # one an HTTP worker reported already is approved by naming it here
            row = s.get(KnownToolchain, known)
            if row is not None and not row.approved:
                row.approved = True
                _revalidate(s, settings, known)
        token_id = token.id
        record_event(s, _actor(), "token_create", name, {"token": token_id, "role": args.role, "toolchains": allowed})
    if args.json:
        print(json.dumps({"id": token_id, "name": name, "role": args.role, "token": secret}))
    else:
        print(f"created {args.role} token {token_id} for {name!r}; it is shown only now (set it as "
              "NESTML_REGISTRY_TOKEN):")
        print(secret)
    return EXIT_OK


def cmd_toolchain_approve(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry import revalidation
    from nestml_registry.registry.toolchains import approve

    with _session(settings) as s:
        new = revalidation.fresh(s, args.id)
        row = approve(s, args.id, _actor(), args.token)
        toolchain_id = row.id
        queued = _revalidate(s, settings, toolchain_id) if new else 0
    tokens = f"; worker token{'s' if len(args.token) > 1 else ''} {', '.join(map(str, args.token))} may serve it" \
        if args.token else ""
    print(f"approved the toolchain {toolchain_id}: builds may be queued for it{tokens}"
          + (f"; {queued} build(s) of the library queued to re-validate it there" if queued else ""))
    return EXIT_OK


def _revalidate(s: Any, settings: Settings, toolchain_id: str) -> int:
    """The library's builds for a toolchain just approved (``registry.revalidation``), unless turned off."""
    from nestml_registry.registry import revalidation

    if not settings.revalidate:
        return 0
    return revalidation.queue_library(s, toolchain_id, max_attempts=settings.max_attempts,
                                      characterise=settings.characterise)


def _token_rows(settings: Settings) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from nestml_registry.registry.tables import Token

    with _session(settings) as s:
        return [{"id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at.isoformat(),
                 "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}
                for t in s.scalars(select(Token).where(Token.session_of.is_(None)).order_by(Token.id))]


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "server", None):
        with registry_client(args) as client:
            rows = client.tokens()
    else:
        rows = _token_rows(settings)
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("no tokens yet: nestml-registry token create --role publisher", file=sys.stderr)
        return EXIT_OK
    table: list[list[Any]] = [["ID", "ROLE", "NAME", "CREATED", "STATE"]]
    table += [[t["id"], t["role"], t["name"], _when(t.get("created_at")),
               f"revoked {_when(t['revoked_at'])}" if t.get("revoked_at") else "active"] for t in rows]
    console.table(table, sys.stdout)
    return EXIT_OK


def _when(timestamp: str | None) -> str:
    """An ISO time as the tables show it (to the second, UTC, no 'T')."""
    return (timestamp or "")[:19].replace("T", " ")


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "server", None):
        with registry_client(args) as client:
            name = client.revoke_token(args.id)["name"]
        print(f"revoked token {args.id} of {name!r}", file=sys.stderr)
        return EXIT_OK
    from nestml_registry.registry.records import record_event
    from nestml_registry.registry.tokens import revoke_token

    with _session(settings) as s:
        token = revoke_token(s, args.id)
        record_event(s, _actor(), "token_revoke", token.name, {"token": token.id, "role": token.role})
        name = token.name
    print(f"revoked token {args.id} of {name!r}", file=sys.stderr)
    return EXIT_OK


def cmd_owner_set(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.owners import set_owner

    with _session(settings) as s:
        previous, owner = set_owner(s, args.name, args.user, _actor())
    print(f"{args.name}: owner {previous!r} -> {owner!r}", file=sys.stderr)
    return EXIT_OK


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    with registry_client(args) as client:
        events = client.audit(limit=args.limit, action=args.action)
    if args.json:
        print_json(events)
        return EXIT_OK
    if not events:
        print("no events" + (f" of the action {args.action!r}" if args.action else ""), file=sys.stderr)
        return EXIT_OK
    table: list[list[Any]] = [["TIME (UTC)", "ACTOR", "ACTION", "SUBJECT", "DETAILS"]]
    table += [[_when(e.get("at")), e.get("actor"), e.get("action"), e.get("subject"),
               json.dumps(e.get("details") or {}, sort_keys=True)] for e in events]
    console.table(table, sys.stdout)
    return EXIT_OK
