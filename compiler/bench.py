"""The NEST side of the characterisation child (:mod:`nestml_registry.compiler.characterise`): one kernel
with the job's modules loaded, and what every part of the protocol does with it (a population with current
injection, spike counts, the responses to steps and input spikes, the rheobase search, the input spikes a
model takes). Imported only in the child process, which imports ``nest``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from nestml_registry.compiler import protocol as P


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
            series[int(sender) - first].append(finite_value(v))
        for o, s in zip(out, series, strict=False):
            o["V_m"] = s  # from RESOLUTION_MS to the end, every RESOLUTION_MS
    return out


def finite_value(v: float) -> float:
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
