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
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from nestml_registry.compiler import protocol as P
from nestml_registry.compiler.child import exit_now, write_result


class NotApplicable(Exception):
    """The model cannot be put through the protocol (no current input): not an error of the model."""


class Bench:
    """One NEST kernel with the job's modules loaded; :meth:`reset` starts every simulation afresh."""

    def __init__(self, modules: list[str]) -> None:
        os.environ.setdefault("PYNEST_QUIET", "1")
        warnings.simplefilter("ignore")
        import nest

        self.nest, self.modules = nest, modules
        self.resolution = P.RESOLUTION_MS
        nest.set_verbosity("M_ERROR")
        self.reset()

    def reset(self) -> None:
        self.nest.ResetKernel()  # unloads the modules' models: load them again
        self.nest.resolution = self.resolution
        for module in self.modules:
            self.nest.Install(str(Path(module).with_suffix("")))

    def check_model(self, model: str) -> None:
        if model not in self.nest.node_models:
            raise ValueError(f"{model} is not a neuron model of this NEST (nor of the modules loaded)")

    def injection(self, model: str) -> str:
        """'port' (a dc_generator reaches a continuous current input port) or 'I_e'; NotApplicable if neither."""
        self.reset()
        node, dc = self.nest.Create(model), self.nest.Create("dc_generator")
        try:
            self.nest.Connect(dc, node)
            return "port"
        except self.nest.NESTError:
            if "I_e" in self.nest.GetDefaults(model):
                return "I_e"
        raise NotApplicable("not characterised: no current input (no continuous current input port, no I_e)")

    def population(self, model: str, params: dict, n: int, injection: str) -> tuple[Any, Any]:
        nodes = self.nest.Create(model, n)
        if params:
            nodes.set(params)
        gens = None
        if injection == "port":
            gens = self.nest.Create("dc_generator", n)
            self.nest.Connect(gens, nodes, "one_to_one", syn_spec={"delay": self.resolution})
        return nodes, gens

    def set_currents(self, nodes: Any, gens: Any, currents: list[float], base_ie: float) -> None:
        if gens is not None:
            gens.set(amplitude=[float(c) for c in currents])
        else:
            nodes.set(I_e=[base_ie + float(c) for c in currents])

    def counts(self, model: str, params: dict, injection: str, currents: list[float]) -> list[int]:
        """Spikes within the window of one neuron per current, each from its initial state."""
        self.reset()
        nodes, gens = self.population(model, params, len(currents), injection)
        self.set_currents(nodes, gens, currents, _base_ie(nodes))
        rec = self.nest.Create("spike_recorder")
        self.nest.Connect(nodes, rec)
        self.nest.Simulate(P.WINDOW_MS)
        first = nodes.tolist()[0]
        out = [0] * len(currents)
        for sender in rec.events["senders"]:
            out[int(sender) - first] += 1
        return out

    def respond(self, model: str, params: dict, injection: str | None, stimuli: list[dict],
                membrane: str = "V_m") -> list[dict]:
        """Spike times and the membrane potential (the recordable ``membrane``, answered as ``V_m``) of one
        neuron per stimulus, all in one simulation: steps of current (``{"current_pA": x}``) switched on at
        STEP_BEFORE_MS for STEP_MS, or one input spike (``{"weight": w, "receptor": r}``) at PSP_SPIKE_MS."""
        self.reset()
        n = len(stimuli)
        nodes, gens = self.population(model, params, n, injection or "I_e")
        ids = nodes.tolist()
        base_ie = _base_ie(nodes)
        for i, stim in enumerate(stimuli):
            if "weight" in stim:
                sg = self.nest.Create("spike_generator", params={"spike_times": [P.PSP_SPIKE_MS]})
                spec = {"weight": float(stim["weight"]), "delay": 1.0}
                if stim.get("receptor"):
                    spec["receptor_type"] = int(stim["receptor"])
                self.nest.Connect(sg, nodes[i], syn_spec=spec)
        steps = [float(s.get("current_pA", 0.0)) for s in stimuli]
        if any(steps) and injection is None:
            raise NotApplicable("no current input: the model takes no current steps")
        rec = self.nest.Create("spike_recorder")
        self.nest.Connect(nodes, rec)
        recordables = self.nest.GetDefaults(model).get("recordables") or []
        meter = None
        if membrane in recordables:
            meter = self.nest.Create("multimeter", params={"record_from": [membrane], "interval": self.resolution})
            self.nest.Connect(meter, nodes)
        zeros = [0.0] * n
        if injection is not None:
            self.set_currents(nodes, gens, zeros, base_ie)
        self.nest.Simulate(P.STEP_BEFORE_MS)
        if injection is not None:
            self.set_currents(nodes, gens, steps, base_ie)
        self.nest.Simulate(P.STEP_MS)
        if injection is not None:
            self.set_currents(nodes, gens, zeros, base_ie)
        self.nest.Simulate(P.STEP_AFTER_MS)
        return _responses(rec.events, meter.events if meter is not None else None, ids, membrane)


