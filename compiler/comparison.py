"""Comparing two neuron models under the same stimuli (``nestml-registry check``, and the workers' checks of
a version against its NEST counterpart, :mod:`nestml_registry.compiler.counterparts`): does a model behave
like a NEST built-in, or like another version?

Both get the same stimuli (current steps below and above the first model's rheobase, and input spikes)
in NEST child processes run as the build steps are (:class:`~nestml_registry.compiler.characteriser.
Characteriser`): one process where both can be loaded together (a built-in, or the same module), two
where they cannot (two versions of one model register the same name). Against a built-in, the model's
parameters and initial states (as NEST has them) are set on the built-in by name, ``--map NESTML=NEST`` for
the rest, and the model's membrane potential (``V_m``, or its state variable in volts) is compared with the
built-in's ``V_m``; the report says what was carried over with values other than the built-in's defaults,
which initial states could not be aligned, and what a ``-`` in a column means.

Per stimulus: the spike counts must be equal, each spike time within ``spike_ms`` plus ``drift`` times the
time since the stimulus began (integrators drift apart over a long run), and V_m within ``vm_mv`` until the
first spike of either model, less SPIKE_GUARD_MS (from the upstroke on, a spike-time difference dominates
any V_m difference).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nestml_registry.compiler import protocol
from nestml_registry.compiler.errors import InputError

VERDICTS = ("agrees", "differs", "failed")  # of a check against a NEST counterpart, as stored
SPIKE_GUARD_MS = 2.0  # V_m is compared until this long before the first spike of either model


@dataclass(frozen=True)
class Tolerances:
    spike_ms: float = 1.0
    drift: float = 0.01
    vm_mv: float = 0.5


@dataclass(frozen=True)
class Side:
    """One of the two models: its NEST name, the module to load (None: a built-in), and its label."""

    label: str
    model: str
    module: Path | None
    module_sha256: str | None = None


_VOLTAGE_RE = re.compile(r"(?:da|[afpnuµmckMG])?V")


def membrane_of(state: list[dict], maps: dict[str, str] | None = None) -> str | None:
    """The model's membrane potential: ``V_m``, else the state variable mapped to ``V_m``, else its first
    state variable in volts (``v mV`` of the Izhikevich models); None when it has none."""
    names = [v["name"] for v in state if isinstance(v, dict) and v.get("name")]
    mapped = [n for n in names if (maps or {}).get(n) == "V_m"]
    volts = [v["name"] for v in state if isinstance(v, dict) and v.get("name")
             and _VOLTAGE_RE.fullmatch(str(v.get("type") or "").strip())]
    return "V_m" if "V_m" in names else next(iter(mapped + volts), None)


@dataclass(frozen=True)
class Alignment:
    """What of the model is set on the built-in: ``strict`` the ``--map`` targets (the built-in must have
    them), ``optional`` the same-name (or renamed) parameters and initial states (set where it has them);
    which of the model's parameters went to which name (``parameters``); its membrane variable; and which
    built-in state each of its state variables would start from (same name, mapped, or its membrane
    variable for ``V_m``)."""

    strict: dict[str, float]
    optional: dict[str, float]
    parameters: dict[str, str]
    membrane: str | None
    aligned: dict[str, str]


def align(parameters: list[dict], state: list[dict], maps: dict[str, str],
          renames: dict[str, str] | None = None) -> Alignment:
    """How the model's ``parameters`` and ``state`` (as the version document has them) go onto a built-in:
    ``maps`` (``--map``) must be the built-in's; ``renames`` (NESTML's usual names for NEST's, from
    :mod:`~nestml_registry.compiler.counterparts`) are set where the built-in has them, as same names are."""
    params = {p["name"]: p.get("value") for p in parameters if isinstance(p, dict) and p.get("name")}
    states = {v["name"]: v.get("value") for v in state if isinstance(v, dict) and v.get("name")}
    declared = {**states, **params}
    for source in maps:
        if source not in declared:
            close = difflib.get_close_matches(source, sorted(declared), n=4, cutoff=0.5)
            raise InputError(f"--map {source}=...: the model has no parameter or state variable {source!r}"
                            + (f" (closest: {', '.join(close)})" if close else
                               f"; its parameters: {', '.join(sorted(params)) or 'none'}; its state: "
                               f"{', '.join(sorted(states)) or 'none'}"))
    strict: dict[str, float] = {}
    optional: dict[str, float] = {}
    aligned: dict[str, str] = {}
    targets: dict[str, str] = {}
    for name, value in declared.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # not a number NEST holds (e.g. -inf, stored as text): the built-in keeps its own
        target = maps.get(name, (renames or {}).get(name, name))
        if not target:
            continue  # --map NAME= (or a counterpart's rename to "") leaves it out
        (strict if name in maps else optional)[target] = float(value)
        if name in states:
            aligned[name] = target
        if name in params:
            targets[name] = target
    membrane = membrane_of(state, {**(renames or {}), **maps})
    start = states.get(membrane) if membrane else None
    if membrane and membrane != "V_m" and membrane not in maps and "V_m" not in strict and \
            isinstance(start, (int, float)) and not isinstance(start, bool):
        optional["V_m"] = float(start)  # the model's membrane potential starts the built-in's
        aligned[membrane] = "V_m"
    return Alignment(strict, optional, targets, membrane, aligned)


def compare(stimuli: list[dict], a: list[dict], b: list[dict], tol: Tolerances) -> list[dict]:
    """Per stimulus: spike counts, the largest spike-time difference, the largest V_m difference (before
    the first spike), and whether they agree."""
    out = []
    onset = protocol.STEP_BEFORE_MS
    for stim, ra, rb in zip(stimuli, a, b, strict=True):
        sa, sb = ra["spikes_ms"], rb["spikes_ms"]
        start = onset if stim.get("kind") == "step" else protocol.PSP_SPIKE_MS
        dt = max((abs(x - y) for x, y in zip(sa, sb, strict=False)), default=0.0) if len(sa) == len(sb) else None
        times_ok = len(sa) == len(sb) and all(
            abs(x - y) <= tol.spike_ms + tol.drift * max(0.0, min(x, y) - start) for x, y in zip(sa, sb, strict=True))
        first = min([*sa[:1], *sb[:1]], default=None)
        dv = _vm_difference(ra.get("V_m"), rb.get("V_m"), first)
        out.append({"stimulus": _label(stim), "spikes": [len(sa), len(sb)], "max_spike_time_diff_ms": dt,
                    "max_vm_diff_mV": dv, "agree": times_ok and (dv is None or dv <= tol.vm_mv)})
    return out


def _vm_difference(va: list[float] | None, vb: list[float] | None, first_spike: float | None) -> float | None:
    if not va or not vb:
        return None
    n = min(len(va), len(vb))
    if first_spike is not None:  # samples are at RESOLUTION_MS, 2 * RESOLUTION_MS, ...; the upstroke's last
        n = min(n, max(0, int((first_spike - SPIKE_GUARD_MS) / protocol.RESOLUTION_MS)))  # ms are the spike's
    return round(max((abs(x - y) for x, y in zip(va[:n], vb[:n], strict=True)), default=0.0), 6)


def explain(against: str, ra: dict, rb: dict, rows: list[dict], alignment: Alignment | None) -> dict[str, Any]:
    """What the report says beside its table (see :class:`Report`), from the two sides' responses."""
    not_set = set(rb.get("not_set") or [])
    membrane = [ra.get("membrane") if ra.get("recorded") else None, rb.get("membrane") if rb.get("recorded") else None]
    out: dict[str, Any] = {"unmapped": [], "carried": list(rb.get("carried") or []), "aligned": {},
                           "not_aligned": [], "membrane": membrane, "notes": []}
    if alignment is not None:
        out["unmapped"] = sorted(n for n, target in alignment.parameters.items() if target in not_set)
        out["aligned"] = {k: v for k, v in alignment.aligned.items() if v not in not_set}
        out["not_aligned"] = sorted(k for k, v in alignment.aligned.items() if v in not_set)
    if any(r["max_spike_time_diff_ms"] is None for r in rows):
        out["notes"].append("'-' under MAX DT: the spike counts differ, so no spike times are paired")
    if any(r["max_vm_diff_mV"] is None for r in rows):
        out["notes"].append("'-' under MAX DV_m: " + _why_no_vm(against, ra, rb))
    return out


