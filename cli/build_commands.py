"""The build commands of the ``nestml-registry`` CLI: ``compile`` (on this machine, no server), ``push``
(the registry builds and publishes) and ``build`` (show or follow a build on the registry)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestml_registry.cli import console
from nestml_registry.cli.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    print_json,
    registry_client,
    remote_options,
)
from nestml_registry.compiler.request import DEFAULT_SUFFIX, BuildRequest, Pair, parse_weight_variable
from nestml_registry.compiler.sources import MAX_SOURCE_BYTES, Source
from nestml_registry.service.client.errors import FINAL_STATUSES
from nestml_registry.service.settings import Settings

if TYPE_CHECKING:
    from nestml_registry.service.client import RegistryClient


def add_parsers(sub: Any) -> None:
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
    ps.add_argument("--breaking", action="store_true",
                    help="publish new versions even if they drop parameters, state variables or input ports that "
                         "the version before has (the push then lists what they break)")
    ps.add_argument("--wait", action="store_true", help="follow the build until it succeeded or failed")
    ps.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="with --wait: give up waiting after this long (the build goes on)")
    remote_options(ps, "print the build document as JSON")
    ps.set_defaults(func=cmd_push)

    b = sub.add_parser("build", help="show a build on the registry (--wait: follow it; --log: print its log)")
    b.add_argument("id", metavar="BUILD_ID", help="the build's id, as push prints it")
    b.add_argument("--wait", action="store_true", help="follow the build until it succeeded or failed")
    b.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="with --wait: give up after this")
    b.add_argument("--log", action="store_true", help="print the build's log")
    remote_options(b, "print the build document as JSON")
    b.set_defaults(func=cmd_build)

    bs = sub.add_parser("builds", help="list the registry's recent builds, newest first (GET /v1/builds)")
    bs.add_argument("--status", choices=("queued", "running", "succeeded", "failed"), help="only builds in this state")
    bs.add_argument("--submitter", metavar="PRINCIPAL", help="only builds of this principal ('local': anonymous)")
    bs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N builds (default 20, up to 500)")
    remote_options(bs, "print the list as JSON")
    bs.set_defaults(func=cmd_builds)


def _request_options(p: argparse.ArgumentParser, suffix_default: str | None) -> None:
    p.add_argument("--module", help="module name, ending in 'module' (default: from the model name)")
    p.add_argument("--pair", action="append", default=[], metavar="NEURON:SYNAPSE[:PORT,...]",
                   help="generate a neuron and a synapse together (repeatable)")
    p.add_argument("--weight-variable", action="append", default=[], metavar="SYNAPSE:VARIABLE",
                   help="the synapse variable NEST sets as the weight (default: one named w or weight)")
    p.add_argument("--delay-variable", action="append", default=[], metavar="SYNAPSE:VARIABLE",
                   help="the synapse variable that is NEST's connection delay (NESTML's delay_variable; default: "
                        "none, the delay is NEST's own)")
    p.add_argument("--suffix", default=suffix_default,
                   help=f"appended to every model name NEST registers (default {DEFAULT_SUFFIX!r})")


def _read_sources(paths: list[str], max_bytes: int | None = MAX_SOURCE_BYTES) -> list[Source]:
    return [Source.from_path(p, max_bytes) for p in paths]


def cmd_compile(args: argparse.Namespace, settings: Settings) -> int:
    request = BuildRequest.create(_read_sources(args.files), module=args.module, suffix=args.suffix,
                                  pairs=[Pair.parse(p) for p in args.pair],
                                  weight_variables=dict(parse_weight_variable(w) for w in args.weight_variable),
                                  delay_variables=dict(parse_weight_variable(d, "delay") for d in args.delay_variable))
    # not at start-up: `run` and the registry commands need neither
    from nestml_registry.compiler.cache import export_module
    from nestml_registry.compiler.pipeline import Compiler

    compiler = Compiler(settings.compiler_config())
    if args.force:
        compiler.cache.forget(compiler.key(request))
    start = time.monotonic()
    progress = None if args.json else console.Stages(sys.stderr)
    result = compiler.compile(request, progress=progress)
    if result.ok and args.out is not None:
        result.module_path = str(export_module(Path(result.module_path or ""), result.module_sha256 or "", args.out))
    if args.json:
        print(json.dumps(result.document(), indent=2))
    else:
        console.print_result(result, time.monotonic() - start, sys.stdout, sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


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
        print_json(build)
    elif status == "succeeded":
        console.print_success(build, sys.stdout, sys.stderr)
    elif status == "failed":
        console.print_failure(build, sys.stderr)
    else:
        print(f"build {build.get('id')} {status}")
        print(f"follow it with: nestml-registry build {build.get('id')} --wait", file=sys.stderr)
    return EXIT_FAILED if status == "failed" else EXIT_OK


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    sources = _read_sources(args.files, max_bytes=None)  # the registry's upload limit decides (413 names it)
    pairs = [Pair.parse(p) for p in args.pair]
    weights = dict(parse_weight_variable(w) for w in args.weight_variable)
    delays = dict(parse_weight_variable(d, "delay") for d in args.delay_variable)
    # the checks the registry makes, before anything is uploaded
    BuildRequest.create(sources, module=args.module, suffix=DEFAULT_SUFFIX if args.suffix is None else args.suffix,
                        pairs=pairs, weight_variables=weights, delay_variables=delays)
    with registry_client(args) as client:
        build = client.submit_build([(s.name, s.text.encode("utf-8")) for s in sources], module=args.module,
                                    pairs=[p.to_dict() for p in pairs], suffix=args.suffix,
                                    weight_variables=weights, delay_variables=delays, toolchain=args.toolchain,
                                    retry=args.retry, breaking=args.breaking)
        if not args.json:
            for warning in build.get("warnings") or []:
                print(f"warning: {warning}", file=sys.stderr)
            if build.get("status") == "failed" and not args.retry and not args.breaking:  # an earlier identical one
                print(f"these sources failed to build before (build {build.get('id')}); nothing was built again: fix "
                      "them, or push again with --retry to build them once more (e.g. after a toolchain fix)",
                      file=sys.stderr)
        if args.wait:
            build = _follow(client, build, args)
    return _report_build(build, args)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    with registry_client(args) as client:
        build = client.get_build(args.id)
        if args.wait:
            build = _follow(client, build, args)
        if args.log and not args.json:
            sys.stdout.write(client.build_log(args.id))
            return EXIT_FAILED if build.get("status") == "failed" else EXIT_OK
    return _report_build(build, args)


def cmd_builds(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 500:
        raise UsageError(f"--limit {args.limit}: give a number from 1 to 500")
    with registry_client(args) as client:
        builds = client.builds(args.status, args.submitter, args.limit)
    if args.json:
        print_json(builds)
    elif not builds:
        print("no builds" + (" match" if args.status or args.submitter else " yet: push a model with "
                             "'nestml-registry push FILE.nestml'"), file=sys.stderr)
    else:
        console.print_builds(builds, sys.stdout)
    return EXIT_OK
