"""``nestml-registry store verify [--repair]``: re-hash every module in the artifact store and repair the
damaged ones (registered by :mod:`nestml_registry.cli.main`). It runs where the store and the database are reachable
(the registry's machine, or one that mounts its store): whoever can reach them administers the registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nestml_registry.cli.command_line import EXIT_FAILED, EXIT_OK, print_json
from nestml_registry.service.settings import Settings

EXIT_DAMAGED = EXIT_FAILED


def add_parser(sub: Any) -> None:
    st = sub.add_parser("store", help="the artifact store (works on the store and database directly)")
    st_sub = st.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    v = st_sub.add_parser("verify", help="re-hash every stored module; --repair restores or rebuilds damaged ones")
    v.add_argument("--repair", action="store_true",
                   help="restore a damaged module from a good copy in a build cache, else queue its build again "
                        "(a compile worker stores it again)")
    v.add_argument("--copies", action="append", type=Path, default=[], metavar="CACHE_DIR",
                   help="another compile worker's build cache (NESTML_REGISTRY_CACHE) to take good copies from "
                        "(repeatable; this machine's own is always looked in)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=cmd_store_verify)


def cmd_store_verify(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.db import make_engine, make_sessionmaker, prepare
    from nestml_registry.registry.repair import verify_store
    from nestml_registry.registry.store import ArtifactStore

    prepare(settings.database_url, settings.home)
    engine = make_engine(settings.database_url)
    try:
        report = verify_store(make_sessionmaker(engine), ArtifactStore(settings.store_dir), repair=args.repair,
                              copies=[settings.cache_dir, *args.copies])
    finally:
        engine.dispose()
    if args.json:
        print_json({"checked": report.checked, "damaged": [vars(d) for d in report.damaged]})
    else:
        for d in report.damaged:
            print(f"{d.sha256}  {d.name:<32}  {d.state:<8}  {d.action or 'run with --repair to repair it'}")
        print(f"checked {report.checked} module(s): {len(report.damaged)} damaged"
              + (f", {len(report.unrepaired)} not repaired" if args.repair else ""), file=sys.stderr)
    return EXIT_DAMAGED if report.unrepaired else EXIT_OK
