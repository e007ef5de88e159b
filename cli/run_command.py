"""The ``run`` command of the ``nestml-registry`` CLI (registered by :mod:`nestml_registry.cli.main`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nestml_registry.cli.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    print_json,
    remote_options,
    report_error,
)
from nestml_registry.simulator.errors import SimulatorError


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="run a BMTK PointNet config whose node/edge types say nestml:<model>")
    r.add_argument("config", metavar="CONFIG.json", help="the BMTK simulation config")
    r.add_argument("--locked", metavar="LOCKFILE", type=Path,
                   help="resolve exactly what this lock file says (a run writes nestml-registry.lock.json into its "
                        "output folder); needs no registry once the module cache has the files")
    r.add_argument("--no-build", dest="build", action="store_false",
                   help="fail instead of asking the registry to build a model for this machine's toolchain")
    r.add_argument("--build-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up waiting for such a build after this long")
    r.add_argument("--cache", type=Path, metavar="DIR",
                   help="the module cache (default: $NESTML_REGISTRY_MODULE_CACHE, else "
                        "~/.cache/nestml-registry/modules)")
    r.add_argument("--hooks", action="append", default=[], metavar="FILE.py",
                   help="import this Python file first, for its @cell_model functions (repeatable)")
    remote_options(r, "print the run's models, output folder and lock file as JSON")
    r.add_argument("--traceback", action="store_true", help="print the whole traceback when the run fails")
    r.set_defaults(func=cmd_run)

    p = sub.add_parser("prefetch", help="fill this machine's module cache for a config or a lock file, then exit "
                                        "(before a cluster job: one per node)")
    p.add_argument("config", nargs="?", metavar="CONFIG.json", help="the BMTK simulation config to resolve")
    p.add_argument("--locked", metavar="LOCKFILE", type=Path, help="fetch exactly what this lock file says")
    p.add_argument("--lock", dest="lock_out", metavar="FILE", type=Path,
                   help="write what the config resolved to as a lock file (for `run --locked FILE`)")
    p.add_argument("--no-build", dest="build", action="store_false",
                   help="fail instead of asking the registry to build a model for this machine's toolchain")
    p.add_argument("--build-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up waiting for such a build after this long")
    p.add_argument("--cache", type=Path, metavar="DIR", help="the module cache (default: as for run)")
    remote_options(p, "print the cached modules as JSON")
    p.set_defaults(func=cmd_prefetch)


def _say(text: str) -> None:
    print(f"nestml-registry: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """With --json, stdout carries the one JSON document: what NEST and BMTK print goes to stderr."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_run(args: argparse.Namespace, settings: Any) -> int:
    from nestml_registry.simulator.run import run

    os.environ.setdefault("PYNEST_QUIET", "1")  # no NEST banner
    try:
        with _stdout_to_stderr(args.json):
            result = run(args.config, server=args.server, locked=args.locked, build=args.build,
                         build_timeout=args.build_timeout, cache=args.cache, progress=_say,
                         hooks=args.hooks)
    except SimulatorError as exc:
        status = EXIT_USAGE if exc.input_error else EXIT_FAILED
        return status if exc.quiet else report_error(args, exc, status)  # (rank 0 says it)
    except Exception as exc:  # BMTK and NEST raise many types; the user gets NEST's own message
        if args.traceback:
            traceback.print_exc()
        name = type(exc).__name__
        failed = SimulatorError(f"the run failed: {name}: {exc}".rstrip(": ")
                                + ("" if args.traceback else " (--traceback shows where)"), "run_failed",
                                {"type": name}, input_error=False)
        return report_error(args, failed, EXIT_FAILED)
    if args.json:
        print_json(result.to_dict())
    else:
        _say(f"done: output in {result.output_dir}" + (f", lock file {result.lock}" if result.lock else ""))
    return EXIT_OK


def cmd_prefetch(args: argparse.Namespace, settings: Any) -> int:
    from nestml_registry.simulator.prefetch import prefetch

    if args.config is not None and args.locked is not None:
        return report_error(args, SimulatorError("give the config or --locked LOCKFILE, not both: a lock file "
                                                 "already says what to fetch", "usage"), EXIT_USAGE)
    try:
        result = prefetch(args.config, locked=args.locked, server=args.server, build=args.build,
                          build_timeout=args.build_timeout, cache=args.cache, progress=_say, lock_out=args.lock_out)
    except SimulatorError as exc:
        return report_error(args, exc, EXIT_USAGE if exc.input_error else EXIT_FAILED)
    if args.json:
        print_json(result)
        return EXIT_OK
    for m in result["modules"]:
        print(f"{m['name']}  {m['sha256'][:12]}  {m['path']}")
    _say(f"{len(result['modules'])} module(s) in {result['cache']} for {result['toolchain']}"
         + (f"; lock file {result['lock']} (run --locked {result['lock']})" if result["lock"] else ""))
    return EXIT_OK
