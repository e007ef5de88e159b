"""What NEST will know when the run builds the network, checked before anything is written.

Two refusals that NEST would otherwise make only once BMTK has emptied the output folder and connected
half the network: a model the config's ``components.nest_modules`` already registers under a name a
``nestml:`` module registers too (NEST refuses the second ``Install``), and an edge whose synapse model
NEST does not have (a typo such as ``tsodysk2_synapse``, with the close names). The names the
config's own modules register come from a short NEST process that installs them (only when the config
has ``nest_modules``), so this process has not imported NEST yet.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan
from nestml_registry.simulator.references import network_files, read_types_table, reference_of

logger = logging.getLogger(__name__)
_PROBE = """
import json, sys
import nest
nest.set_verbosity("M_ERROR")
before = set(nest.node_models) | set(nest.synapse_models)
errors = []
for path in sys.argv[1:]:
    try:
        nest.Install(path)
    except Exception as exc:
        errors.append(f"{path}: {exc}")
added = (set(nest.node_models) | set(nest.synapse_models)) - before
print("\\n" + json.dumps({"added": sorted(added), "errors": errors}))
"""


def module_paths(components: Mapping[str, Any]) -> list[str]:
    """What BMTK will ``nest.Install`` for ``components.nest_modules``: files (without ``.so``), every
    library of a folder, and bare names as they are."""
    given = components.get("nest_modules") or []
    out: list[str] = []
    for entry in [given] if isinstance(given, str) else list(given):
        path = Path(str(entry))
        if path.is_dir():
            out += [str(p.resolve().with_suffix("")) for p in sorted(path.glob("*.so"))]
        elif path.is_file():
            out.append(str(path.resolve().with_suffix("")) if path.suffix == ".so" else str(path.resolve()))
        else:
            out.append(str(entry))
    return out


def names_of_modules(paths: list[str], timeout: float = 120.0) -> set[str]:
    """The model names the config's own modules register (nothing when there are none or NEST fails: BMTK
    then says why itself)."""
    if not paths:
        return set()
    env = dict(os.environ, PYNEST_QUIET="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, *paths], capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        logger.info("could not ask NEST what components.nest_modules register: %s", exc)
        return set()
    return set(found.get("added") or [])


def edge_models(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(synapse model, edge types file)`` of every edge type that names a NEST model (not ``nestml:``)."""
    out = []
    for entry in network_files(config)[1]:
        table = entry.get("edge_types_file")
        for row in read_types_table(table) if table else []:
            template = str(row.get("model_template") or "").strip()
            if template and template.upper() != "NONE" and reference_of(template) is None:
                out.append((template.split(":", 1)[1] if template.startswith("nest:") else template, str(table)))
    return out


def check(plan: Plan, config: Mapping[str, Any]) -> None:
    """Refuse a name clash with ``nest_modules`` and an edge model NEST will not have (see the docstring)."""
    theirs = names_of_modules(module_paths(config.get("components") or {}))
    ours = {name: module for module in plan.modules() for name in module.registers}
    clash = sorted(n for n in theirs if n in ours)
    if clash:
        module = ours[clash[0]]
        raise SimulatorError(
            f"NEST already has a model named {clash[0]!r} from a module in components.nest_modules, so module "
            f"{module.name} ({module.sha256[:12]}) cannot be loaded: remove that module from nest_modules, or refer "
            "to the model with nestml: only (nothing was run and the output folder is as it was)", "name_clash",
            {"name": clash[0], "module": module.sha256})
    known = set(plan.toolchain.builtin_models) | theirs | set(ours)
    if not plan.toolchain.builtin_models:
        return  # this toolchain's detection did not list NEST's models: nothing to compare with
    for model, table in edge_models(config):
        if model not in known:
            close = difflib.get_close_matches(model, _synapses(known), n=3, cutoff=0.7)
            raise SimulatorError(
                f"{table}: the edge model {model!r} is no model NEST has"
                + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "")
                + " (nothing was run and the output folder is as it was)", "unknown_model",
                {"model": model, "close": close})


def _synapses(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if "synapse" in n)
