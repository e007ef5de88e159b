"""The ``nestml-registry`` command line: thin, one-line errors, exit status 0 / 1 / 2.

0 success, 1 a compile that failed with diagnostics, 2 bad usage or input (or a broken toolchain, or a
registry that refused a request or did not answer). With ``--json``, stdout carries one JSON document
and nothing else. The registry is ``--server URL`` (before or after the command) or
``$NESTML_REGISTRY_URL``; a token is ``$NESTML_REGISTRY_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestml_registry.compiler.errors import CompilerError
from nestml_registry.compiler.request import DEFAULT_SUFFIX, BuildRequest, Pair, parse_weight_variable
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source
from nestml_registry.registry.errors import RegistryError
from nestml_registry.service import console
from nestml_registry.service.admin_command import add_parsers as add_admin_parsers
from nestml_registry.service.client_errors import FINAL_STATUSES, RegistryClientError
from nestml_registry.service.settings import Settings
from nestml_registry.service.store_command import add_parser as add_store_parser
from nestml_registry.simulator.command import add_parser as add_run_parser

if TYPE_CHECKING:
    from nestml_registry.service.client import RegistryClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
logger = logging.getLogger("nestml_registry")


class UsageError(Exception):
    """Bad arguments or input: printed as one line, exit status 2."""


SERVER_HELP = "the registry's URL (default: $NESTML_REGISTRY_URL, else http://127.0.0.1:8000)"


def _remote(p: argparse.ArgumentParser, json_help: str) -> None:
    """The options every command that talks to a registry takes."""
    p.add_argument("--server", metavar="URL", default=argparse.SUPPRESS, help=SERVER_HELP)
    p.add_argument("--json", action="store_true", help=json_help)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nestml-registry",
                                description="Compile NESTML models into NEST modules and share them.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    p.add_argument("--server", metavar="URL", default=None, help=SERVER_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="build a NEST module from .nestml files on this machine (no server)")
    c.add_argument("files", nargs="+", metavar="FILE.nestml")
    _request_options(c, DEFAULT_SUFFIX)
    c.add_argument("--out", type=Path, help="also copy the module to OUT/<sha256 prefix>/<module>.so")
    c.add_argument("--force", action="store_true", help="rebuild even if an identical build is cached")
    c.add_argument("--json", action="store_true", help="print the build document as JSON")
    c.set_defaults(func=cmd_compile)

    ps = sub.add_parser("push", help="upload .nestml files to the registry, which builds and publishes them")
    ps.add_argument("files", nargs="+", metavar="FILE.nestml")
    _request_options(ps, None)
    ps.add_argument("--toolchain", metavar="ID", help="build for this toolchain (default: the registry's workers')")
    ps.add_argument("--retry", action="store_true", help="build again if an identical build failed before")
    ps.add_argument("--wait", action="store_true", help="follow the build until it succeeded or failed")
    ps.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="with --wait: give up waiting after this long (the build goes on)")
    _remote(ps, "print the build document as JSON")
    ps.set_defaults(func=cmd_push)

    b = sub.add_parser("build", help="show a build on the registry (--wait: follow it; --log: print its log)")
    b.add_argument("id", metavar="BUILD_ID", help="the build's id, as push prints it")
    b.add_argument("--wait", action="store_true", help="follow the build until it succeeded or failed")
    b.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="with --wait: give up after this")
    b.add_argument("--log", action="store_true", help="print the build's log")
    _remote(b, "print the build document as JSON")
    b.set_defaults(func=cmd_build)

    m = sub.add_parser("models", help="list the registry's models, newest version first")
    _remote(m, "print the list as JSON")
    m.set_defaults(func=cmd_models)

    sh = sub.add_parser("show", help="show a model: parameters (units, defaults), state, input ports")
    sh.add_argument("model", metavar="MODEL[@VERSION]")
    _remote(sh, "print the model document as JSON")
    sh.set_defaults(func=cmd_show)

    pl = sub.add_parser("pull", help="download a model's module for this machine's NEST and print its path")
    pl.add_argument("model", metavar="MODEL[@VERSION]")
    pl.add_argument("--toolchain", metavar="ID", help="the toolchain to resolve for (default: this machine's)")
    pl.add_argument("--cache", type=Path, metavar="DIR",
                    help="the module cache (default: $NESTML_REGISTRY_MODULE_CACHE, else "
                         "~/.cache/nestml-registry/modules)")
    _remote(pl, 'print {"model", "version", "path", "sha256"} as JSON')
    pl.set_defaults(func=cmd_pull)

    add_run_parser(sub, SERVER_HELP)

    sv = sub.add_parser("serve", help="run the registry: HTTP API and embedded compile workers")
    sv.add_argument("--host", default=None, help=f"address to listen on (default {DEFAULT_HOST})")
    sv.add_argument("--port", type=int, default=None, help=f"port to listen on (default {DEFAULT_PORT})")
    sv.add_argument("--workers", type=int, default=1, metavar="N",
                    help="embedded compile worker processes (default 1; 0: run workers elsewhere)")
    sv.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run compile workers against the registry's database and store")
    w.add_argument("--concurrency", type=int, default=1, metavar="N", help="worker processes (default 1)")
    w.add_argument("--burst", action="store_true", help="exit when no build is left instead of waiting")
    w.set_defaults(func=cmd_worker)

    add_admin_parsers(sub, SERVER_HELP)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the database (NESTML_REGISTRY_DATABASE_URL) to this version")
    up.set_defaults(func=cmd_db_upgrade)
    add_store_parser(sub)
    return p


def _request_options(p: argparse.ArgumentParser, suffix_default: str | None) -> None:
    p.add_argument("--module", help="module name, ending in 'module' (default: from the model name)")
    p.add_argument("--pair", action="append", default=[], metavar="NEURON:SYNAPSE[:PORT,...]",
                   help="generate a neuron and a synapse together (repeatable)")
    p.add_argument("--weight-variable", action="append", default=[], metavar="SYNAPSE:VARIABLE",
                   help="the synapse variable NEST sets as the weight (default: one named w or weight)")
    p.add_argument("--suffix", default=suffix_default,
                   help=f"appended to every model name NEST registers (default {DEFAULT_SUFFIX!r})")


# -- local commands ---------------------------------------------------------------------------------


def _prepare_database(settings: Settings) -> None:
    from nestml_registry.registry.db import prepare

    prepare(settings.database_url, settings.home)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.service.worker import run_workers

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    _check_sandbox(settings)
    _prepare_database(settings)
    return run_workers(settings, args.concurrency, burst=args.burst)


def _check_sandbox(settings: Settings) -> None:
    """Refuse to start compile workers that could not sandbox their builds (unless opted out)."""
    from nestml_registry.compiler.sandbox import check_sandbox

    check_sandbox(settings.sandbox_config(), settings.cache_dir / "work" / "sandbox-check")


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.registry.db import current_revision, upgrade

    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database at revision {current_revision(settings.database_url)}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.service.serve import listen, run_server, with_address

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
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"nestml-registry: serving http://{shown}:{port} with {args.workers} compile worker"
          f"{'s' if args.workers != 1 else ''} (database {_safe_url(settings.database_url)}, "
          f"store {settings.store_dir}); Ctrl-C stops", file=sys.stderr, flush=True)
    return run_server(settings, sock, args.workers, verbose=args.verbose)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _read_sources(paths: list[str]) -> list[Source]:
    return [Source.from_path(p) for p in paths]


def cmd_compile(args: argparse.Namespace, settings: Settings) -> int:
    request = BuildRequest.create(_read_sources(args.files), module=args.module, suffix=args.suffix,
                                  pairs=[Pair.parse(p) for p in args.pair],
                                  weight_variables=dict(parse_weight_variable(w) for w in args.weight_variable))
    from nestml_registry.compiler.cache import export_module
    from nestml_registry.compiler.pipeline import (
        Compiler,  # not at start-up: `run` and the registry commands need neither
    )

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


# -- commands that talk to a registry ---------------------------------------------------------------


def _client(args: argparse.Namespace) -> RegistryClient:
    from nestml_registry.service.client import RegistryClient  # the HTTP stack, only for commands that talk to a server

    return RegistryClient.from_env(server=args.server)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _follow(client: RegistryClient, build: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Wait for the build: a spinner on a terminal, stage lines otherwise (none with --json)."""
    progress = console.BuildProgress(sys.stderr, build.get("id"), live=sys.stderr.isatty(), plain=not args.json)
    try:
        progress(build)
        if build.get("status") in FINAL_STATUSES:
            return build
        return client.wait_build(build["id"], on_progress=progress, timeout=args.timeout)
    except KeyboardInterrupt:
        progress.close()
        print(f"stopped waiting; build {build.get('id')} goes on: follow it with "
              f"'nestml-registry build {build.get('id')} --wait'", file=sys.stderr)
        raise
    finally:
        progress.close()


