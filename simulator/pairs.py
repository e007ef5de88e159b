"""Refuse a paired NESTML synapse that connects to a neuron other than its partner.

NESTML co-generates a neuron-synapse pair (``stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml``
with ``iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml``); the synapse reads its partner's
post-synaptic trace, and connected to any other neuron the generated code kills the process. So
every target of such an edge type must be a node of the partner model, checked from the SONATA
files before NEST is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.plan import Plan
from nestml_registry.simulator.references import network_files, read_types_table, reference_of


def partner_of(synapse: str) -> str | None:
    """``iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml`` for
    ``stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml``; None for an unpaired name."""
    if PAIR_MARK not in synapse:
        return None
    own, neuron = synapse.split(PAIR_MARK, 1)
    return f"{neuron}{PAIR_MARK}{own}"


def nest_name(template: object, plan: Plan) -> str | None:
    """The NEST model a node or edge type's model_template creates."""
    if not isinstance(template, str) or ":" not in template:
        return None
    reference = reference_of(template)
    if reference is not None:
        return plan.nest_name(reference)
    return template.split(":", 1)[1]


def _types(path: str, id_column: str) -> dict[int, str]:
    out = {}
    for row in read_types_table(path):
        try:
            out[int(row[id_column])] = row.get("model_template") or ""
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _node_types(config: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray, dict[int, str]]]:
    """population -> (node ids, their node type ids, node type id -> model_template)."""
    import h5py

    nodes, _ = network_files(config)
    out = {}
    for entry in nodes:
        if not entry.get("nodes_file") or not entry.get("node_types_file"):
            continue
        types = _types(entry["node_types_file"], "node_type_id")
        with h5py.File(entry["nodes_file"], "r") as h5:
            for pop_name, pop in (h5.get("nodes") or {}).items():
                type_ids = np.asarray(pop["node_type_id"][()])
                ids = np.asarray(pop["node_id"][()]) if "node_id" in pop else np.arange(len(type_ids))
                out[pop_name] = (ids, type_ids, types)
    return out


def check_pairs(plan: Plan, config: Mapping[str, Any]) -> None:
    """Every target of an edge type with a paired synapse is a node of the synapse's partner neuron."""
    try:
        _check_pairs(plan, config)
    except (OSError, KeyError, ValueError) as exc:
        raise SimulatorError(f"cannot read the network's SONATA files to check its paired synapses' targets "
                             f"({type(exc).__name__}: {exc}); check the networks section of the config",
                             "invalid_network") from exc


def _check_pairs(plan: Plan, config: Mapping[str, Any]) -> None:
    paired = {ref: r for ref, r in plan.resolved.items() if r.kind == "synapse" and partner_of(r.model)}
    if not paired:
        return
    import h5py

    _, edges = network_files(config)
    populations = None
    for entry in edges:
        if not entry.get("edges_file") or not entry.get("edge_types_file"):
            continue
        edge_types = {tid: reference_of(t) for tid, t in _types(entry["edge_types_file"], "edge_type_id").items()}
        wanted = {tid: ref for tid, ref in edge_types.items() if ref in paired}
        if not wanted:
            continue
        populations = populations if populations is not None else _node_types(config)
        with h5py.File(entry["edges_file"], "r") as h5:
            for edge_pop, pop in (h5.get("edges") or {}).items():
                type_ids = np.asarray(pop["edge_type_id"][()])
                targets = pop["target_node_id"]
                target_pop = targets.attrs.get("node_population")
                target_pop = target_pop.decode() if isinstance(target_pop, bytes) else str(target_pop)
                target_ids = np.asarray(targets[()])
                for tid, ref in wanted.items():
                    chosen = target_ids[type_ids == tid]
                    if chosen.size:
                        _check_targets(plan, paired[ref].model, tid, entry["edge_types_file"], edge_pop,
                                       target_pop, np.unique(chosen), populations)


def _check_targets(plan: Plan, synapse: str, edge_type: int, types_file: str, edge_pop: str, target_pop: str,
                   target_ids: np.ndarray, populations: Mapping[str, Any]) -> None:
    partner = partner_of(synapse)
    if target_pop not in populations:
        raise SimulatorError(f"edge type {edge_type} in {types_file} targets population {target_pop!r}, which no "
                             "nodes file of the config has", "invalid_network")
    ids, node_type_ids, templates = populations[target_pop]
    index = {int(i): int(t) for i, t in zip(ids, node_type_ids, strict=False)}
    wrong: dict[int, str | None] = {}
    for node in target_ids.tolist():
        node_type = index.get(int(node))
        template = templates.get(node_type) if node_type is not None else None
        if nest_name(template, plan) != partner:
            wrong.setdefault(node_type if node_type is not None else -1, template)
    if wrong:
        node_type, template = next(iter(wrong.items()))
        raise SimulatorError(
            f"edge type {edge_type} in {types_file} ({edge_pop}) uses the paired synapse {synapse}, whose partner "
            f"neuron is {partner}, but some of its targets are node type {node_type} ({template or 'no template'}) "
            f"of {target_pop}: a paired synapse only works onto its partner (NEST would crash). Make those targets "
            f"nestml:{partner}, or use an unpaired synapse for them", "pair_mismatch",
            {"synapse": synapse, "partner": partner, "node_types": sorted(wrong)})
