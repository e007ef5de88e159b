"""Runs :mod:`nestml_registry.compiler.characterise` for the parent: sandboxed as a build step (the child
loads a module, so it runs the module's code), with a time limit, and with its result checked field by
field before anything reads it.

    runner = Characteriser(compiler, timeout=120)
    result = runner.characterise(Path(".../m_module.so"), "my_neuron_nestml", log)
    result = runner.respond([path_a, path_b], [{"model": "a_nestml"}, {"model": "iaf_psc_exp"}], "auto", log)
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestml_registry.compiler import protocol
from nestml_registry.compiler.children import signal_of
from nestml_registry.compiler.integrity import is_file_name
from nestml_registry.compiler.outputs import OutputError
from nestml_registry.compiler.work_folders import owner_prefix
from nestml_registry.compiler.workspace import Workspace

if TYPE_CHECKING:
    from nestml_registry.compiler.pipeline import Compiler

CHILD = "nestml_registry.compiler.characterise"
STATUSES = ("succeeded", "failed", "not_applicable")
MAX_POINTS = 1000  # f-I points, spikes per trace, traces
MAX_TEXT = 2000


class Characteriser:
    def __init__(self, compiler: Compiler, timeout: float) -> None:
        self.compiler, self.timeout = compiler, timeout

    def characterise(self, module: Path, model: str, log: Path, membrane: str | None = "V_m") -> dict:
        """The protocol's result for ``model`` of ``module`` (its membrane potential the recordable
        ``membrane``; None: it has none): status succeeded, not_applicable or failed (with ``error``); never
        raises for the model's own failures."""
        out = self._run({"characterise": {"model": model, "membrane": membrane}}, [module], log)
        if out.get("status") == "failed":
            return out
        if out.get("status") == "succeeded" and membrane:
            self._psps(out, module, model, membrane, log)
        try:
            return characterisation(out)
        except (TypeError, ValueError, KeyError) as exc:
            return _failed(f"the characterisation's result is malformed ({exc})")

    def _psps(self, out: dict, module: Path, model: str, membrane: str, log: Path) -> None:
        """The PSP traces, in a NEST process of their own with a shorter limit: a model whose integration
        stalls under an input spike (a negative conductance) loses those traces, not its characterisation."""
        limit = min(self.timeout, protocol.PSP_TIMEOUT_S)
        answer = self._run({"psp": {"model": model, "membrane": membrane}}, [module], log, limit)
        traces = answer.get("traces") if answer.get("status") == "succeeded" else None
        if isinstance(traces, list) and isinstance(out.get("traces"), list):
            out["traces"] = [*out["traces"], *traces]
        elif answer.get("status") == "failed":
            out["psp_reason"] = (f"no PSP traces: their simulation ran past {limit:g} s or failed (the model's "
                                 f"integration may stall under an input spike of weight +-{protocol.PSP_WEIGHT:g}): "
                                 f"{str(answer.get('error'))[:300]}")

    def respond(self, modules: Sequence[Path], models: list[dict], stimuli: list[dict] | str, log: Path) -> dict:
        """Each model's spikes and V_m under the same stimuli (``"auto"``: scaled to the first's rheobase)."""
        return self._run({"respond": models, "stimuli": stimuli}, modules, log)

    def synapse(self, module: Path, job: dict, log: Path) -> dict:
        """A synapse beside its NEST counterpart (:mod:`nestml_registry.compiler.synapse_protocol`)."""
        return self._run({"synapse": job}, [module], log)

    def _run(self, job: dict, modules: Sequence[Path], log: Path, timeout: float | None = None) -> dict:
        timeout = self.timeout if timeout is None else timeout
        self.compiler.check_sandbox()
        ws = Workspace.create(self.compiler.cache.work_dir, owner_prefix("characterise"), self.compiler.sandbox,
                              {"PYTHONHASHSEED": "0"})
        try:
            job = dict(job, modules=[str(self._place(ws, i, m)) for i, m in enumerate(modules)])
            (ws.path / "job.json").write_text(json.dumps(job))
            argv = [sys.executable, "-m", CHILD, str(ws.path / "job.json"), str(ws.path / "result.json")]
            step = ws.run("characterise", argv, log=log, timeout=timeout)
            if step.timed_out or signal_of(step) == signal.SIGXCPU:
                return _failed(f"the simulation ran past the time limit of {timeout:g} s and was stopped "
                               "(NESTML_REGISTRY_CHARACTERISE_TIMEOUT)")
            try:
                data = ws.read_json("result.json")
            except OutputError as exc:
                return _failed(f"the NEST process ended without a result (exit status {step.returncode}: {exc}); "
                               "the model's code may have crashed it")
            if not isinstance(data, dict):
                return _failed("the characterisation's result is not an object")
            if data.get("status") == "failed":
                return _failed(_text(data.get("error")) or "the simulation failed")
            return data
        finally:
            ws.remove()

    def _place(self, ws: Workspace, i: int, module: Path) -> Path:
        """A copy of the module inside the work folder (the only folder the child sees besides the system),
        under its own name (NEST loads it by name)."""
        if not is_file_name(module.name) or module.suffix != ".so":
            raise ValueError(f"not a module file name: {module.name!r}")
        dest = ws.path / f"m{i}" / module.name
        dest.parent.mkdir()
        shutil.copyfile(module, dest)
        ws.sandbox.prepare(dest.parent)
        return dest


