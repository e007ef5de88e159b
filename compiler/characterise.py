"""Child-process entry: put neuron models through stimuli in NEST.

    python -m nestml_registry.compiler.characterise JOB.json RESULT.json

A job is one of four kinds:
- ``{"characterise": {"model": NAME}, "modules": [PATH...]}``: the protocol of
  :mod:`nestml_registry.compiler.protocol` (injection, rheobase, f-I curve, step responses, PSPs);
- ``{"respond": [{"model": NAME, "params": {...}}...], "modules": [...], "stimuli": [...] | "auto"}``:
  each model's spikes and V_m under the same stimuli (``nestml-registry check``); ``"auto"`` scales the
  steps to the first model's rheobase;
- ``{"psp": {"model": NAME, "membrane": VAR}, "modules": [...]}``: the PSP traces alone (a process of their
  own, with a shorter time limit);
- ``{"synapse": {"kind": "stdp" | "stp", "model": SIDE, "reference": SIDE}, "modules": [...]}``: a synapse
  beside its NEST counterpart (:mod:`nestml_registry.compiler.synapse_protocol`).

It runs a module's code (this process loads it), so the parent runs it sandboxed, with a time limit,
and checks what it writes.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from nestml_registry.compiler import protocol as P
from nestml_registry.compiler.bench import Bench, NotApplicable, psp_stimuli, rheobase
from nestml_registry.compiler.child import exit_now, write_result
from nestml_registry.compiler.responding import BadParameters, respond


def characterise(bench: Bench, model: str, membrane: str | None = "V_m") -> dict:
    bench.check_model(model)
    try:
        injection = bench.injection(model)
    except NotApplicable as exc:
        return {"status": "not_applicable", "reason": str(exc), "injection": None}
    rb = rheobase(bench, model, {}, injection)
    result: dict[str, Any] = {"status": "succeeded", "injection": injection, "rheobase_pA": rb,
                              "fi_curve": [], "traces": [], "membrane": membrane, "features": {}}
    if rb is None:
        result["reason"] = f"no spike within {P.WINDOW_MS:g} ms for any current up to {P.RHEOBASE_MAX_PA:g} pA"
    if not membrane:
        result["membrane_reason"] = ("no step or PSP traces: the model has no V_m and no state variable in volts "
                                     "to record")
    top = P.FI_SPAN * rb if rb else P.FI_FALLBACK_MAX_PA
    currents = [top * i / (P.FI_POINTS - 1) for i in range(P.FI_POINTS)]
    counts = bench.counts(model, {}, injection, currents)
    result["fi_curve"] = [{"current_pA": round(c, 4), "rate_hz": k * 1000.0 / P.WINDOW_MS}
                          for c, k in zip(currents, counts, strict=False)]
    scale = rb if rb else P.FI_FALLBACK_MAX_PA / P.FI_SPAN
    factors = [*P.STEP_FACTORS, P.HYPER_FACTOR] if rb is not None else []
    stimuli = [{"kind": "step", "current_pA": round(f * scale, 4)} for f in factors]
    responses = bench.respond(model, {}, injection, stimuli, membrane or "") if stimuli else []
    result["traces"] = _traces(stimuli, responses)
    result["features"] = _features(stimuli, responses, result, injection)
    if rb is not None:
        result["dt_sensitivity"] = dt_sensitivity(bench, model, injection, round(P.FEATURE_FACTOR * scale, 4))
        result["features"]["coarsest_dt_ms"] = result["dt_sensitivity"]["coarsest_dt_ms"]
    return result


def _features(stimuli: list[dict], responses: list[dict], result: dict, injection: str) -> dict[str, Any]:
    """Protocol 2's features (:mod:`nestml_registry.compiler.features`) from what was recorded."""
    from nestml_registry.compiler import features

    out: dict[str, Any] = {"fi_slope_Hz_per_pA": features.fi_slope(result["fi_curve"], result["rheobase_pA"])}
    onset = P.STEP_BEFORE_MS + (P.RESOLUTION_MS if injection == "port" else 0.0)
    for stim, resp in zip(stimuli, responses, strict=False):
        current = stim.get("current_pA")
        if stim["kind"] != "step" or current is None:
            continue
        if current < 0 and resp["V_m"]:
            out.update(features.passive(resp["V_m"], P.RESOLUTION_MS, onset, P.STEP_MS, current))
        elif result["rheobase_pA"] and math.isclose(current, P.FEATURE_FACTOR * result["rheobase_pA"], rel_tol=1e-3):
            out.update(features.spiking(resp["spikes_ms"], P.STEP_BEFORE_MS, P.STEP_MS))
            if resp["V_m"]:
                out.update(features.spike_shape(resp["V_m"], P.RESOLUTION_MS, resp["spikes_ms"], P.STEP_BEFORE_MS,
                                                P.STEP_BEFORE_MS + P.STEP_MS))
    return out


