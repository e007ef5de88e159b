"""The parent side of a synapse check: a published NESTML synapse beside the NEST built-in it reimplements
(:mod:`nestml_registry.compiler.counterparts`), run in a sandboxed NEST process
(:mod:`nestml_registry.compiler.synapse_protocol`), compared, and said as a check document of the same
shape as a neuron's (:func:`nestml_registry.compiler.checking.check_counterpart`): per protocol, a row
with the largest weight (or efficacy) difference; and the curves the model page draws: the STDP window,
or the paired-pulse ratio and the steady state against frequency.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nestml_registry.compiler import counterparts, protocol
from nestml_registry.compiler.characteriser import Characteriser, bounded_list, finite_number, finite_numbers
from nestml_registry.compiler.counterparts import Counterpart
from nestml_registry.compiler.request import PAIR_MARK

MAX_EVENTS = 10_000


def sides(model: str, version: dict[str, Any], counterpart: Counterpart) -> dict[str, Any]:
    """The job for ``model`` (its NEST name) and its counterpart: the model's post neuron is its partner
    (``P__with_S`` for ``S__with_P``), the built-in's the partner's plain neuron; the built-in gets the
    model's parameter values (and initial weight) under NEST's names."""
    values = {p["name"]: p["value"] for p in version.get("parameters") or []
              if isinstance(p, dict) and _number(p.get("value"))}
    values.update({s["name"]: s["value"] for s in version.get("state") or []
                   if isinstance(s, dict) and s.get("name") in counterpart.maps and _number(s.get("value"))})
    params, post_params = counterpart.split({k: float(v) for k, v in values.items()})
    model_side: dict[str, Any] = {"synapse": model}
    reference: dict[str, Any] = {"synapse": counterpart.builtin, "params": params, "post_params": post_params}
    if counterpart.rule == "stdp":
        if PAIR_MARK not in model:
            raise ValueError(f"{model} is not paired with a neuron: an STDP synapse is checked in its pair")
        own, neuron = model.split(PAIR_MARK, 1)
        model_side["post"] = f"{neuron}{PAIR_MARK}{own}"
        reference["post"] = neuron
    return {"kind": counterpart.rule, "model": model_side, "reference": reference}


def check_synapse(runner: Characteriser, module: Path, model: str, version: dict[str, Any],
                  counterpart: Counterpart) -> dict[str, Any]:
    """The stored verdict of synapse ``model`` against its counterpart; never raises for the model's own
    failures (the verdict is then ``failed``, with the error)."""
    against = f"nest:{counterpart.builtin}"
    out: dict[str, Any] = {"against": against, "protocol": protocol.VERSION, "counterparts": counterparts.VERSION,
                           "asserted": counterpart.asserted, "model": model, "processes": 1,
                           "tolerances": {"weight": protocol.WEIGHT_TOLERANCE}}
    try:
        job = sides(model, version, counterpart)
        with tempfile.TemporaryDirectory(prefix="nestml-check-") as tmp:
            data = runner.synapse(module, job, Path(tmp) / "check.log")
        if data.get("status") != "succeeded":
            return dict(out, verdict="failed", error=str(data.get("error") or "the simulation failed")[:2000])
        rows, curves = compare(job["kind"], answer(data))
    except (TypeError, ValueError, KeyError) as exc:
        return dict(out, verdict="failed", error=f"the synapse check could not run: {exc}"[:2000])
    agree = all(r["agree"] for r in rows)
    ref = data["reference"]
    out.update(verdict="agrees" if agree else "differs", agree=agree, stimuli=rows, curves=curves,
               carried=ref.get("carried") or [], unmapped=[str(n)[:100] for n in ref.get("not_set") or []][:100],
               aligned={}, not_aligned=[], membrane=[], notes=[])
    if not agree and counterpart.differs_because:
        out["explanation"] = counterpart.differs_because
    return out


def answer(data: dict) -> dict:
    """The child's answer, checked and bounded (raises TypeError, ValueError or KeyError)."""
    kind = data["kind"]
    out: dict[str, Any] = {"kind": kind}
    for name in ("model", "reference"):
        side = data[name]
        if kind == "stdp":
            weights = [finite_numbers(p, 2) for p in bounded_list(side["weights"], MAX_EVENTS)]
            window = [finite_numbers(p, 2) for p in bounded_list(side["window"], MAX_EVENTS)]
            out[name] = {"weights": weights, "window": window}
        elif kind == "stp":
            trains = bounded_list(side["efficacies"], MAX_EVENTS)
            out[name] = {"efficacies": [finite_numbers(e, MAX_EVENTS) for e in trains]}
        else:
            raise ValueError(f"no synapse protocol {kind!r}")
        out[name]["carried"] = [{"name": str(c["name"])[:100], "value": finite_number(c["value"]),
                                 "default": finite_number(c["default"])} for c in bounded_list(side.get("carried"))]
        out[name]["not_set"] = [str(n)[:100] for n in bounded_list(side.get("not_set"))]
    return out


def compare(kind: str, data: dict) -> tuple[list[dict], list[dict]]:
    """Rows (one per protocol part) and the curves for the page."""
    m, r = data["model"], data["reference"]
    if kind == "stdp":
        rows = [_row(f"pre and post trains at {protocol.SYNAPSE_RATE_HZ:g} Hz for {protocol.SYNAPSE_MS:g} ms",
                     [w for _, w in m["weights"]], [w for _, w in r["weights"]]),
                _row(f"STDP window ({len(m['window'])} pairings, post - pre from {protocol.WINDOW_DT_MS[0]:g} to "
                     f"{protocol.WINDOW_DT_MS[-1]:g} ms)", [w for _, w in m["window"]], [w for _, w in r["window"]])]
        curves = [{"title": "STDP window", "x_label": "post - pre (ms)", "y_label": "weight change",
                   "x": [d for d, _ in m["window"]], "model": [w for _, w in m["window"]],
                   "reference": [w for _, w in r["window"]]}]
        return rows, curves
    rates = list(protocol.STP_RATES_HZ)
    rows = [_row(f"{protocol.SYNAPSE_PULSES} pulses at {rate:g} Hz", a, b)
            for rate, a, b in zip(rates, m["efficacies"], r["efficacies"], strict=False)]
    curves = [{"title": title, "x_label": "rate (Hz)", "y_label": label, "x": rates[:len(m["efficacies"])],
               "model": [_ratio(e, i) for e in m["efficacies"]], "reference": [_ratio(e, i) for e in r["efficacies"]]}
              for title, label, i in (("paired-pulse ratio", "second / first", 1),
                                      ("steady state", "last / first", -1))]
    return rows, curves


def _row(label: str, a: list[float], b: list[float]) -> dict[str, Any]:
    diff = max((abs(x - y) for x, y in zip(a, b, strict=False)), default=0.0) if len(a) == len(b) else None
    scale = max([1.0, *(abs(x) for x in a + b)])
    return {"stimulus": label, "spikes": [len(a), len(b)], "max_spike_time_diff_ms": None, "max_vm_diff_mV": None,
            "max_weight_diff": diff, "agree": diff is not None and diff <= protocol.WEIGHT_TOLERANCE * scale}


def _ratio(efficacies: list[float], i: int) -> float | None:
    if len(efficacies) < 2 or not efficacies[0]:
        return None
    return efficacies[i] / efficacies[0]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