def _failed(error: str) -> dict:
    return {"status": "failed", "error": error[:MAX_TEXT]}


def _text(v: Any) -> str | None:
    return None if v is None else str(v)[:MAX_TEXT]


def bounded_list(v: Any, limit: int = 1000) -> list:
    """``v`` when it is a list of at most ``limit`` items (None: an empty one); TypeError otherwise."""
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > limit:
        raise TypeError("not a list within the limits")
    return v


def finite_number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TypeError(f"{v!r} is not a finite number")
    return float(v)


def finite_numbers(v: Any, limit: int) -> list[float]:
    if not isinstance(v, list) or len(v) > limit:
        raise TypeError("not a list of numbers within the limits")
    return [finite_number(x) for x in v]


def characterisation(data: dict) -> dict:
    """A characterisation result as the child wrote it, checked and normalised (what is stored)."""
    status = data.get("status")
    if status not in STATUSES:
        raise ValueError(f"status {status!r}")
    out: dict[str, Any] = {"status": status, "protocol": protocol.describe(), "reason": _text(data.get("reason")),
                           "injection": data.get("injection") if data.get("injection") in ("port", "I_e") else None,
                           "rheobase_pA": None, "fi_curve": [], "traces": []}
    if status != "succeeded":
        return out
    rb = data.get("rheobase_pA")
    out["rheobase_pA"] = None if rb is None else finite_number(rb)
    fi = data.get("fi_curve") or []
    if not isinstance(fi, list) or len(fi) > MAX_POINTS:
        raise TypeError("fi_curve")
    out["fi_curve"] = [{"current_pA": finite_number(p["current_pA"]), "rate_hz": finite_number(p["rate_hz"])}
                       for p in fi]
    traces = data.get("traces") or []
    if not isinstance(traces, list) or len(traces) > 50:
        raise TypeError("traces")
    out["traces"] = [_trace(t) for t in traces]
    membrane = data.get("membrane")
    out["membrane"] = None if membrane is None else str(membrane)[:100]
    for key in ("membrane_reason", "psp_reason"):
        if data.get(key):
            out[key] = _text(data[key])
    found = data.get("features") or {}
    if not isinstance(found, dict) or len(found) > 50:
        raise TypeError("features")
    out["features"] = {str(k)[:60]: None if v is None else finite_number(v) for k, v in found.items()}
    dts = data.get("dt_sensitivity")
    if dts is not None:
        out["dt_sensitivity"] = {"current_pA": finite_number(dts["current_pA"]),
                                 "coarsest_dt_ms": None if dts.get("coarsest_dt_ms") is None else
                                 finite_number(dts["coarsest_dt_ms"]),
                                 "runs": [{"dt_ms": finite_number(r["dt_ms"]),
                                           "spikes": int(finite_number(r["spikes"]))}
                                          for r in (dts.get("runs") or [])[:20]]}
    return out


def _trace(t: Any) -> dict:
    if not isinstance(t, dict) or t.get("kind") not in ("step", "psp"):
        raise TypeError("a trace is not one")
    return {"kind": t["kind"], "label": str(t.get("label"))[:100],
            "current_pA": None if t.get("current_pA") is None else finite_number(t["current_pA"]),
            "weight": None if t.get("weight") is None else finite_number(t["weight"]),
            "t0_ms": finite_number(t["t0_ms"]), "dt_ms": finite_number(t["dt_ms"]),
            "V_m": [max(-1e6, min(1e6, v)) for v in finite_numbers(t["V_m"], protocol.MAX_TRACE_POINTS)],
            "spikes_ms": finite_numbers(t.get("spikes_ms") or [], MAX_POINTS * 10)}