def _why_no_vm(against: str, ra: dict, rb: dict) -> str:
    if not ra.get("membrane"):
        return ("the model has no membrane potential to compare (no V_m, no state variable in volts): "
                "--map VAR=V_m names one")
    if not ra.get("recorded"):
        return f"NEST cannot record the model's {ra['membrane']} (not one of its recordables)"
    if not rb.get("membrane") or not rb.get("recorded"):
        return f"{against} records no {rb.get('membrane') or 'membrane potential'}"
    return "no samples before the first spike"


def _label(stim: dict) -> str:
    if stim.get("kind") == "step":
        return f"step {stim['current_pA']:.4g} pA"
    return f"spike {stim.get('label')} ({stim.get('weight'):+g})"


@dataclass(frozen=True)
class Report:
    """A check's outcome. ``unmapped``: the model's parameters the built-in has no parameter for; ``carried``:
    what was set on the built-in with values other than its defaults (name, value, default); ``aligned``: the
    model's initial states set on the other side ({model's name: other's name}), ``not_aligned`` the ones
    that could not be; ``membrane``: the variables compared as V_m (None where a side has none); ``notes``:
    what a ``-`` in a column means."""

    model: str
    against: str
    agree: bool
    tolerances: dict
    unmapped: list[str]
    stimuli: list[dict]
    processes: int
    carried: list[dict] = field(default_factory=list)
    aligned: dict[str, str] = field(default_factory=dict)
    not_aligned: list[str] = field(default_factory=list)
    membrane: list[str | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