def _report_build(build: dict[str, Any], args: argparse.Namespace) -> int:
    status = build.get("status")
    if args.json:
        _print_json(build)
    elif status == "succeeded":
        console.print_success(build, sys.stdout, sys.stderr)
    elif status == "failed":
        console.print_failure(build, sys.stderr)
    else:
        print(f"build {build.get('id')} {status}")
        print(f"follow it with: nestml-registry build {build.get('id')} --wait", file=sys.stderr)
    return EXIT_FAILED if status == "failed" else EXIT_OK


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    sources = _read_sources(args.files)
    pairs = [Pair.parse(p) for p in args.pair]
    weights = dict(parse_weight_variable(w) for w in args.weight_variable)
    # the checks the registry makes, before anything is uploaded
    BuildRequest.create(sources, module=args.module, suffix=DEFAULT_SUFFIX if args.suffix is None else args.suffix,
                        pairs=pairs, weight_variables=weights)
    with _client(args) as client:
        build = client.submit_build([(s.name, s.text.encode("utf-8")) for s in sources], module=args.module,
                                    pairs=[p.to_dict() for p in pairs], suffix=args.suffix,
                                    weight_variables=weights, toolchain=args.toolchain, retry=args.retry)
        if not args.json:
            for warning in build.get("warnings") or []:
                print(f"warning: {warning}", file=sys.stderr)
        if args.wait:
            build = _follow(client, build, args)
    return _report_build(build, args)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args) as client:
        build = client.get_build(args.id)
        if args.wait:
            build = _follow(client, build, args)
        if args.log and not args.json:
            sys.stdout.write(client.build_log(args.id))
            return EXIT_FAILED if build.get("status") == "failed" else EXIT_OK
    return _report_build(build, args)


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args) as client:
        models = client.models()
    if args.json:
        _print_json(models)
    elif not models:
        print("no models in the registry yet: publish some with 'nestml-registry push FILE.nestml'", file=sys.stderr)
    else:
        console.print_models(models, sys.stdout)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with _client(args) as client:
        detail = client.model(args.model)
    if args.json:
        _print_json(detail)
    else:
        console.print_model(detail, args.model, sys.stdout)
    return EXIT_OK