def dt_sensitivity(bench: Bench, model: str, injection: str, current: float) -> dict[str, Any]:
    """The ``current`` step's spikes at each of DT_STEPS_MS, and the coarsest step that keeps them."""
    from nestml_registry.compiler import features

    runs: dict[float, list[float]] = {}
    try:
        for dt in P.DT_STEPS_MS:
            bench.resolution = dt
            try:
                resp = bench.respond(model, {}, injection, [{"kind": "step", "current_pA": current}], "")
            except bench.nest.NESTError:
                continue  # a model that cannot run at this step (a fixed time step of its own)
            runs[dt] = resp[0]["spikes_ms"]
    finally:
        bench.resolution = P.RESOLUTION_MS
    return {"current_pA": current, "runs": [{"dt_ms": dt, "spikes": len(s)} for dt, s in sorted(runs.items())],
            "coarsest_dt_ms": features.coarsest_dt(runs, 1.0, 0.01, P.STEP_BEFORE_MS)}


def psp_traces(bench: Bench, model: str, membrane: str) -> dict:
    """The PSP part of the protocol, run by itself (:meth:`Characteriser._psps`)."""
    bench.check_model(model)
    stimuli = psp_stimuli(bench, model)
    try:
        injection: str | None = bench.injection(model)
    except NotApplicable:
        injection = None
    responses = bench.respond(model, {}, injection, stimuli, membrane) if stimuli else []
    return {"status": "succeeded", "traces": _traces(stimuli, responses)}


def _traces(stimuli: list[dict], responses: list[dict]) -> list[dict]:
    out = []
    for stim, resp in zip(stimuli, responses, strict=False):
        if resp["V_m"] is None:
            continue
        if stim["kind"] == "step":
            every = round(P.TRACE_DT_MS / P.RESOLUTION_MS)
            values, dt, label = resp["V_m"][every - 1::every], P.TRACE_DT_MS, f"{stim['current_pA']:.4g} pA step"
        else:
            values, dt, label = resp["V_m"][: round(P.PSP_MS / P.RESOLUTION_MS)], P.RESOLUTION_MS, stim["label"]
        out.append({"kind": stim["kind"], "label": label, "current_pA": stim.get("current_pA"),
                    "weight": stim.get("weight"), "t0_ms": dt, "dt_ms": dt, "V_m": values,
                    "spikes_ms": resp["spikes_ms"]})
    return out


def run(job: dict) -> dict:
    try:
        bench = Bench([str(m) for m in job.get("modules", [])])
        if "characterise" in job:
            spec = job["characterise"]
            return characterise(bench, str(spec["model"]), spec.get("membrane", "V_m"))
        if "psp" in job:
            return psp_traces(bench, str(job["psp"]["model"]), str(job["psp"].get("membrane") or "V_m"))
        if "synapse" in job:
            from nestml_registry.compiler.synapse_protocol import run_synapse

            return run_synapse(bench, dict(job["synapse"]))
        return respond(bench, list(job["respond"]), job.get("stimuli", "auto"))
    except BadParameters as exc:
        return {"status": "bad_input", "error": str(exc)[:2000]}
    except Exception as exc:
        return {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:2000]}"}


def main(argv: list[str]) -> int:
    import json

    job = json.loads(Path(argv[0]).read_text())
    write_result(Path(argv[1]), run(job))
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
