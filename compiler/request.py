"""What to compile: sources, module name, suffix, neuron-synapse pairs; validated before any work."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nestml_registry.compiler.diagnostics import Diagnostic
from nestml_registry.compiler.errors import InputError
from nestml_registry.compiler.sources import ModelDecl, Source

MODULE_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*module$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9_]*$")
MAX_FILES = 64
DEFAULT_SUFFIX = "_nestml"


PAIR_MARK = "__with_"  # NEST's names of a pair: N_nestml__with_S_nestml and S_nestml__with_N_nestml


@dataclass(frozen=True)
class Pair:
    """A neuron and a synapse generated together (the synapse reads the neuron's state)."""

    neuron: str
    synapse: str
    post_ports: tuple[str, ...] | None = None  # None: the synapse's spike ports named post*

    @classmethod
    def parse(cls, text: str) -> Pair:
        """``NEURON:SYNAPSE`` or ``NEURON:SYNAPSE:PORT[,PORT...]``."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(_IDENT_RE.fullmatch(p) for p in parts[:2]):
            raise InputError(f"invalid pair {text!r}: write NEURON:SYNAPSE, e.g. iaf_psc_exp_neuron:stdp_synapse")
        ports = None
        if len(parts) == 3:
            ports = tuple(p.strip() for p in parts[2].split(",") if p.strip())
            if not ports or not all(_IDENT_RE.fullmatch(p) for p in ports):
                raise InputError(f"invalid post ports in pair {text!r}: give port names separated by commas")
        return cls(parts[0], parts[1], ports)

    @classmethod
    def from_dict(cls, data: object) -> Pair:
        if not isinstance(data, dict) or not isinstance(data.get("neuron"), str) \
                or not isinstance(data.get("synapse"), str):
            raise InputError('a pair is {"neuron": NAME, "synapse": NAME, "post_ports": [PORT, ...] (optional)}')
        ports = data.get("post_ports")
        if ports is not None and (not isinstance(ports, list) or not all(isinstance(p, str) for p in ports)):
            raise InputError("post_ports must be a list of port names")
        text = f"{data['neuron']}:{data['synapse']}" + (f":{','.join(ports)}" if ports else "")
        return cls.parse(text)

    def to_dict(self) -> dict:
        d: dict = {"neuron": self.neuron, "synapse": self.synapse}
        if self.post_ports is not None:
            d["post_ports"] = list(self.post_ports)
        return d

    def __str__(self) -> str:
        return f"{self.neuron}:{self.synapse}" + (f":{','.join(self.post_ports)}" if self.post_ports else "")


@dataclass(frozen=True)
class BuildRequest:
    """A validated request to build one NEST module from one or more sources."""

    sources: tuple[Source, ...]
    module: str
    suffix: str = DEFAULT_SUFFIX
    pairs: tuple[Pair, ...] = ()
    weight_variables: tuple[tuple[str, str], ...] = ()  # (synapse, variable); others are found
    delay_variables: tuple[tuple[str, str], ...] = ()  # (synapse, variable NEST's connection delay is)

    @classmethod
    def create(cls, sources: list[Source], module: str | None = None, suffix: str = DEFAULT_SUFFIX,
               pairs: list[Pair] | tuple[Pair, ...] = (), weight_variables: dict[str, str] | None = None,
               delay_variables: dict[str, str] | None = None) -> BuildRequest:
        if not sources:
            raise InputError("no sources: give at least one .nestml file")
        if len(sources) > MAX_FILES:
            raise InputError(f"{len(sources)} files: at most {MAX_FILES} go into one module")
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"two files have the same name {dupes[0]!r}: rename one of them")
        if not _SUFFIX_RE.fullmatch(suffix):
            raise InputError(f"invalid suffix {suffix!r}: use letters, digits and '_' only")
        ordered = tuple(sorted(sources, key=lambda s: s.name))
        declared = {m.name for s in ordered for m in s.models()}
        norm_pairs = tuple(_check_pair(p, declared, suffix) for p in pairs)
        weights = tuple(sorted(_check_synapse_variable(s, v, declared, suffix)
                               for s, v in (weight_variables or {}).items()))
        delays = tuple(sorted(_check_synapse_variable(s, v, declared, suffix, "delay")
                              for s, v in (delay_variables or {}).items()))
        if module is None:
            module = default_module_name(ordered, suffix)
        elif not MODULE_NAME_RE.fullmatch(module):
            raise InputError(
                f"invalid module name {module!r}: it must start with a letter or '_', contain only letters, "
                "digits and '_', and end in 'module' (e.g. my_neurons_module)"
            )
        return cls(ordered, module, suffix, norm_pairs, weights, delays)

    @classmethod
    def from_dict(cls, sources: list[Source], data: dict) -> BuildRequest:
        """The request stored with a build (see :meth:`to_dict`), for the given sources."""
        return cls.create(sources, module=data.get("module"), suffix=data.get("suffix", DEFAULT_SUFFIX),
                          pairs=[Pair.from_dict(p) for p in data.get("pairs") or []],
                          weight_variables=dict(data.get("weight_variables") or {}),
                          delay_variables=dict(data.get("delay_variables") or {}))

    def declared_models(self) -> list[tuple[Source, ModelDecl]]:
        return [(s, m) for s in self.sources for m in s.models()]

    def precheck(self, builtin_models: tuple[str, ...] | list[str]) -> list[Diagnostic]:
        """Problems found without running NESTML: a model defined twice, a name NEST already has."""
        diags: list[Diagnostic] = []
        seen: dict[str, tuple[Source, ModelDecl]] = {}
        builtins = set(builtin_models)
        paired = {p.synapse for p in self.pairs}  # generated under the pair's name only, never their own
        for src, decl in self.declared_models():
            if decl.name in seen:
                first_src, first = seen[decl.name]
                diags.append(Diagnostic.error(
                    f"model '{decl.name}' is defined twice: also at {first_src.name}:{first.line}; "
                    "rename one of them or drop one file", src.name, decl.line, 1, "DUPLICATE_MODEL"))
                continue
            seen[decl.name] = (src, decl)
            registered = decl.name + self.suffix
            if registered in builtins and decl.name not in paired:
                diags.append(Diagnostic.error(
                    f"model '{decl.name}' would register as '{registered}', which NEST already has built in; "
                    f"keep the default suffix '{DEFAULT_SUFFIX}' or rename the model",
                    src.name, decl.line, 1, "NAME_CLASHES_WITH_NEST"))
        return diags

    def to_dict(self) -> dict:
        return {
            "sources": [{"name": s.name, "sha256": s.sha256} for s in self.sources],
            "module": self.module,
            "suffix": self.suffix,
            "pairs": [p.to_dict() for p in self.pairs],
            "weight_variables": dict(self.weight_variables),
            # only when given: the build keys of every request without them stay what they were
            **({"delay_variables": dict(self.delay_variables)} if self.delay_variables else {}),
        }


def _check_pair(pair: Pair, declared: set[str], suffix: str) -> Pair:
    def strip(name: str) -> str:
        if name not in declared and suffix and name.endswith(suffix) and name[: -len(suffix)] in declared:
            return name[: -len(suffix)]
        return name

    neuron, synapse = strip(pair.neuron), strip(pair.synapse)
    known = ", ".join(sorted(declared)) or "none"
    for role, name in (("neuron", neuron), ("synapse", synapse)):
        if name not in declared:
            raise InputError(f"pair {pair}: no {role} model '{name}' in the given files (they define: {known})")
    if not synapse.endswith("synapse"):
        raise InputError(f"pair {pair}: '{synapse}' is not a synapse model (NESTML synapse names end in 'synapse')")
    if neuron.endswith("synapse"):
        raise InputError(f"pair {pair}: '{neuron}' is a synapse model; the first name must be the neuron")
    return Pair(neuron, synapse, pair.post_ports)


def parse_weight_variable(text: str, role: str = "weight") -> tuple[str, str]:
    """``SYNAPSE:VARIABLE`` (or ``SYNAPSE=VARIABLE``); ``role`` "delay" for a delay variable."""
    parts = text.replace("=", ":").split(":")
    if len(parts) != 2 or not all(_IDENT_RE.fullmatch(p) for p in parts):
        example = "stdp_synapse:w" if role == "weight" else "stdp_synapse:d"
        raise InputError(f"invalid {role} variable {text!r}: write SYNAPSE:VARIABLE, e.g. {example}")
    return parts[0], parts[1]


def _check_synapse_variable(synapse: str, variable: str, declared: set[str], suffix: str,
                  role: str = "weight") -> tuple[str, str]:
    if synapse not in declared and suffix and synapse.removesuffix(suffix) in declared:
        synapse = synapse.removesuffix(suffix)
    synapses = sorted(n for n in declared if n.endswith("synapse"))
    if synapse not in synapses:
        raise InputError(f"{role} variable for '{synapse}': no such synapse model in the given files "
                         f"(synapses: {', '.join(synapses) or 'none'})")
    if not _IDENT_RE.fullmatch(variable):
        raise InputError(f"invalid {role} variable name {variable!r} for '{synapse}'")
    return synapse, variable


def default_module_name(sources: tuple[Source, ...], suffix: str) -> str:
    """A name that says what the module holds: ``<model><suffix>_module`` for one model,
    ``<a>_<b><suffix>_module`` for a few (a pair), ``<a>_and_<n>_more_<digest>_module`` for many."""
    models = [m.name for s in sources for m in s.models()]
    joined = "_".join(models)
    if models and len(joined) + len(suffix) <= 80:
        return f"{joined}{suffix}_module"
    digest = hashlib.sha256("".join(s.sha256 for s in sources).encode()).hexdigest()[:8]
    if not models or len(models[0]) > 60:
        return f"nestml_{digest}_module"
    return f"{models[0]}_and_{len(models) - 1}_more_{digest}_module"
