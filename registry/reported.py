"""What a worker reports of a succeeded build, held against the build itself before anything is published.

A worker compiles; it does not decide what is published. Whatever a worker says (a database worker or
one that reaches the registry over HTTP with a worker token that may have been stolen), the registry
publishes only what the build's own request and sources allow:

- the module's name is the one the build asked for;
- each model name is one the sources declare, with the build's suffix: ``<model><suffix>``, the pair
  names ``<neuron><suffix>__with_<synapse><suffix>`` and ``<synapse><suffix>__with_<neuron><suffix>`` of
  the build's pairs, and NEST's ``_hpc``/``_lbl`` variants of these; every model of the sources
  outside a pair is there;
- each model's NESTML name, source file and source digest are the registry's own (from the stored
  sources), never the worker's.

A report that disagrees raises :class:`~nestml_registry.registry.errors.InvalidInput`: the build fails
with the reason, and nothing is published.
"""

from __future__ import annotations

from typing import Any

from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.records import declared_models
from nestml_registry.registry.resolving import DEFAULT_SUFFIX
from nestml_registry.registry.tables import Build

VARIANTS = ("_hpc", "_lbl")


def checked_models(build: Build, module_name: str, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``models`` as the worker reported them, with the registry's own NESTML names and sources; raises
    :class:`InvalidInput` when the report is not what the build's request and sources give."""
    request = build.request or {}
    if module_name != request.get("module"):
        raise InvalidInput(f"the worker reported the module {module_name[:100]!r} for a build of "
                           f"{request.get('module')!r}: nothing was published")
    suffix = request.get("suffix", DEFAULT_SUFFIX) or ""
    declared = {name: bs for bs in build.sources for name in declared_models(bs.source)}
    allowed = _allowed_names(set(declared), suffix, list(request.get("pairs") or []))
    if not models:
        raise InvalidInput("the worker reported a module that registers no model: nothing was published")
    out = []
    for model in models:
        name = str(model.get("name") or "")
        nestml_name = allowed.get(name)
        if nestml_name is None:
            raise InvalidInput(f"the worker reported the model {name[:100]!r}, which the build's sources do not "
                               f"declare (they declare {', '.join(sorted(declared))}, suffix {suffix!r}): nothing "
                               "was published")
        source = declared[nestml_name]
        out.append(dict(model, nestml_name=nestml_name, source=source.name, source_sha256=source.source.sha256,
                        variants=[v for v in model.get("variants") or [] if v in allowed]))
    paired = {p.get(role) for p in request.get("pairs") or [] for role in ("neuron", "synapse")}
    reported = {m["name"] for m in out}
    missing = [f"{n}{suffix}" for n in sorted(declared) if n not in paired and f"{n}{suffix}" not in reported]
    if missing:
        raise InvalidInput(f"the worker's report leaves out {', '.join(missing)}, which the build's sources "
                           "declare: nothing was published")
    return out


def _allowed_names(declared: set[str], suffix: str, pairs: list[dict[str, Any]]) -> dict[str, str]:
    """NEST name -> the NESTML model it comes from, for every name the build may register."""
    allowed = {f"{name}{suffix}": name for name in declared}
    for pair in pairs:
        neuron, synapse = pair.get("neuron"), pair.get("synapse")
        if neuron in declared and synapse in declared:
            allowed[f"{neuron}{suffix}__with_{synapse}{suffix}"] = neuron
            allowed[f"{synapse}{suffix}__with_{neuron}{suffix}"] = synapse
    for name, base in list(allowed.items()):  # NEST's variants of a synapse (a neuron has none)
        allowed.update({name + v: base for v in VARIANTS})
    return allowed
