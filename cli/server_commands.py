"""The commands that run the registry: ``serve`` (the HTTP API, with embedded compile workers),
``worker`` (compile workers on the database and store) and ``db upgrade`` (migrations)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nestml_registry.cli.command_line import EXIT_OK, UsageError
from nestml_registry.service.settings import Settings

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def add_parsers(sub: Any) -> None:
    sv = sub.add_parser("serve", help="run the registry: HTTP API and embedded compile workers")
    sv.add_argument("--host", default=None, help=f"address to listen on (default {DEFAULT_HOST})")
    sv.add_argument("--port", type=int, default=None, help=f"port to listen on (default {DEFAULT_PORT})")
    sv.add_argument("--workers", type=int, default=1, metavar="N",
                    help="embedded compile worker processes (default 1; 0: run workers elsewhere)")
    sv.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run compile workers against the registry's database and store, or (with "
                                      "--server) over HTTP with a worker token")
    w.add_argument("--concurrency", type=int, default=1, metavar="N", help="worker processes (default 1)")
    w.add_argument("--server", dest="worker_server", metavar="URL", default=None,
                   help="reach the registry only over HTTP (no database or store here): claim, build and upload "
                        "through its API with the worker token in NESTML_REGISTRY_TOKEN (token create --role worker)")
    w.add_argument("--burst", action="store_true", help="exit when no build is left instead of waiting")
    w.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the database (NESTML_REGISTRY_DATABASE_URL) to this version")
    up.set_defaults(func=cmd_db_upgrade)


def _prepare_database(settings: Settings) -> None:
    from nestml_registry.registry.db import prepare

    prepare(settings.database_url, settings.home)


def _check_sandbox(settings: Settings) -> None:
    """Refuse to start compile workers that could not sandbox their builds (unless opted out)."""
    from nestml_registry.compiler.sandbox import check_sandbox

    check_sandbox(settings.sandbox_config(), settings.cache_dir / "work" / "sandbox-check")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.service.workers.pool import run_workers

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    server = args.worker_server
    if server is not None and not os.environ.get("NESTML_REGISTRY_TOKEN"):
        raise UsageError("worker --server needs a worker token in NESTML_REGISTRY_TOKEN: an admin creates one with "
                         "`nestml-registry token create --role worker --name NODE`")
    _check_sandbox(settings)
    if server is None:
        _prepare_database(settings)
    return run_workers(settings, args.concurrency, burst=args.burst, server=server)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.db import current_revision, upgrade

    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database at revision {current_revision(settings.database_url)}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.cli.serve import listen, run_server, with_address

    if args.workers < 0:
        raise UsageError("--workers must be 0 or more")
    host = args.host or getattr(settings, "host", None) or DEFAULT_HOST
    port = args.port if args.port is not None else getattr(settings, "port", None) or DEFAULT_PORT
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port between 1 and 65535 (or 0 for any free port)")
    settings = with_address(settings, host, port)
    if args.workers:
        _check_sandbox(settings)
    _prepare_database(settings)
    sock = listen(host, port)
    if settings.local_token:
        from nestml_registry.service.client import local_token

        print(f"nestml-registry: this machine's publisher token (principal 'local') is in "
              f"{local_token.ensure(settings.home, settings.database_url)}, readable by this user only; its CLI "
              "uses it by itself", file=sys.stderr, flush=True)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"nestml-registry: serving http://{shown}:{port} with {args.workers} compile worker"
          f"{'s' if args.workers != 1 else ''} (database {_safe_url(settings.database_url)}, "
          f"store {settings.store_dir}); Ctrl-C stops", file=sys.stderr, flush=True)
    return run_server(settings, sock, args.workers, verbose=args.verbose)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