def _local_toolchain(settings: Settings) -> str:
    """This machine's toolchain id (detected once, then read from the build cache)."""
    from nestml_registry.compiler.toolchain import detect

    try:
        return detect(settings.cache_dir, cxxflags=settings.cxxflags).id
    except CompilerError as exc:
        raise UsageError(f"cannot tell this machine's NEST toolchain: {exc}; or name it with --toolchain ID") from exc


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.simulator.cache import ModuleCache

    cache = ModuleCache(args.cache)
    toolchain = args.toolchain or _local_toolchain(settings)
    with _client(args) as client:
        found = client.resolve(args.model, toolchain)
        module = found.get("module") or {}
        path = cache.fetch(client, module["sha256"], module["name"])
    if args.json:
        _print_json({"model": found.get("model"), "version": found.get("version"), "path": str(path),
                     "sha256": module["sha256"], "kind": found.get("kind"), "module": module["name"],
                     "toolchain": toolchain})
    else:
        print(f"{found.get('model')}@{found.get('version')} ({found.get('kind')}) in {module['name']}, "
              f"sha256 {module['sha256']}", file=sys.stderr)
        print(path)
    return EXIT_OK


def _json_error(code: str, message: str, details: Any = None, status: int | None = None) -> None:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    if status is not None:
        error["status"] = status
    print(json.dumps({"error": error}))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # libraries (BMTK) that set their own loggers' levels
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except RegistryClientError as exc:
        if getattr(args, "json", False):
            _json_error(exc.code or "client_error", exc.message, exc.details, exc.status)
        print(f"nestml-registry: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except (CompilerError, RegistryError, UsageError, ValueError) as exc:
        message = str(exc)
        if getattr(args, "json", False):
            _json_error(type(exc).__name__, message)
        print(f"nestml-registry: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nestml-registry: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