def _base_ie(nodes: Any) -> float:
    try:
        return float(nodes[0].get("I_e"))
    except Exception:
        return 0.0


def _responses(spikes: dict, vm: dict | None, ids: list[int], membrane: str = "V_m") -> list[dict]:
    out: list[dict[str, Any]] = [{"spikes_ms": [], "V_m": None} for _ in ids]
    first = ids[0]
    for sender, t in zip(spikes["senders"], spikes["times"], strict=False):
        out[int(sender) - first]["spikes_ms"].append(round(float(t), 4))
    if vm is not None:
        series: list[list[float]] = [[] for _ in ids]
        for sender, v in zip(vm["senders"], vm[membrane], strict=False):
            series[int(sender) - first].append(_finite(v))
        for o, s in zip(out, series, strict=False):
            o["V_m"] = s  # from RESOLUTION_MS to the end, every RESOLUTION_MS
    return out


def _finite(v: float) -> float:
    v = float(v)
    return round(v, 5) if math.isfinite(v) else 1e300 if v > 0 else -1e300


def rheobase(bench: Bench, model: str, params: dict, injection: str) -> float | None:
    """The smallest firing current to within RHEOBASE_TOLERANCE (0.0: fires without input; None: not
    up to RHEOBASE_MAX_PA), narrowing a grid of GRID neurons a round."""
    if bench.counts(model, params, injection, [0.0])[0] > 0:
        return 0.0
    grid = [P.RHEOBASE_MAX_PA ** (i / (P.GRID - 1)) for i in range(P.GRID)]  # 1 pA .. max, geometric
    lo, hi = 0.0, None
    for _ in range(12):  # each round narrows GRID-fold; a model that is not monotonic ends here

        counts = bench.counts(model, params, injection, grid)
        firing = [c for c, k in zip(grid, counts, strict=False) if k > 0]
        if not firing:
            if hi is None:
                return None
            lo = grid[-1]  # the last round's grid stopped short of hi: narrow to (its top, hi]
        else:
            hi = firing[0]
            below = [c for c in grid if c < hi]
            lo = max(below[-1], lo) if below else lo
        if hi - lo <= P.RHEOBASE_TOLERANCE * hi:
            return round(hi, 4)
        step = (hi - lo) / P.GRID
        grid = [lo + step * (i + 1) for i in range(P.GRID)]
    return round(hi, 4) if hi is not None else None


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


def psp_stimuli(bench: Bench, model: str) -> list[dict]:
    """One input spike per named receptor (+weight), or +weight and -weight on the one spike port."""
    receptors = bench.nest.GetDefaults(model).get("receptor_types") or {}
    if receptors:
        return [{"kind": "psp", "receptor": int(r), "label": str(name), "weight": P.PSP_WEIGHT}
                for name, r in sorted(receptors.items(), key=lambda kv: kv[1])]
    bench.reset()
    node, sg = bench.nest.Create(model), bench.nest.Create("spike_generator")
    try:
        bench.nest.Connect(sg, node, syn_spec={"weight": 1.0})
    except bench.nest.NESTError:
        return []  # no spike input
    return [{"kind": "psp", "label": "excitatory", "weight": P.PSP_WEIGHT},
            {"kind": "psp", "label": "inhibitory", "weight": -P.PSP_WEIGHT}]


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


