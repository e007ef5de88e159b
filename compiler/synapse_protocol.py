"""Child-process part of a synapse check (run by :mod:`nestml_registry.compiler.characterise` for a
``{"synapse": ...}`` job): a NESTML synapse and its NEST counterpart, each in its own small network in
one NEST kernel, under the protocol of :mod:`nestml_registry.compiler.protocol` (``SYNAPSE_*``).

A side is ``{"synapse": NAME, "post": NEURON, "params": {...}, "post_params": {...}}``: ``params`` are set
on the synapse where it has them (the rest are answered in ``not_set``), ``post_params`` on its post
neuron likewise. The answer holds, per side, the weight after every pre spike (STDP) and the STDP window,
or the efficacies of every pulse at each rate (short-term plasticity).
"""

from __future__ import annotations

import itertools
from typing import Any

from nestml_registry.compiler import protocol as P

READER = {"E_L": 0.0, "V_m": 0.0, "V_reset": 0.0, "V_th": 1e9, "tau_m": 1e9, "C_m": 1.0, "t_ref": 0.1}


def run_synapse(bench: Any, job: dict) -> dict:
    kind = job["kind"]
    nest = bench.nest
    sides = {"model": job["model"], "reference": job["reference"]}
    for side in sides.values():
        if side["synapse"] not in nest.synapse_models:
            raise ValueError(f"{side['synapse']} is not a synapse model of this NEST (nor of the modules loaded)")
    out: dict[str, Any] = {"status": "succeeded", "kind": kind}
    for name, side in sides.items():
        settable = _settable(nest, side)
        if kind == "stdp":
            answer = {"weights": _stdp_trains(bench, side, settable), "window": _stdp_window(bench, side, settable)}
        else:
            answer = {"efficacies": [_stp_train(bench, side, settable, rate) for rate in P.STP_RATES_HZ]}
        out[name] = dict(answer, not_set=settable["not_set"], carried=settable["carried"])
    return out


def _settable(nest: Any, side: dict) -> dict:
    """What of ``params`` and ``post_params`` the side's models have, what they have not, and what differs
    from their defaults."""
    syn = nest.GetDefaults(side["synapse"])
    post = nest.GetDefaults(side["post"]) if side.get("post") else {}
    params = {k: float(v) for k, v in (side.get("params") or {}).items() if k in syn}
    post_params = {k: float(v) for k, v in (side.get("post_params") or {}).items() if k in post}
    not_set = sorted(set(side.get("params") or {}) - set(params)) + \
        sorted(set(side.get("post_params") or {}) - set(post_params))
    carried = [{"name": k, "value": v, "default": float(d[k])} for d, values in ((syn, params), (post, post_params))
               for k, v in sorted(values.items()) if isinstance(d.get(k), (int, float)) and float(d[k]) != v]
    return {"params": params, "post_params": post_params, "not_set": not_set, "carried": carried}


def trains() -> tuple[list[float], list[float]]:
    """The protocol's pre and post spike times (ms), the same on every machine."""
    import numpy as np

    rng = np.random.default_rng(P.SYNAPSE_SEED)
    n = int(P.SYNAPSE_RATE_HZ * P.SYNAPSE_MS / 1000.0)
    pick = [sorted({float(t) for t in rng.integers(2, int(P.SYNAPSE_MS), n)}) for _ in range(2)]
    return pick[0], pick[1]


def _network(bench: Any, side: dict, settable: dict, n: int) -> tuple[Any, Any, Any]:
    """``n`` parrot neurons, each into its own post neuron through the side's synapse, recorded by a
    weight_recorder: (pre parrots, post neurons, recorder)."""
    nest = bench.nest
    recorder = nest.Create("weight_recorder")
    label = f"{side['synapse']}__recorded"
    nest.CopyModel(side["synapse"], label, {**settable["params"], "weight_recorder": recorder})
    pre = nest.Create("parrot_neuron", n)
    post = nest.Create(side["post"], n)
    known = nest.GetDefaults(side["post"])
    brief = {k: P.FORCE_TAU_MS for k in P.FORCE_TAU_NAMES if k in known}
    post.set({**brief, **settable["post_params"]})
    nest.Connect(pre, post, "one_to_one", syn_spec={"synapse_model": label, "delay": 1.0})
    return pre, post, recorder


