"""Running a comparison (:mod:`nestml_registry.compiler.comparison`) in sandboxed NEST processes: the
``check`` command's two models, or a worker's check of a new version against its NEST counterpart
(:mod:`nestml_registry.compiler.counterparts`), whose verdict is stored with the version.

    report = compare_sides(runner, (side_a, entry_a), (side_b, entry_b), alignment, Tolerances())
    document = check_counterpart(runner, module, "iaf_psc_exp_neuron_nestml", version, counterpart)

What the child answers is checked field by field before it is compared: the module's code ran there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nestml_registry.compiler import counterparts, protocol
from nestml_registry.compiler.characteriser import Characteriser, bounded_list, finite_number, finite_numbers
from nestml_registry.compiler.comparison import VERDICTS, Alignment, Report, Side, Tolerances, align, compare, explain
from nestml_registry.compiler.counterparts import Counterpart
from nestml_registry.compiler.errors import CheckFailed, InputError

MAX_STIMULI = 50
MAX_SPIKES = 10_000
MAX_SAMPLES = 20_000
MAX_NAME = 100


def compare_sides(runner: Characteriser, first: tuple[Side, dict], second: tuple[Side, dict],
                  alignment: Alignment | None, tol: Tolerances) -> Report:
    """Both sides under the same stimuli: in one NEST process where they can be loaded together (a built-in,
    or one module), else in two. Raises InputError (a parameter the built-in lacks) or CheckFailed."""
    (a, entry_a), (b, entry_b) = first, second
    if a.module is None:
        raise InputError("the first side of a check is a registry model with a module")
    with tempfile.TemporaryDirectory(prefix="nestml-check-") as tmp:
        log = Path(tmp) / "check.log"
        together = b.module is None or b.module_sha256 == a.module_sha256
        if together:
            answer = _answer(runner.respond([a.module], [_job(entry_a), _job(entry_b)], "auto", log), log, 2)
            stimuli, (ra, rb) = answer["stimuli"], answer["responses"]
        else:
            assert b.module is not None
            answer = _answer(runner.respond([a.module], [_job(entry_a)], "auto", log), log, 1)
            stimuli, ra = answer["stimuli"], answer["responses"][0]
            rb = _answer(runner.respond([b.module], [_job(entry_b)], stimuli, log), log, 1)["responses"][0]
    rows = compare(stimuli, ra["results"], rb["results"], tol)
    return Report(a.label, b.label, all(r["agree"] for r in rows), vars(tol), stimuli=rows,
                  processes=1 if together else 2, **explain(b.label, ra, rb, rows, alignment))


def check_counterpart(runner: Characteriser, module: Path, model: str, version: dict[str, Any],
                      counterpart: Counterpart) -> dict[str, Any]:
    """The stored verdict of ``model`` (the version's NEST name; ``version`` its document: ``parameters``,
    ``state``) against its NEST counterpart: ``verdict`` agrees, differs or failed, the report, and the
    reason for a difference where one is known. Never raises for the model's own failures."""
    against = f"nest:{counterpart.builtin}"
    out: dict[str, Any] = {"against": against, "protocol": protocol.VERSION, "counterparts": counterparts.VERSION,
                           "asserted": counterpart.asserted}
    parameters, state = version.get("parameters") or [], version.get("state") or []
    declared = [v.get("name") for v in [*parameters, *state] if isinstance(v, dict)]
    try:
        alignment = align(parameters, state, {}, counterpart.renames(n for n in declared if isinstance(n, str)))
        report = compare_sides(
            runner, (Side(model, model, module), {"model": model, "membrane": alignment.membrane}),
            (Side(against, counterpart.builtin, None), {"model": counterpart.builtin, "params": alignment.strict,
                                                        "optional": alignment.optional, "membrane": "V_m"}),
            alignment, Tolerances())
    except (InputError, CheckFailed) as exc:
        return dict(out, verdict="failed", error=str(exc)[:2000])
    out.update(report.to_dict(), verdict="agrees" if report.agree else "differs")
    if not report.agree and counterpart.differs_because:
        out["explanation"] = counterpart.differs_because
    return out


def _job(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if v is not None}


def _answer(result: dict, log: Path, models: int) -> dict:
    if result.get("status") == "bad_input":
        raise InputError(str(result.get("error"))[:2000])
    if result.get("status") != "succeeded" or not isinstance(result.get("responses"), list):
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise CheckFailed(f"the simulation failed: {result.get('error') or 'no result'}"
                          + (f"\n{tail}" if tail else ""))
    try:
        return answer(result, models)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckFailed(f"the NEST process's answer is malformed ({exc})") from exc


def answer(data: dict, models: int) -> dict:
    """A ``respond`` answer as the child wrote it, checked and bounded (raises TypeError, ValueError or
    KeyError where it is not what the child writes)."""
    stimuli, responses = data["stimuli"], data["responses"]
    if not isinstance(stimuli, list) or len(stimuli) > MAX_STIMULI or len(responses) != models:
        raise ValueError("not the stimuli and responses asked for")
    return {"status": "succeeded", "stimuli": [_stimulus(s) for s in stimuli],
            "responses": [_response(r, len(stimuli)) for r in responses]}


