"""The model commands of the ``nestml-registry`` CLI: ``models`` (the list), ``show`` (one model's
parameters, state and ports), ``source`` (its text), ``diff`` (two versions compared) and ``pull`` (a
model's module for this machine, into the module cache)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nestml_registry.cli import console
from nestml_registry.cli.command_line import EXIT_OK, UsageError, print_json, registry_client, remote_options
from nestml_registry.compiler.errors import CompilerError
from nestml_registry.registry.errors import InvalidReference
from nestml_registry.service.settings import Settings


def add_parsers(sub: Any) -> None:
    m = sub.add_parser("models", help="list the registry's models, newest version first")
    m.add_argument("--search", default="", metavar="TEXT",
                   help="only models whose name, description, parameter or state names hold every word of TEXT")
    m.add_argument("--kind", choices=("neuron", "synapse"), help="only neurons, or only synapses")
    m.add_argument("--owner", metavar="PRINCIPAL", help="only the models of this owner")
    m.add_argument("--verdict", choices=("agrees", "differs", "failed", "none"),
                   help="only models whose newest version agrees with (differs from) its NEST counterpart, whose "
                        "check failed, or that have no verdict")
    remote_options(m, "print the list as JSON")
    m.set_defaults(func=cmd_models)

    sh = sub.add_parser("show", help="show a model: parameters (units, defaults), state, input ports")
    sh.add_argument("model", metavar="MODEL[@VERSION]")
    remote_options(sh, "print the model document as JSON")
    sh.set_defaults(func=cmd_show)

    so = sub.add_parser("source", help="print a model's .nestml source as published (the newest, or @VERSION)")
    so.add_argument("model", metavar="MODEL[@VERSION]")
    remote_options(so, 'print {"name", "sha256", "text"} as JSON')
    so.set_defaults(func=cmd_source)

    df = sub.add_parser("diff", help="what changed between two versions of a model: parameters, state, source")
    df.add_argument("older", metavar="MODEL@VERSION")
    df.add_argument("newer", metavar="MODEL@VERSION")
    remote_options(df, "print the difference as JSON")
    df.set_defaults(func=cmd_diff)

    yk = sub.add_parser("yank", help="withdraw a version: unpinned references skip it; pinned and locked runs keep it")
    yk.add_argument("model", metavar="MODEL@VERSION")
    yk.add_argument("--reason", required=True, help="why (shown to whoever pins the version)")
    remote_options(yk, "print the model document as JSON")
    yk.set_defaults(func=cmd_yank)

    de = sub.add_parser("describe", help="give a version its authors, licence, references, DOIs and keywords (its "
                                         "owner or an admin; replaces what was given before)")
    de.add_argument("model", metavar="MODEL@VERSION")
    de.add_argument("--author", action="append", default=[], help="repeat for more")
    de.add_argument("--license", help="an SPDX identifier: MIT, GPL-2.0-or-later, CC-BY-4.0, ...")
    de.add_argument("--reference", action="append", default=[], help="a citation, as text (repeatable)")
    de.add_argument("--doi", action="append", default=[], help="10.NNNN/suffix (repeatable)")
    de.add_argument("--keyword", action="append", default=[], help="a word it is found by (repeatable)")
    remote_options(de, "print the model document as JSON")
    de.set_defaults(func=cmd_describe)

    uy = sub.add_parser("unyank", help="undo a yank: unpinned references may choose the version again")
    uy.add_argument("model", metavar="MODEL@VERSION")
    remote_options(uy, "print the model document as JSON")
    uy.set_defaults(func=cmd_yank, unyank=True)

    ch = sub.add_parser("characterise", help="queue characterisations again (the workers run them): of "
                                             "MODEL[@VERSION], or --all of every neuron version you own")
    ch.add_argument("model", nargs="?", metavar="MODEL[@VERSION]")
    ch.add_argument("--all", action="store_true", help="every neuron version you own (an admin: every one)")
    remote_options(ch, "print what was queued as JSON")
    ch.set_defaults(func=cmd_characterise)

    pl = sub.add_parser("pull", help="download a model's module for this machine's NEST and print its path")
    pl.add_argument("model", metavar="MODEL[@VERSION]")
    pl.add_argument("--toolchain", metavar="ID", help="the toolchain to resolve for (default: this machine's)")
    pl.add_argument("--cache", type=Path, metavar="DIR",
                    help="the module cache (default: $NESTML_REGISTRY_MODULE_CACHE, else "
                         "~/.cache/nestml-registry/modules)")
    remote_options(pl, 'print {"model", "version", "path", "sha256"} as JSON')
    pl.set_defaults(func=cmd_pull)


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    with registry_client(args) as client:
        models = client.models(args.search, args.kind, args.owner, args.verdict)
    if args.json:
        print_json(models)
    elif not models and (args.search or args.kind or args.owner or args.verdict):
        print("no model matches: the search looks in names, the first line of a model's comment and the names of "
              "its parameters and state variables", file=sys.stderr)
    elif not models:
        print("no models in the registry yet: publish some with 'nestml-registry push FILE.nestml'", file=sys.stderr)
    else:
        console.print_models(models, sys.stdout)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with registry_client(args) as client:
        detail = client.model(args.model)
        shown = console.choose_version(detail, args.model) or {}
        characterisation = client.characterisation(detail["name"], shown["version"]) if not args.json else None
    if args.json:
        print_json(detail)
    else:
        console.print_model(detail, args.model, sys.stdout)
        if characterisation is not None:
            console.print_verdict(characterisation.get("check") or {}, sys.stdout)
            if shown.get("kind") == "neuron":
                console.print_characterisation(characterisation, sys.stdout)
    return EXIT_OK


def cmd_characterise(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.model) == bool(args.all):
        raise UsageError("give a model (MODEL or MODEL@VERSION) or --all, not both or neither")
    with registry_client(args) as client:
        rows = client.characterise(args.model, args.all)
    if args.json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        where = f"on {r.get('toolchain')}" if r.get("status") == "queued" else f"({r.get('reason')})"
        print(f"{r.get('model')}@{r.get('version')}: {r.get('status')} {where}")
    if not rows:
        print("no neuron model versions to characterise", file=sys.stderr)
    return EXIT_OK


def cmd_describe(args: argparse.Namespace, settings: Settings) -> int:
    given = {"authors": args.author, "license": args.license, "references": args.reference, "dois": args.doi,
             "keywords": args.keyword}
    with registry_client(args) as client:
        detail = client.describe(args.model, given)
    if args.json:
        print_json(detail)
        return EXIT_OK
    shown = (detail.get("versions") or [{}])[0]
    found = shown.get("metadata") or {}
    print(f"{detail.get('name')}@{shown.get('version')}: " + "; ".join(
        f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in found.items() if v) or "no metadata")
    return EXIT_OK


def cmd_yank(args: argparse.Namespace, settings: Settings) -> int:
    name, number = _versioned(args.model)
    reference = f"{name}@{number}"
    with registry_client(args) as client:
        detail = client.unyank(reference) if getattr(args, "unyank", False) else client.yank(reference, args.reason)
    if args.json:
        print_json(detail)
    elif getattr(args, "unyank", False):
        print(f"{detail.get('name')}@{number} is no longer yanked: unpinned references may choose it again")
    else:
        print(f"{detail.get('name')}@{number} yanked: unpinned references skip it; {detail.get('name')}@{number} and "
              "lock files still resolve it ('nestml-registry unyank' undoes this)")
    return EXIT_OK


def cmd_source(args: argparse.Namespace, settings: Settings) -> int:
    with registry_client(args) as client:
        detail = client.model(args.model)
    version = console.choose_version(detail, args.model) or {}
    source = version.get("source")
    if not source:
        raise UsageError(f"{args.model}: the registry keeps no source text for this version (it was published "
                         "before sources were kept)")
    if args.json:
        print_json(source)
    else:
        sys.stdout.write(source["text"] if source["text"].endswith("\n") else source["text"] + "\n")
    return EXIT_OK


def _versioned(reference: str) -> tuple[str, int]:
    """``NAME@VERSION`` as every reference is read (resolving.parse_reference); a version is required."""
    from nestml_registry.registry.resolving import parse_reference  # imports SQLAlchemy: only when used

    problem: Exception | None = None
    try:
        name, number = parse_reference(reference)
    except InvalidReference as exc:
        problem, number = exc, None
    if number is None:
        raise UsageError(f"{reference!r}: name a version, like custom_izh_neuron@1 (see `nestml-registry show "
                         "MODEL` for its versions)") from problem
    return name, number


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    (name, older), (other, newer) = _versioned(args.older), _versioned(args.newer)
    if name != other:
        raise UsageError(f"{args.older} and {args.newer} are not versions of one model: diff compares two "
                         f"versions of the same model, e.g. {name}@{older} {name}@{newer}")
    with registry_client(args) as client:
        diff = client.model_diff(name, older, newer)
    if args.json:
        print_json(diff)
    else:
        console.print_diff(diff, sys.stdout)
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
    with registry_client(args) as client:
        found = client.resolve(args.model, toolchain)
        module = found.get("module") or {}
        path = cache.fetch(client, module["sha256"], module["name"])
    if found.get("yanked"):  # as run says it: a pinned version that was withdrawn
        print(f"warning: {found.get('model')}@{found.get('version')} is yanked: {found['yanked']} (it is pinned, so "
              "it is pulled; an unpinned reference would skip it)", file=sys.stderr)
    if args.json:
        print_json({"model": found.get("model"), "version": found.get("version"), "path": str(path),
                    "sha256": module["sha256"], "kind": found.get("kind"), "module": module["name"],
                    "toolchain": toolchain})
    else:
        print(f"{found.get('model')}@{found.get('version')} ({found.get('kind')}) in {module['name']}, "
              f"sha256 {module['sha256']}", file=sys.stderr)
        print(path)
    return EXIT_OK
