"""``@cell_model`` hooks for ``nestml:`` node types, found by every spelling of the model they mean.

A node type may say ``nestml:custom_izh_neuron``, ``nestml:custom_izh_neuron_nestml`` or
``nestml:custom_izh_neuron@2``; all three resolve to one model version, so a hook registered as
``@cell_model(directive='nestml:custom_izh_neuron_nestml')`` must run for each of them (BMTK itself
matches the template character for character, and drops the hook without a word otherwise).

The order is BMTK's, most specific first: the template as written; the same model with its version
(``nestml:<name>@<version>``, under each of its names); the model by name alone; then the generic
``nestml`` directive. For each directive, a hook for the node type's ``model_type`` beats one for any
type (BMTK's ``cell_model`` rule).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan, Resolved
from nestml_registry.simulator.references import reference_of

logger = logging.getLogger(__name__)
SCHEMA = "nestml"


def names_of(r: Resolved) -> list[str]:
    """The names a reference may give this model: NEST's (``x_nestml``), and the source's (``x``)."""
    names = [r.model]
    base = r.reference.split("@", 1)[0]
    for name in (base, r.model.removesuffix("_nestml")):
        if name not in names:
            names.append(name)
    return names


def spellings(template: str, r: Resolved) -> list[str]:
    """Every directive that means this node type's model, most specific first."""
    out = [template]
    for name in names_of(r):
        out.append(f"{SCHEMA}:{name}@{r.version}")
    for name in names_of(r):
        out.append(f"{SCHEMA}:{name}")
    out.append(SCHEMA)
    seen: list[str] = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return seen


def find_hook(py_modules: Any, template: object, model_type: object, plan: Plan | None) -> Callable | None:
    """The user's ``@cell_model`` function for a ``nestml:`` template, or None (not ``nestml:``, or none)."""
    reference = reference_of(template)
    if plan is None or reference is None or reference not in plan.resolved:
        return None
    kind = str(model_type) if model_type else "*"
    for directive in spellings(str(template), plan.resolved[reference]):
        if py_modules.has_cell_model(directive, kind):
            logger.debug("%s: @cell_model(directive=%r) builds it", template, directive)
            return py_modules.cell_model(directive, kind)
    return None


def unused(directives: Iterable[tuple[str, str]], plan: Plan) -> list[str]:
    """The ``nestml:<model>`` hook directives that name no model this network uses."""
    used: set[str] = set()
    for ref, r in plan.resolved.items():
        if r.kind == "neuron":
            used.update(spellings(f"{SCHEMA}:{ref}", r))
    return sorted({d for d, _ in directives if isinstance(d, str) and d.startswith(f"{SCHEMA}:") and d not in used})


def warn_unused(py_modules: Any, plan: Plan, say: Callable[[str], None] | None) -> list[str]:
    """Warn about each hook for a ``nestml:`` model the network does not use (a misspelt name, or a stale
    script): its jitter or its parameters would silently not apply."""
    names = sorted({r.model for r in plan.resolved.values() if r.kind == "neuron"})
    found = unused(py_modules.cell_models, plan)
    for directive in found:
        message = (f"@cell_model(directive={directive!r}) is never called: no node type of this network uses that "
                   f"model (its nestml: neurons: {', '.join(names) or 'none'})")
        if say is not None:  # the one line a user sees; the log keeps it too
            say(f"warning: {message}")
            logger.info(message)
        else:
            logger.warning(message)
    return found


def import_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Import the user's hook modules (``run --hooks FILE.py``), so that their ``@cell_model`` functions are
    registered before the network is built. Returns the module names."""
    names = []
    for given in paths:
        path = Path(given)
        if not path.is_file() or path.suffix != ".py":
            raise SimulatorError(f"--hooks {given}: no such Python file; give the .py file that defines your "
                                 "@cell_model functions", "missing_file")
        name = f"nestml_registry_hooks_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise SimulatorError(f"--hooks {given}: cannot be imported as a Python module", "invalid_hooks")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: any error, shown with where it happened
            del sys.modules[name]
            raise SimulatorError(f"--hooks {given}: importing it failed: {type(exc).__name__}: {exc}",
                                 "invalid_hooks") from exc
        names.append(name)
    return names
