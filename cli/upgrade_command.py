"""``nestml-registry upgrade FILE.nestml... [--in-place]``: NESTML 7/8 model text rewritten for NESTML 9
(see :mod:`nestml_registry.compiler.upgrade`), on this machine, no server.

One file without ``--in-place``: the upgraded text on stdout. What changed, line by line, and what could
not be upgraded (NESTML's errors in the upgraded text) go to stderr; exit status 1 when errors remain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from nestml_registry.cli.command_line import EXIT_FAILED, EXIT_OK, UsageError
from nestml_registry.compiler.sources import Source
from nestml_registry.service.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("upgrade", help="rewrite NESTML 7/8 model text for NESTML 9 ('/ mV' becomes '/ 1 mV', ...)")
    p.add_argument("files", nargs="+", metavar="FILE.nestml")
    p.add_argument("--in-place", action="store_true",
                   help="rewrite the files (default: print the upgraded text of one file on stdout)")
    p.set_defaults(func=cmd_upgrade)


def _write_in_place(path: Path, text: str) -> None:
    """The new text through a temporary file in the same folder and a rename (the file's mode kept)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    if len(args.files) > 1 and not args.in_place:
        raise UsageError(f"{len(args.files)} files: give --in-place to rewrite them, or upgrade one file at a time "
                         "to stdout")
    paths = [Path(f) for f in args.files]
    texts = {str(p): Source.from_path(p, max_bytes=None).text for p in paths}  # (InputError: no such file, ...)
    from nestml_registry.compiler.pipeline import Compiler  # NESTML's checks: the compiler's child process
    from nestml_registry.compiler.upgrade import upgrade

    compiler = Compiler(settings.compiler_config())
    results = upgrade(texts, compiler.check)
    for up in results:
        for line, what in up.changes:
            print(f"{up.name}:{line}: upgraded: {what}", file=sys.stderr)
        if not up.changes:
            print(f"{up.name}: nothing to upgrade", file=sys.stderr)
        for d in up.diagnostics:
            print(d.format(), file=sys.stderr)
        if not up.ok:
            print(f"{up.name}: {'upgraded, but ' if up.changed else ''}NESTML 9 still reports "
                  f"{sum(d.severity == 'error' for d in up.diagnostics)} error(s) above that need a person: fix them "
                  "by hand", file=sys.stderr)
        if args.in_place:
            if up.changed:
                _write_in_place(Path(up.name), up.text)
                print(f"{up.name}: rewritten", file=sys.stderr)
        else:
            sys.stdout.write(up.text)
    return EXIT_OK if all(up.ok for up in results) else EXIT_FAILED
