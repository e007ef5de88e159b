"""``nestml-registry check``: does a published model behave like a NEST built-in, or like another version?

Both get the same stimuli (current steps below and above the first model's rheobase, and input spikes)
in NEST child processes run as the build steps are (:class:`~nestml_registry.compiler.characteriser.
Characteriser`): one process where both can be loaded together (a built-in, or the same module), two
where they cannot (two versions of one model register the same name). Against a built-in, the model's
parameters (as NEST has them) are set on the built-in by name, and ``--map NESTML=NEST`` for the rest.

Per stimulus: the spike counts must be equal, each spike time within ``spike_ms`` plus ``drift`` times the
time since the stimulus began (integrators drift apart over a long run), and V_m within ``vm_mv`` until the
first spike of either model, less SPIKE_GUARD_MS (from the upstroke on, a spike-time difference dominates
any V_m difference).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nestml_registry.compiler import protocol
from nestml_registry.simulator.errors import SimulatorError


def bad_input(message: str) -> SimulatorError:
    """Bad input to check: an unknown built-in, a parameter that cannot be mapped (exit 2)."""
    return SimulatorError(message, "invalid_input")


def failed(message: str) -> SimulatorError:
    """The simulations themselves failed (exit 1; not a disagreement)."""
    return SimulatorError(message, "check_failed", input_error=False)


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


def mapped_parameters(parameters: list[dict], maps: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """``(strict, optional)``: strict are the ``--map`` targets (the built-in must have them, or the check
    stops with bad input), optional the same-name copies (set where the built-in has such a parameter)."""
    declared = {p["name"]: p.get("value") for p in parameters if isinstance(p, dict) and p.get("name")}
    for source in maps:
        if source not in declared:
            close = difflib.get_close_matches(source, sorted(declared), n=4, cutoff=0.5)
            raise bad_input(f"--map {source}=...: the model has no parameter {source!r}"
                                  + (f" (closest: {', '.join(close)})" if close else
                                     f"; its parameters: {', '.join(sorted(declared))}"))
    strict, optional = {}, {}
    for name, value in declared.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # not a number NEST holds (e.g. -inf, stored as text): the built-in keeps its own
        if name in maps:
            if maps[name]:  # --map NAME= leaves it out
                strict[maps[name]] = float(value)
        else:
            optional[name] = float(value)
    return strict, optional


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


def _label(stim: dict) -> str:
    if stim.get("kind") == "step":
        return f"step {stim['current_pA']:.4g} pA"
    return f"spike {stim.get('label')} ({stim.get('weight'):+g})"


@dataclass(frozen=True)
class Report:
    model: str
    against: str
    agree: bool
    tolerances: dict
    unmapped: list[str]
    stimuli: list[dict]
    processes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
