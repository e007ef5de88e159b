"""The ``library`` commands of the ``nestml-registry`` CLI: ``library import`` publishes every model the
installed NESTML ships (:mod:`nestml_registry.compiler.library`), then follows the builds and the workers'
characterisations and checks against NEST's built-ins, printing a line for each as it ends. It is
idempotent (an identical push finds the build that published it) and so resumable: run it again after an
interruption, or against a registry whose workers run a new toolchain (``--toolchain``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from nestml_registry.cli import console
from nestml_registry.cli.command_line import EXIT_FAILED, EXIT_OK, print_json, registry_client, remote_options
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.library import KNOWN_LIMITS, LibraryBuild, plan, shipped_folder
from nestml_registry.service.client.errors import FINAL_STATUSES, RegistryClientError
from nestml_registry.service.settings import Settings

FINISHED = ("succeeded", "failed", "not_applicable")


def add_parsers(sub: Any) -> None:
    lib = sub.add_parser("library", help="NESTML's shipped model library: import it into the registry")
    lsub = lib.add_subparsers(dest="library_command", required=True, metavar="COMMAND")
    im = lsub.add_parser("import", help="publish every model the installed NESTML ships, then wait for the builds, "
                                        "characterisations and checks against NEST (idempotent, resumable)")
    im.add_argument("--from", dest="folder", type=Path, metavar="DIR",
                    help="a folder with neurons/*.nestml and synapses/*.nestml (default: the installed NESTML's)")
    im.add_argument("--only", default="", metavar="NAME[,NAME...]", help="only these models (NESTML names)")
    im.add_argument("--toolchain", metavar="ID", help="build for this toolchain (default: the registry's workers')")
    im.add_argument("--dry-run", action="store_true", help="print the builds it would submit, submit nothing")
    im.add_argument("--no-wait", action="store_true", help="submit the builds and return")
    im.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="give up waiting after this (the builds and checks go on)")
    remote_options(im, "print what was submitted, built and checked as JSON")
    im.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    builds = plan(args.folder or shipped_folder(), [n.strip() for n in args.only.split(",") if n.strip()])
    if args.dry_run:
        if args.json:
            print_json([b.to_dict() for b in builds])
        else:
            for b in builds:
                print(f"{b.kind:8} {b.model}" + (f" (paired with {b.pair.neuron})" if b.pair else ""))
        return EXIT_OK
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    out = None if args.json else sys.stdout
    with registry_client(args) as client:
        rows = [_submit(client, b, args.toolchain) for b in builds]
        _say(out, f"submitted {len(rows)} builds ({sum(r['status'] == 'succeeded' for r in rows)} already built)")
        if not args.no_wait:
            for i, row in enumerate(rows, 1):
                _finish(client, row, deadline)
                _say(out, f"[{i}/{len(rows)}] {_line(row)}")
            verdicts = [_verdict(client, row, m, deadline) for row in rows for m in _checked(row)]
            if out is not None and verdicts:
                _print_verdicts(verdicts, out)
        else:
            verdicts = []
    if args.json:
        print_json({"builds": rows, "verdicts": verdicts})
    failed = [r["model"] for r in rows if r["status"] == "failed" and r["model"] not in KNOWN_LIMITS]
    known = [r["model"] for r in rows if r["status"] == "failed" and r["model"] in KNOWN_LIMITS]
    if known and out is not None:
        print(f"{len(known)} the registry cannot build yet (known): {', '.join(known)}", file=sys.stderr)
    if failed and out is not None:
        print(f"{len(failed)} of {len(rows)} did not build: {', '.join(failed)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _say(out: Any, text: str) -> None:
    if out is not None:
        out.write(text + "\n")
        out.flush()


def _submit(client: Any, b: LibraryBuild, toolchain: str | None) -> dict[str, Any]:
    try:
        files = [(f.name, f.read_bytes()) for f in b.files]
    except OSError as exc:
        raise InputError(f"{b.model}: its source cannot be read ({exc}); run the import again when the folder is "
                         "whole (what was published stays)") from exc
    pairs = [b.pair.to_dict()] if b.pair else []
    build = client.submit_build(files, pairs=pairs, toolchain=toolchain)
    return {"model": b.model, "kind": b.kind, "build": build.get("id"), "status": build.get("status"),
            "already": build.get("status") == "succeeded", "document": build}


def _finish(client: Any, row: dict[str, Any], deadline: float | None) -> None:
    build = row.pop("document")
    if build.get("status") not in FINAL_STATUSES:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            build = client.wait_build(build["id"], timeout=left)
        except RegistryClientError as exc:
            if exc.code != "timeout":
                raise
            row["status"] = build.get("status")
            return
    row["status"] = build.get("status")
    if row["status"] == "failed" and row["model"] in KNOWN_LIMITS:
        row["known_limit"] = KNOWN_LIMITS[row["model"]]
    row["models"] = [{"name": m.get("name"), "kind": m.get("kind"), "version": m.get("version")}
                     for m in build.get("models") or []]
    diagnostics = build.get("diagnostics") or []
    if row["status"] == "failed":
        first = next((d for d in diagnostics if d.get("severity") == "error"), None) or {}
        row["error"] = first.get("message") or build.get("error") or "see the build log"


def _line(row: dict[str, Any]) -> str:
    if row["status"] == "failed" and row["model"] in KNOWN_LIMITS:
        return f"{row['model']}: not built (known: {KNOWN_LIMITS[row['model']]})"
    if row["status"] == "failed":
        return f"{row['model']}: failed (build {row['build']}): {row.get('error')}"
    if row["status"] != "succeeded":
        return f"{row['model']}: {row['status']} (build {row['build']}; follow it with 'nestml-registry build " \
               f"{row['build']} --wait')"
    models = ", ".join(f"{m['name']}@{m['version']}" for m in row.get("models") or [] if m.get("version"))
    return f"{row['model']}: {'already published' if row['already'] else 'published'} {models}"


def _checked(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The versions of a library build whose characterisation and check to wait for: its own model (the
    synapse of a pair, not the neuron it was paired with)."""
    if row["status"] != "succeeded":
        return []
    return [m for m in row.get("models") or [] if m.get("version") and m["kind"] == row["kind"]][:1]


def _verdict(client: Any, row: dict[str, Any], m: dict[str, Any], deadline: float | None) -> dict[str, Any]:
    while True:
        doc = client.characterisation(m["name"], m["version"])
        check = doc.get("check") or {}
        done = doc.get("status") in (*FINISHED, "none")
        if done or (deadline is not None and time.monotonic() > deadline):
            return {"model": m["name"], "version": m["version"], "status": doc.get("status"),
                    "rheobase_pA": doc.get("rheobase_pA"), "verdict": check.get("verdict"),
                    "summary": check.get("summary"), "explanation": check.get("explanation")}
        time.sleep(1.0)


def _print_verdicts(verdicts: list[dict[str, Any]], out: Any) -> None:
    rows: list[list[Any]] = [["MODEL", "CHARACTERISED", "RHEOBASE (pA)", "AGAINST NEST"]]
    rows += [[f"{v['model']}@{v['version']}", v["status"] or "",
              "" if v["rheobase_pA"] is None else f"{v['rheobase_pA']:.4g}", v["summary"] or ""] for v in verdicts]
    out.write("\n")
    console.table(rows, out)