def _stimulus(s: Any) -> dict:
    if not isinstance(s, dict) or s.get("kind") not in ("step", "psp"):
        raise TypeError("a stimulus is not one")
    out: dict[str, Any] = {"kind": s["kind"]}
    if s["kind"] == "step":
        out["current_pA"] = finite_number(s["current_pA"])
    else:
        out.update(label=str(s.get("label"))[:MAX_NAME], weight=finite_number(s["weight"]))
        if s.get("receptor") is not None:
            out["receptor"] = int(finite_number(s["receptor"]))
    return out


def _response(r: Any, n: int) -> dict:
    if not isinstance(r, dict) or not isinstance(r.get("results"), list) or len(r["results"]) != n:
        raise TypeError("a response is not one")
    carried = bounded_list(r.get("carried"))
    return {"model": str(r.get("model"))[:MAX_NAME], "membrane": _name(r.get("membrane")),
            "recorded": r.get("recorded") is True,
            "not_set": [str(x)[:MAX_NAME] for x in bounded_list(r.get("not_set"))],
            "carried": [{"name": str(c["name"])[:MAX_NAME], "value": finite_number(c["value"]),
                         "default": finite_number(c["default"])} for c in carried],
            "results": [{"spikes_ms": finite_numbers(x["spikes_ms"], MAX_SPIKES),
                         "V_m": None if x.get("V_m") is None else finite_numbers(x["V_m"], MAX_SAMPLES)}
                        for x in r["results"]]}


def _name(v: Any) -> str | None:
    return None if v is None else str(v)[:MAX_NAME]





def stored_check(d: Any) -> dict[str, Any]:
    """A check document (:func:`check_counterpart`) as a worker sent it, checked and bounded (what is
    stored); raises TypeError, ValueError or KeyError where it is not one."""
    if not isinstance(d, dict) or d.get("verdict") not in VERDICTS:
        raise ValueError(f"a check's verdict is one of {', '.join(VERDICTS)}")
    out: dict[str, Any] = {"verdict": d["verdict"], "against": _text(d["against"]),
                           "protocol": int(finite_number(d["protocol"])),
                           "counterparts": int(finite_number(d["counterparts"])),
                           "asserted": _text(d.get("asserted") or "")}
    for key in ("error", "explanation"):
        if d.get(key) is not None:
            out[key] = _text(d[key])
    if d["verdict"] == "failed":
        return out
    rows = bounded_list(d["stimuli"])
    tolerances = dict(d["tolerances"])
    if len(tolerances) > 10:
        raise ValueError("tolerances")
    out.update(model=_text(d["model"]), agree=d["agree"] is True, processes=int(finite_number(d["processes"])),
               tolerances={_text(k)[:40]: finite_number(v) for k, v in tolerances.items()},
               unmapped=[_text(x) for x in bounded_list(d.get("unmapped"))],
               not_aligned=[_text(x) for x in bounded_list(d.get("not_aligned"))],
               notes=[_text(x) for x in bounded_list(d.get("notes"))],
               membrane=[_name(x) for x in bounded_list(d.get("membrane"))[:2]],
               aligned={_text(k): _text(v) for k, v in dict(d.get("aligned") or {}).items()},
               carried=[{"name": _text(c["name"]), "value": finite_number(c["value"]),
                         "default": finite_number(c["default"])} for c in bounded_list(d.get("carried"))],
               stimuli=[_stored_row(r) for r in rows[:MAX_STIMULI]],
               curves=[_stored_curve(c) for c in bounded_list(d.get("curves"))[:4]])
    if len(out["aligned"]) > 1000:
        raise ValueError("aligned")
    return out


def _stored_row(r: dict) -> dict[str, Any]:
    row = {"stimulus": _text(r["stimulus"]), "spikes": [int(finite_number(x)) for x in r["spikes"][:2]],
           "max_spike_time_diff_ms": _maybe(r.get("max_spike_time_diff_ms")),
           "max_vm_diff_mV": _maybe(r.get("max_vm_diff_mV")), "agree": r["agree"] is True}
    if "max_weight_diff" in r:
        row["max_weight_diff"] = _maybe(r["max_weight_diff"])
    return row


def _stored_curve(c: dict) -> dict[str, Any]:
    x = finite_numbers(c["x"], 100)
    series = {k: [_maybe(v) for v in bounded_list(c[k])[:100]] for k in ("model", "reference")}
    return {"title": _text(c["title"])[:100], "x_label": _text(c["x_label"])[:100],
            "y_label": _text(c["y_label"])[:100], "x": x, **series}


def _text(v: Any) -> str:
    return str(v)[:2000]


def _maybe(v: Any) -> float | None:
    return None if v is None else finite_number(v)
