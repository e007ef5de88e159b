"""The ``respond`` job of the characterisation child (``nestml-registry check`` and the workers' checks):
each model's spikes and membrane potential under the same stimuli, with the parameters carried over to a
built-in, what could not be set, and what differs from its defaults.
"""

from __future__ import annotations

import math
from typing import Any

from nestml_registry.compiler import protocol as P
from nestml_registry.compiler.bench import Bench, NotApplicable, finite_value, psp_stimuli, rheobase


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
            out.append({"name": name, "value": float(value), "default": finite_value(default)})
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
