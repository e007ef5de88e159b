"""Checks made before NEST is touched: one version per model, modules that NEST can load together,
no clash with NEST's own models, and ``dynamics_params`` keys that the models have."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan
from nestml_registry.simulator.references import Use

# keys NEST accepts in a synapse's parameters besides the model's own
SYNAPSE_KEYS = frozenset({"weight", "delay", "receptor_type", "synapse_model"})
# where BMTK looks for a node type's dynamics_params file, by model_type
_NODE_PARAMS_DIR = {"point_neuron": "point_neuron_models_dir", "point_process": "point_neuron_models_dir",
                    "point_soma": "point_neuron_models_dir", "virtual": "filter_models_dir"}


def check_versions(plan: Plan) -> None:
    """One NEST process loads one version of a model: refuse references to two versions of one."""
    by_model: dict[str, dict[int, list[str]]] = {}
    for ref, r in plan.resolved.items():
        by_model.setdefault(r.model, {}).setdefault(r.version, []).append(f"nestml:{ref}")
    clashes = {m: vs for m, vs in by_model.items() if len(vs) > 1}
    if clashes:
        text = "; ".join(f"{m} as " + " and ".join(f"version {v} ({', '.join(refs)})" for v, refs in sorted(vs.items()))
                         for m, vs in clashes.items())
        raise SimulatorError(f"the network asks for two versions of one model: {text}. One NEST process loads one "
                             "version of a model: refer to the same version everywhere (nestml:NAME@VERSION)",
                             "version_conflict", {"models": {m: sorted(vs) for m, vs in clashes.items()}})


def check_modules(plan: Plan) -> None:
    """Two modules that register one name cannot both be loaded; nor can a module that registers a
    name NEST already has built in."""
    owner: dict[str, str] = {}
    for module in plan.modules():
        for name in module.registers:
            if name in plan.toolchain.builtin_models:
                raise SimulatorError(f"module {module.name} ({module.sha256[:12]}) registers {name!r}, which NEST has "
                                     "built in: NEST cannot load it. Rebuild the model with a suffix (the default "
                                     "'_nestml')", "name_clash", {"name": name, "module": module.sha256})
            other = owner.setdefault(name, module.name)
            if other != module.name:
                raise SimulatorError(f"modules {other} and {module.name} both register {name!r}; one NEST process "
                                     "cannot load both: refer to models of one module, or rebuild one of them into "
                                     "the other's module", "name_clash", {"name": name})


def _params_dir(use: Use, components: Mapping[str, Any]) -> str | None:
    if use.kind == "edge":
        return components.get("synaptic_models_dir")
    return components.get(_NODE_PARAMS_DIR.get(use.model_type or "", "custom_neuron_models"))


def load_params(use: Use, components: Mapping[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The dynamics_params JSON of a use, or None when it names none. Raises for a missing or bad file."""
    if not use.dynamics_params:
        return None
    directory = _params_dir(use, components)
    path = Path(directory or ".") / use.dynamics_params
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        where = "components.synaptic_models_dir" if use.kind == "edge" else "the components' model folder"
        raise SimulatorError(f"{use.where}: its dynamics_params file {path} does not exist (looked in {where})",
                             "missing_file", {"file": str(path)}) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SimulatorError(f"{use.where}: its dynamics_params file {path} is not valid JSON ({exc})",
                             "invalid_params", {"file": str(path)}) from exc
    if not isinstance(data, dict):
        raise SimulatorError(f"{use.where}: its dynamics_params file {path} holds {type(data).__name__}, not a JSON "
                             "object of parameter values", "invalid_params", {"file": str(path)})
    return path, data


def check_params(plan: Plan, uses: list[Use], components: Mapping[str, Any]) -> None:
    """Every dynamics_params key of a ``nestml:`` type is a parameter or state variable of its model."""
    problems = []
    for use in uses:
        found = load_params(use, components)
        r = plan.resolved.get(use.reference)
        if found is None or r is None or not (r.parameters or r.state):
            continue  # no file, or a model whose variables the registry does not know: NEST will judge
        path, data = found
        valid = set(r.parameters) | set(r.state) | (SYNAPSE_KEYS if r.kind == "synapse" else set())
        for key in data:
            if key in valid:
                continue
            if key in r.continuous_ports:
                problems.append(f"{use.where}: {path.name} sets {key!r}, but in {r.label} {key!r} is a continuous "
                                "input port, not a parameter: a current drives it (BMTK's IClamp input or a "
                                "step_current_generator connected to the cells); to set it as a constant, declare "
                                f"it in the model's parameters block ({key} pA = 0 pA) and push the model again")
                continue
            close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(f"{use.where}: {path.name} sets {key!r}, which {r.label} does not have; {hint}"
                            f"its parameters are {', '.join(r.parameters) or 'none'}"
                            + (f" and its state variables {', '.join(r.state)}" if r.state else ""))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SimulatorError(problems[0] + more, "invalid_parameter", {"problems": problems})
