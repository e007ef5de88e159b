"""``nestml-registry backup DEST`` and ``nestml-registry restore SRC`` (see :mod:`nestml_registry.registry.backup`).

Both work on the registry's database and artifact store directly (``NESTML_REGISTRY_DATABASE_URL``,
``NESTML_REGISTRY_STORE``, or ``NESTML_REGISTRY_HOME``), like ``store verify``: they run where those are
reachable. A backup may be taken while the registry runs; a restore goes into an empty registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nestml_registry.cli.command_line import EXIT_OK, print_json
from nestml_registry.service.settings import Settings


def add_parsers(sub: Any) -> None:
    b = sub.add_parser("backup", help="copy the registry's database and artifact store into a new folder (while "
                                      "it runs)")
    b.add_argument("dest", type=Path, metavar="DEST", help="a new (or empty) folder")
    b.add_argument("--json", action="store_true", help="print the backup's manifest as JSON")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore a backup into an empty registry, then migrate it to this release")
    r.add_argument("src", type=Path, metavar="SRC", help="a folder `nestml-registry backup` wrote")
    r.add_argument("--json", action="store_true", help="print what was restored as JSON")
    r.set_defaults(func=cmd_restore)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.backup import backup

    manifest = backup(settings.database_url, settings.store_dir, args.dest)
    if args.json:
        print_json(manifest)
        return EXIT_OK
    print(f"backed up the registry into {args.dest}: its {manifest['database']} database at revision "
          f"{manifest['revision']} and {manifest['files']} module files ({manifest['bytes'] / 1024 ** 2:.1f} MiB)")
    if manifest["damaged"]:
        print(f"left out {len(manifest['damaged'])} damaged module file(s): run `nestml-registry store verify --repair`"
              f", then back up again: {', '.join(manifest['damaged'][:5])}", file=sys.stderr)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.backup import restore

    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    done = restore(settings.database_url, settings.store_dir, args.src)
    if args.json:
        print_json(done)
        return EXIT_OK
    print(f"restored {args.src} (taken {done['created_at'][:19].replace('T', ' ')} UTC at revision {done['revision']}) "
          f"with {done['files']} module files; the database is at revision {done['restored_revision']}: check the "
          "store with `nestml-registry store verify`")
    return EXIT_OK
