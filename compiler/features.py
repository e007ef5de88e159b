"""Features of a neuron model computed from the traces and spikes the characterisation already records
(protocol version 2; :mod:`nestml_registry.compiler.protocol`), each with its definition as the page shows
it. Pure functions of numbers: no NEST.

- passive: from the hyperpolarising step, the input resistance (steady-state ΔV over the current), the
  membrane time constant (when ΔV reaches 1 - 1/e of its steady value) and the sag;
- spiking: from the strongest step's spikes, the first-spike latency, the ISI CV and the adaptation
  index; from the f-I curve, its slope just above rheobase.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

DEFINITIONS = {
    "input_resistance_MOhm": "steady-state change of the membrane potential over the injected current, for a "
                             "hyperpolarising step of half the rheobase (V at the step's end against V before it)",
    "membrane_tau_ms": "time from the hyperpolarising step's onset until the membrane potential has covered "
                       "1 - 1/e (63.2 %) of its steady-state change",
    "sag_ratio": "(V_steady - V_min) / (V_rest - V_min) during the hyperpolarising step: 0 when the potential "
                 "settles at its lowest point, larger when it rebounds (an h-current)",
    "first_spike_latency_ms": "time from the onset of the 2 x rheobase step to its first spike",
    "isi_cv": "standard deviation over mean of the inter-spike intervals during the 2 x rheobase step",
    "adaptation_index": "mean of (ISI[k+1] - ISI[k]) / (ISI[k+1] + ISI[k]) during the 2 x rheobase step "
                        "(eFEL's adaptation_index): 0 for regular firing, positive for slowing",
    "fi_slope_Hz_per_pA": "slope of the f-I curve over its first points above rheobase (least squares)",
    "coarsest_dt_ms": "the coarsest time step (of those tried) at which the 2 x rheobase step's spike times "
                      "stay within the check's tolerance of those at the finest",
}


def passive(v: Sequence[float], dt: float, onset_ms: float, step_ms: float, current_pA: float) -> dict[str, Any]:
    """Input resistance, membrane time constant and sag from a hyperpolarising step's V_m (sampled every
    ``dt`` from ``dt``, the step from ``onset_ms`` for ``step_ms``); None where it cannot be told."""
    out: dict[str, Any] = {"input_resistance_MOhm": None, "membrane_tau_ms": None, "sag_ratio": None}
    start, end = round(onset_ms / dt) - 1, round((onset_ms + step_ms) / dt) - 1
    if current_pA >= 0 or end >= len(v) or start < 1:
        return out
    rest = v[start]
    tail = v[end - max(1, round(0.05 * step_ms / dt)):end + 1]
    steady = sum(tail) / len(tail)
    change = steady - rest
    if change >= 0 or not math.isfinite(change):
        return out
    out["input_resistance_MOhm"] = round(change / current_pA * 1000.0, 6)  # mV / pA = GOhm
    target = rest + (1.0 - math.exp(-1.0)) * change
    for i in range(start, end):
        if v[i + 1] <= target < v[i]:
            frac = (v[i] - target) / (v[i] - v[i + 1])
            out["membrane_tau_ms"] = round((i + frac - start) * dt, 6)
            break
    lowest = min(v[start:end + 1])
    out["sag_ratio"] = round((steady - lowest) / (rest - lowest), 6) if rest > lowest else 0.0
    return out


def spiking(spikes_ms: Sequence[float], onset_ms: float, step_ms: float) -> dict[str, Any]:
    """First-spike latency, ISI CV and adaptation index of the spikes within a step; None where too few."""
    inside = [t for t in spikes_ms if onset_ms <= t <= onset_ms + step_ms]
    isis = [b - a for a, b in itertools.pairwise(inside)]
    out: dict[str, Any] = {"first_spike_latency_ms": round(inside[0] - onset_ms, 4) if inside else None,
                           "isi_cv": None, "adaptation_index": None}
    if len(isis) >= 2:
        mean = sum(isis) / len(isis)
        sd = math.sqrt(sum((x - mean) ** 2 for x in isis) / len(isis))
        out["isi_cv"] = round(sd / mean, 6) if mean > 0 else None
        ratios = [(b - a) / (b + a) for a, b in itertools.pairwise(isis) if a + b > 0]
        out["adaptation_index"] = round(sum(ratios) / len(ratios), 6) + 0.0 if ratios else None  # never -0
    return out


def fi_slope(curve: Sequence[dict], rheobase_pA: float | None, points: int = 5) -> float | None:
    """Least-squares slope (Hz/pA) of the first ``points`` f-I points above rheobase that fire."""
    if not rheobase_pA:
        return None
    above = [(p["current_pA"], p["rate_hz"]) for p in curve if p["current_pA"] > rheobase_pA and p["rate_hz"] > 0]
    above = above[:points]
    if len(above) < 2:
        return None
    mx, my = sum(x for x, _ in above) / len(above), sum(y for _, y in above) / len(above)
    var = sum((x - mx) ** 2 for x, _ in above)
    return round(sum((x - mx) * (y - my) for x, y in above) / var, 6) if var > 0 else None


def coarsest_dt(runs: dict[float, list[float]], spike_ms: float, drift: float, onset_ms: float) -> float | None:
    """The coarsest time step whose spike times (``runs``: dt to spike times) agree with the finest's (as
    check does: equal counts, each within ``spike_ms`` + ``drift`` x time since onset); None without runs."""
    if not runs:
        return None
    steps = sorted(runs)
    reference = runs[steps[0]]
    ok = steps[0]
    for dt in steps[1:]:
        spikes = runs[dt]
        if len(spikes) != len(reference) or any(abs(a - b) > spike_ms + drift * max(0.0, min(a, b) - onset_ms)
                                                for a, b in zip(spikes, reference, strict=True)):
            break
        ok = dt
    return ok
