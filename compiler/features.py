"""Features of a neuron model computed from the traces and spikes the characterisation already records
(protocol version 2; :mod:`nestml_registry.compiler.protocol`), each with its definition as the page shows
it. Pure functions of numbers: no NEST.

- passive: from the hyperpolarising step, the input resistance (steady-state ΔV over the current), the
  membrane time constant (when ΔV reaches 1 - 1/e of its steady value) and the sag;
- spiking: from the 2 x rheobase step's spikes, the first-spike latency, the ISI CV and the adaptation
  index, and, for models whose potential makes the spike (not a reset), its amplitude, half-width and
  after-hyperpolarisation; from the f-I curve, its slope just above rheobase.
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
    "spike_amplitude_mV": "peak of the 2 x rheobase step's first spike above its threshold (where dV/dt first "
                          "reaches 10 mV/ms); only for models whose membrane potential makes the spike (its peak "
                          "above -20 mV), not for integrate-and-fire resets",
    "spike_half_width_ms": "width of that spike at half its amplitude",
    "ahp_depth_mV": "how far the potential falls below that threshold after the spike (before the next one)",
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


SHAPE_MIN_PEAK_MV = -20.0  # a first spike whose peak stays below this is a reset, not a waveform
THRESHOLD_SLOPE = 10.0  # mV/ms: where the upstroke begins (eFEL's default)


def spike_shape(v: Sequence[float], dt: float, spikes_ms: Sequence[float], onset_ms: float,
                end_ms: float) -> dict[str, Any]:
    """Amplitude, half-width and after-hyperpolarisation of the first spike after ``onset_ms`` in ``v``
    (sampled every ``dt`` from ``dt``); None for each where there is no spike waveform."""
    out: dict[str, Any] = {"spike_amplitude_mV": None, "spike_half_width_ms": None, "ahp_depth_mV": None}
    inside = [t for t in spikes_ms if onset_ms <= t <= end_ms]
    if not inside:
        return out
    at = lambda t: min(len(v) - 1, max(0, round(t / dt) - 1))  # noqa: E731 - the sample at time t
    lo, hi = at(inside[0] - 5.0), at(inside[0] + 5.0)
    if hi - lo < 3:
        return out
    peak_i = max(range(lo, hi + 1), key=lambda i: v[i])
    peak = v[peak_i]
    start = next((i for i in range(lo, peak_i) if (v[i + 1] - v[i]) / dt >= THRESHOLD_SLOPE), None)
    if peak < SHAPE_MIN_PEAK_MV or start is None:
        return out
    threshold = v[start]
    half = (peak + threshold) / 2.0
    rise = next((i for i in range(start, peak_i) if v[i] <= half <= v[i + 1]), None)
    fall = next((i for i in range(peak_i, len(v) - 1) if v[i] >= half >= v[i + 1]), None)
    out["spike_amplitude_mV"] = round(peak - threshold, 4)
    if rise is not None and fall is not None:
        up = rise + (half - v[rise]) / ((v[rise + 1] - v[rise]) or 1e-12)
        down = fall + (v[fall] - half) / ((v[fall] - v[fall + 1]) or 1e-12)
        out["spike_half_width_ms"] = round((down - up) * dt, 4)
    stop = at(inside[1]) if len(inside) > 1 else at(end_ms)
    if stop > peak_i:
        out["ahp_depth_mV"] = round(threshold - min(v[peak_i:stop]), 4)
    return out
