"""The ``check`` command of the ``nestml-registry`` CLI: a published model against a NEST built-in
(``--against nest:NAME``) or another version (``--against MODEL@V``), under the same stimuli
(:mod:`nestml_registry.compiler.comparison`). Exit 0: they agree; 1: they differ; 2: bad input."""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from nestml_registry.cli import console
from nestml_registry.cli.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    print_json,
    registry_client,
    remote_options,
    report_error,
)
from nestml_registry.compiler.characteriser import Characteriser
from nestml_registry.compiler.checking import compare_sides
from nestml_registry.compiler.comparison import Report, Side, Tolerances, align, membrane_of
from nestml_registry.compiler.counterparts import Counterpart, counterpart_of
from nestml_registry.compiler.errors import CheckFailed, CompilerError, InputError
from nestml_registry.compiler.synapse_check import PAIR_MARK, check_synapse
from nestml_registry.service.settings import Settings
from nestml_registry.simulator.errors import SimulatorError


def add_parser(sub: Any) -> None:
    c = sub.add_parser("check", help="run a model and a NEST built-in (or another version) under the same stimuli "
                                     "and compare: exit 0 agree, 1 differ, 2 bad input; a synapse is compared with a "
                                     "built-in synapse by its weights")
    c.add_argument("model", metavar="MODEL[@VERSION]")
    c.add_argument("--against", required=True, metavar="nest:BUILTIN|MODEL@VERSION",
                   help="what to compare with: a NEST built-in (nest:izhikevich; parameters are copied by name, "
                        "--map for the rest) or another version of a registry model (MODEL@VERSION)")
    c.add_argument("--map", action="append", default=[], metavar="NESTML=NEST",
                   help="set the built-in's parameter or state variable NEST from the model's NESTML (repeatable; "
                        "NESTML= leaves it out); those of the same name are set without it, and a state variable "
                        "mapped to V_m is the membrane potential compared")
    t = Tolerances()
    c.add_argument("--spike-tolerance", type=float, default=t.spike_ms, metavar="MS",
                   help=f"spike times agree within this (default {t.spike_ms:g} ms) ...")
    c.add_argument("--drift", type=float, default=t.drift, metavar="FRACTION",
                   help=f"... plus this fraction of the time since the stimulus began (default {t.drift:g})")
    c.add_argument("--vm-tolerance", type=float, default=t.vm_mv, metavar="MV",
                   help=f"V_m agrees within this until the first spike (default {t.vm_mv:g} mV)")
    c.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS", help="for each NEST process")
    c.add_argument("--cache", type=Path, metavar="DIR", help="the module cache (as for pull)")
    remote_options(c, "print the report as JSON")
    c.set_defaults(func=cmd_check)


def _maps(entries: list[str]) -> dict[str, str]:
    out = {}
    for e in entries:
        source, eq, target = e.partition("=")
        if not eq or not source.strip():
            raise UsageError(f"--map {e!r}: write NESTML=NEST, e.g. --map refr_T=t_ref (or refr_T= to leave it out)")
        out[source.strip()] = target.strip()
    return out


def _side(client: Any, cache: Any, reference: str, toolchain: str) -> tuple[Side, dict]:
    found = client.resolve(reference, toolchain)
    module = found.get("module") or {}
    path = cache.fetch(client, module["sha256"], module["name"])
    detail = client.model(f"{found['model']}@{found['version']}")
    version = dict((detail.get("versions") or [{}])[0])
    version["kind"] = found.get("kind", version.get("kind"))
    return Side(f"{found['model']}@{found['version']}", found["model"], path, module["sha256"]), version


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _check(args, settings)
    except SimulatorError as exc:
        return report_error(args, exc, EXIT_USAGE if exc.input_error else EXIT_FAILED)
    except InputError as exc:
        return report_error(args, exc, EXIT_USAGE)
    except CheckFailed as exc:
        return report_error(args, exc, EXIT_FAILED)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from nestml_registry.compiler.pipeline import Compiler
    from nestml_registry.simulator.cache import ModuleCache

    maps = _maps(args.map)
    tol = Tolerances(args.spike_tolerance, args.drift, args.vm_tolerance)
    compiler = Compiler(settings.compiler_config())
    try:
        toolchain = compiler.toolchain
    except CompilerError as exc:
        raise UsageError(f"cannot tell this machine's NEST toolchain: {exc}") from exc
    cache = ModuleCache(args.cache)
    with registry_client(args) as client:
        a, version = _side(client, cache, args.model, toolchain.id)
        if version["kind"] != "neuron":
            return _check_synapse(args, Characteriser(compiler, args.timeout), a, version, maps,
                                  toolchain.builtin_models)
        if args.against.startswith("nest:"):
            b = _builtin(args.against.removeprefix("nest:"), toolchain.builtin_models)
            alignment = align(version.get("parameters") or [], version.get("state") or [], maps)
            entry_a: dict[str, Any] = {"model": a.model, "membrane": alignment.membrane}
            entry_b: dict[str, Any] = {"model": b.model, "params": alignment.strict, "optional": alignment.optional,
                                       "membrane": "V_m"}
        else:
            if maps:
                raise UsageError("--map is for a NEST built-in (--against nest:NAME): two versions of a model keep "
                                 "their own parameters")
            b, other = _side(client, cache, args.against, toolchain.id)
            if other["kind"] != "neuron":
                raise InputError(f"{b.label} is a {other['kind']} model: compare a neuron with a neuron")
            alignment = None
            entry_a = {"model": a.model, "membrane": membrane_of(version.get("state") or [])}
            entry_b = {"model": b.model, "membrane": membrane_of(other.get("state") or [])}
    report = compare_sides(Characteriser(compiler, args.timeout), (a, entry_a), (b, entry_b), alignment, tol)
    if args.json:
        print_json(report.to_dict())
    else:
        _print(report)
    return EXIT_OK if report.agree else EXIT_FAILED