def _drive(bench: Any, nodes: Any, times: list[list[float]], weight: float) -> None:
    nest = bench.nest
    for node, ts in zip(nodes, times, strict=True):
        if ts:
            gen = nest.Create("spike_generator", params={"spike_times": ts})
            nest.Connect(gen, node, syn_spec={"weight": weight, "delay": 1.0})


def _stdp_trains(bench: Any, side: dict, settable: dict) -> list[list[float]]:
    bench.reset()
    pre_times, post_times = trains()
    pre, post, recorder = _network(bench, side, settable, 1)
    _drive(bench, pre, [pre_times], 1.0)
    _drive(bench, post, [post_times], P.FORCE_WEIGHT)
    bench.nest.Simulate(P.SYNAPSE_MS + 10.0)
    ev = recorder.events
    return [[round(float(t), 4), float(w)] for t, w in zip(ev["times"], ev["weights"], strict=True)]


def _stdp_window(bench: Any, side: dict, settable: dict) -> list[list[float]]:
    """[post - pre (ms), weight change] for one pairing each, read at a later pre spike. Post - pre is as
    the synapse sees it: the post spike's time plus the (dendritic) delay, less the pre spike's time; a
    pairing whose post neuron did not fire is left out."""
    nest = bench.nest
    bench.reset()
    deltas = list(P.WINDOW_DT_MS)
    pre, post, recorder = _network(bench, side, settable, len(deltas))
    _drive(bench, pre, [[P.WINDOW_PRE_MS, P.WINDOW_READ_MS]] * len(deltas), 1.0)
    _drive(bench, post, [[P.WINDOW_PRE_MS + d] for d in deltas], P.FORCE_WEIGHT)
    spikes = nest.Create("spike_recorder")
    nest.Connect(pre + post, spikes)
    initial = [float(c.get("weight")) for c in nest.GetConnections(pre)]
    nest.Simulate(P.WINDOW_READ_MS + 10.0)
    ev, first, n = recorder.events, pre.tolist()[0], len(deltas)
    last: dict[int, float] = {}
    for sender, w in zip(ev["senders"], ev["weights"], strict=True):
        last[int(sender) - first] = float(w)  # the events come in time order: the last is the read-out
    times: dict[int, float] = {}
    for sender, t in zip(spikes.events["senders"], spikes.events["times"], strict=True):
        times.setdefault(int(sender), float(t))  # each node's first spike: the pairing's
    out = []
    for i in range(n):
        t_pre, t_post = times.get(first + i), times.get(post.tolist()[0] + i)
        if t_pre is not None and t_post is not None:
            out.append([round(t_post + 1.0 - t_pre, 4), last.get(i, initial[i]) - initial[i]])
    return out


def _stp_train(bench: Any, side: dict, settable: dict, rate: float) -> list[float]:
    """The efficacy of each of SYNAPSE_PULSES pulses at ``rate``: the step of a leakless reader's V_m."""
    bench.reset()
    nest = bench.nest
    label = f"{side['synapse']}__stp"
    nest.CopyModel(side["synapse"], label, settable["params"])
    pre = nest.Create("parrot_neuron")
    reader = nest.Create("iaf_psc_delta", params=READER)
    nest.Connect(pre, reader, syn_spec={"synapse_model": label, "delay": 1.0})
    times = [10.0 + round(1000.0 / rate, 1) * k for k in range(P.SYNAPSE_PULSES)]
    _drive(bench, pre, [times], 1.0)
    meter = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": P.RESOLUTION_MS})
    nest.Connect(meter, reader)
    nest.Simulate(times[-1] + 10.0)
    v = [float(x) for x in meter.events["V_m"]]
    return [b - a for a, b in itertools.pairwise(v) if abs(b - a) > 1e-9][:P.SYNAPSE_PULSES]