def respond(bench: Bench, models: list[dict], stimuli: list[dict] | str) -> dict:
    """Each model's responses to the same stimuli (the first model's rheobase scales ``"auto"`` ones)."""
    for m in models:
        bench.check_model(m["model"])
        _params(bench, m)
    injections: dict[str, str | None] = {}
    for m in models:
        try:
            injections[m["model"]] = bench.injection(m["model"])
        except NotApplicable:
            injections[m["model"]] = None
    if stimuli == "auto":
        stimuli = auto_stimuli(bench, models[0], injections[models[0]["model"]])
    assert isinstance(stimuli, list)
    out: dict[str, Any] = {"status": "succeeded", "stimuli": stimuli, "responses": []}
    for m in models:
        params = _params(bench, m)
        membrane = str(m.get("membrane") or "V_m")
        out["responses"].append({"model": m["model"], "injection": injections[m["model"]],
                                 "not_set": sorted(set(m.get("optional") or {}) - set(params)),
                                 "carried": _carried(bench, m["model"], params), "membrane": membrane,
                                 "recorded": membrane in (bench.nest.GetDefaults(m["model"]).get("recordables") or []),
                                 "results": bench.respond(m["model"], params, injections[m["model"]], stimuli,
                                                          membrane)})
    return out


def _carried(bench: Bench, model: str, params: dict) -> list[dict]:
    """What was set on ``model`` that differs from its own default (name, value set, default)."""
    defaults = bench.nest.GetDefaults(model)
    out = []
    for name, value in sorted(params.items()):
        default = defaults.get(name)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        if not math.isclose(float(value), float(default), rel_tol=1e-9, abs_tol=1e-12):
            out.append({"name": name, "value": float(value), "default": _finite(default)})
    return out


def auto_stimuli(bench: Bench, first: dict, injection: str | None) -> list[dict]:
    """Steps below and above the first model's rheobase, and its input spikes (of CHECK_PSP_WEIGHT)."""
    steps: list[dict] = []
    if injection is not None:
        rb = rheobase(bench, first["model"], _params(bench, first), injection)
        scale = rb if rb else P.FI_FALLBACK_MAX_PA / P.FI_SPAN
        steps = [{"kind": "step", "current_pA": round(f * scale, 4)} for f in P.CHECK_STEP_FACTORS]
    spikes = psp_stimuli(bench, first["model"])
    for s in spikes:
        s["weight"] = P.CHECK_PSP_WEIGHT if s["weight"] > 0 else -P.CHECK_PSP_WEIGHT
    return steps + spikes


class BadParameters(Exception):
    """A parameter the job maps onto a model that has no such parameter (bad input, not a failure)."""


def _params(bench: Bench, m: dict) -> dict:
    """``params`` (each must be the model's) and of ``optional`` those the model has."""
    import difflib

    known = set(bench.nest.GetDefaults(m["model"]))
    params = dict(m.get("params") or {})
    unknown = sorted(set(params) - known)
    if unknown:
        close = {u: difflib.get_close_matches(u, sorted(known), n=4, cutoff=0.5) for u in unknown}
        raise BadParameters("; ".join(f"{m['model']} has no parameter {u!r}" + (
            f" (closest: {', '.join(close[u])})" if close[u] else "") for u in unknown))
    optional = {k: v for k, v in (m.get("optional") or {}).items() if k in known and k not in params}
    return {**{k: v for k, v in optional.items() if _settable(bench, m["model"], k, v)}, **params}


def _settable(bench: Bench, model: str, name: str, value: object) -> bool:
    """Whether ``model`` takes ``name`` (some of what GetDefaults shows is read-only: ht_neuron's t_spike)."""
    try:
        bench.nest.Create(model).set({name: value})
        return True
    except bench.nest.NESTError:
        return False


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