def _check_synapse(args: argparse.Namespace, runner: Characteriser, a: Side, version: dict, maps: dict[str, str],
                   builtins: tuple[str, ...]) -> int:
    """A synapse against a NEST built-in synapse: weight traces and the STDP window (a paired synapse), or
    efficacies against frequency (short-term plasticity); ``--map NAME=post.NEST`` sets the built-in's post
    neuron (``tau_tr_post=post.tau_minus``)."""
    if not args.against.startswith("nest:"):
        raise InputError("a synapse is checked against a NEST built-in synapse (--against nest:stdp_synapse)")
    b = _builtin(args.against.removeprefix("nest:"), builtins)
    known = counterpart_of(version.get("nestml_name"), "synapse")
    base = known if known is not None and known.builtin == b.model else \
        Counterpart(b.model, "synapse", {"w": "weight"}, rule="stdp" if PAIR_MARK in a.model else "stp")
    own = {k: v for k, v in maps.items() if not v.startswith("post.")}
    post = {k: v.removeprefix("post.") for k, v in maps.items() if v.startswith("post.")}
    counterpart = replace(base, maps={**base.maps, **own}, post_maps={**base.post_maps, **post})
    assert a.module is not None
    doc = check_synapse(runner, a.module, a.model, version, counterpart)
    if doc["verdict"] == "failed":
        raise CheckFailed(f"the synapse check failed: {doc.get('error')}")
    if args.json:
        print_json(doc)
    else:
        _print_synapse(a.label, doc)
    return EXIT_OK if doc["agree"] else EXIT_FAILED


def _print_synapse(label: str, doc: dict) -> None:
    out = sys.stdout
    out.write(f"{label} against {doc['against']} (one NEST process)\n")
    if doc["unmapped"]:
        out.write(f"not set on {doc['against']} (no such parameter; --map NAME=NEST, or NAME=post.NEST for its "
                  f"post neuron): {', '.join(doc['unmapped'])}\n")
    if doc["carried"]:
        out.write(f"set on {doc['against']} from the model, other than its defaults: " + ", ".join(
            f"{c['name']} {c['value']:g} (default {c['default']:g})" for c in doc["carried"]) + "\n")
    rows: list[list[Any]] = [["PROTOCOL", "EVENTS", "MAX WEIGHT DIFF", "AGREE"]]
    rows += [[r["stimulus"], f"{r['spikes'][0]} / {r['spikes'][1]}",
              "-" if r["max_weight_diff"] is None else f"{r['max_weight_diff']:.3g}", "yes" if r["agree"] else "NO"]
             for r in doc["stimuli"]]
    console.table(rows, out)
    out.write(f"{'agree' if doc['agree'] else 'DIFFER'} (every weight within {doc['tolerances']['weight']:g} of "
              "NEST's, relative to the larger of 1 and its size; '-': the counts differ)\n")


def _builtin(name: str, builtins: tuple[str, ...]) -> Side:
    if name not in builtins:
        close = difflib.get_close_matches(name, list(builtins), n=5, cutoff=0.6)
        raise InputError(f"NEST has no built-in model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                                   "; see nest.node_models for the names"))
    return Side(f"nest:{name}", name, None)


def _print(report: Report) -> None:
    out = sys.stdout
    out.write(f"{report.model} against {report.against} ({report.processes} NEST process"
              f"{'es' if report.processes > 1 else ''})\n")
    if report.unmapped:
        out.write(f"not set on {report.against} (no such parameter; --map NAME=NEST sets one): "
                  f"{', '.join(report.unmapped)}\n")
    if report.carried:
        out.write(f"set on {report.against} from the model, other than its defaults: " + ", ".join(
            f"{c['name']} {c['value']:g} (default {c['default']:g})" for c in report.carried) + "\n")
    if report.aligned:
        out.write("initial state from the model: " + ", ".join(
            f"{k} -> {v}" if k != v else k for k, v in sorted(report.aligned.items())) + "\n")
    if report.not_aligned:
        out.write(f"initial state not aligned (no such state on {report.against}; --map NAME=NEST sets one): "
                  f"{', '.join(report.not_aligned)}\n")
    rows: list[list[Any]] = [["STIMULUS", "SPIKES", "MAX DT (ms)", "MAX DV_m (mV)", "AGREE"]]
    rows += [[r["stimulus"], f"{r['spikes'][0]} / {r['spikes'][1]}",
              "-" if r["max_spike_time_diff_ms"] is None else f"{r['max_spike_time_diff_ms']:.3g}",
              "-" if r["max_vm_diff_mV"] is None else f"{r['max_vm_diff_mV']:.3g}",
              "yes" if r["agree"] else "NO"] for r in report.stimuli]
    console.table(rows, out)
    for note in report.notes:
        out.write(f"- {note}\n")
    t = report.tolerances
    out.write(f"{'agree' if report.agree else 'DIFFER'} (spike counts equal, spike times within {t['spike_ms']:g} ms "
              f"+ {t['drift']:g} x time since onset, V_m within {t['vm_mv']:g} mV before the first spike)\n")
