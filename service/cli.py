"""The ``nestml-registry`` command line: thin, one-line errors, exit status 0 / 1 / 2.

0 success, 1 a compile that failed with diagnostics, 2 bad usage or input (or a broken toolchain).
With ``--json``, stdout carries one JSON document and nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from compiler.cache import export_module
from compiler.errors import CompilerError
from compiler.pipeline import Compiler
from compiler.request import DEFAULT_SUFFIX, BuildRequest, Pair, parse_weight_variable
from compiler.result import BuildResult
from compiler.sources import Source
from registry.errors import RegistryError
from service.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("nestml_registry")


class UsageError(Exception):
    """Bad arguments or input: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nestml-registry",
                                description="Compile NESTML models into NEST modules and share them.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="build a NEST module from .nestml files on this machine (no server)")
    c.add_argument("files", nargs="+", metavar="FILE.nestml")
    c.add_argument("--module", help="module name, ending in 'module' (default: from the model name)")
    c.add_argument("--pair", action="append", default=[], metavar="NEURON:SYNAPSE[:PORT,...]",
                   help="generate a neuron and a synapse together (repeatable)")
    c.add_argument("--weight-variable", action="append", default=[], metavar="SYNAPSE:VARIABLE",
                   help="the synapse variable NEST sets as the weight (default: one named w or weight)")
    c.add_argument("--suffix", default=DEFAULT_SUFFIX,
                   help=f"appended to every model name NEST registers (default {DEFAULT_SUFFIX!r})")
    c.add_argument("--out", type=Path, help="also copy the module to OUT/<sha256 prefix>/<module>.so")
    c.add_argument("--force", action="store_true", help="rebuild even if an identical build is cached")
    c.add_argument("--json", action="store_true", help="print the build document as JSON")
    c.set_defaults(func=cmd_compile)

    w = sub.add_parser("worker", help="run compile workers against the registry's database and store")
    w.add_argument("--concurrency", type=int, default=1, metavar="N", help="worker processes (default 1)")
    w.add_argument("--burst", action="store_true", help="exit when no build is left instead of waiting")
    w.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the database (NESTML_REGISTRY_DATABASE_URL) to this version")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from registry.db import is_sqlite, require_current, upgrade
    from service.worker import run_workers

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if is_sqlite(settings.database_url):
        settings.home.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)  # the embedded default migrates itself
    else:
        require_current(settings.database_url)
    return run_workers(settings, args.concurrency, burst=args.burst)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from registry.db import current_revision, upgrade

    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database at revision {current_revision(settings.database_url)}")
    return EXIT_OK


def _read_sources(paths: list[str]) -> list[Source]:
    return [Source.from_path(p) for p in paths]


def cmd_compile(args: argparse.Namespace, settings: Settings) -> int:
    request = BuildRequest.create(_read_sources(args.files), module=args.module, suffix=args.suffix,
                                  pairs=[Pair.parse(p) for p in args.pair],
                                  weight_variables=dict(parse_weight_variable(w) for w in args.weight_variable))
    compiler = Compiler(settings.compiler_config())
    if args.force:
        compiler.cache.forget(compiler.key(request))
    start = time.monotonic()
    progress = None if args.json else _Stage(sys.stderr)
    result = compiler.compile(request, progress=progress)
    if result.ok and args.out is not None:
        result.module_path = str(export_module(Path(result.module_path or ""), result.module_sha256 or "", args.out))
    if args.json:
        print(json.dumps(result.document(), indent=2))
    else:
        _print_result(result, time.monotonic() - start)
    return EXIT_OK if result.ok else EXIT_FAILED


class _Stage:
    """Prints build stages to a terminal as they happen."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.start = time.monotonic()

    def __call__(self, stage: str) -> None:
        if self.stream.isatty():
            print(f"  [{time.monotonic() - self.start:5.1f} s] {stage}...", file=self.stream, flush=True)


def _print_result(result: BuildResult, seconds: float) -> None:
    for d in result.diagnostics:
        print(d.format(), file=sys.stderr)
    if not result.ok:
        errors = sum(d.severity == "error" for d in result.diagnostics)
        print(f"build failed: {errors} error{'s' if errors != 1 else ''}"
              + (f" (build log: {result.log_path})" if result.log_path else ""), file=sys.stderr)
        return
    how = "cached" if result.cached else f"built in {seconds:.1f} s"
    print(f"{result.module_name} ({how}), sha256 {result.module_sha256}")
    for m in result.models:
        print(f"  {m.kind:8} {m.name}")
    print(result.module_path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except (CompilerError, RegistryError, UsageError, ValueError) as exc:
        message = str(exc)
        if getattr(args, "json", False):
            kind = type(exc).__name__
            print(json.dumps({"error": {"code": kind, "message": message}}))
        print(f"nestml-registry: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nestml-registry: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
