"""The network of BMTK's tutorial "Extending PointNet Networks and Simulation with External and Customized
Models", built with BMTK's NetworkBuilder: 10 Izhikevich cells with recurrent edges, driven by 10 virtual
cells that fire Poisson spike trains (a SONATA spikes file), and the config.json that runs it.

    from network import build
    config = build("work/example2", "nestml:custom_izh_neuron")            # through the registry
    config = build("work/plain2", "nestml:custom_izh_neuron_nestml",      # plain BMTK
                   nest_modules="/path/to/custom_izh_neuron_nestml_module.so")

Everything is seeded, so two builds with the same arguments are the same network and the same inputs:
a plain run and a registry run can be compared spike for spike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

N_CELLS, N_INPUTS = 10, 10
RATE_HZ = 30.0


def _json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def _config(folder: Path, nest_modules: str | None, tstop: float) -> Path:
    components: dict[str, Any] = {"point_neuron_models_dir": "$MODELS_DIR/cell_models",
                                  "synaptic_models_dir": "$MODELS_DIR/synaptic_models"}
    if nest_modules:
        components["nest_modules"] = nest_modules
    return _json(folder / "config.json", {
        "manifest": {"$BASE_DIR": "${configdir}", "$NETWORK_DIR": "$BASE_DIR/network",
                     "$MODELS_DIR": "$BASE_DIR/components", "$OUTPUT_DIR": "$BASE_DIR/output"},
        "run": {"tstop": tstop, "dt": 0.01},
        "inputs": {"thalamus": {"input_type": "spikes", "module": "sonata", "node_set": "thalamus",
                                "input_file": "$BASE_DIR/inputs/thalamus_spikes.h5"}},
        "output": {"log_file": "log.txt", "spikes_file": "spikes.h5", "spikes_file_csv": "spikes.csv",
                   "output_dir": "$OUTPUT_DIR", "overwrite_output_dir": True, "quiet_simulator": True},
        "target_simulator": "NEST",
        "components": components,
        "networks": {
            "nodes": [{"nodes_file": f"$NETWORK_DIR/{p}_nodes.h5",
                       "node_types_file": f"$NETWORK_DIR/{p}_node_types.csv"} for p in ("cortex", "thalamus")],
            "edges": [{"edges_file": f"$NETWORK_DIR/{s}_cortex_edges.h5",
                       "edge_types_file": f"$NETWORK_DIR/{s}_cortex_edge_types.csv"} for s in ("cortex", "thalamus")],
        },
    })


def build(folder: str | Path, template: str, *, jitter: bool = False, recurrent: str = "static_synapse",
          recurrent_params: dict[str, Any] | None = None, nest_modules: str | None = None,
          tstop: float = 1000.0, seed: int = 1) -> Path:
    """Build the network into ``folder`` (cells of ``template``: ``nest:izhikevich``, ``nestml:...``) and
    return its config.json. ``jitter``: a per-cell ``jitter`` property for a ``@cell_model`` hook (example 3);
    ``recurrent``/``recurrent_params``: the recurrent edges' synapse model and its JSON (example 4)."""
    from bmtk.builder import NetworkBuilder
    from bmtk.utils.reports.spike_trains import PoissonSpikeGenerator

    folder = Path(folder).resolve()
    rng = np.random.default_rng(seed)
    recurrent_edges = (rng.random((N_CELLS, N_CELLS)) < 0.3) & ~np.eye(N_CELLS, dtype=bool)
    input_synapses = rng.integers(1, 5, (N_INPUTS, N_CELLS))
    jitters = rng.uniform(0.8, 1.2, N_CELLS)
    _json(folder / "components" / "cell_models" / "izh.json", {})
    _json(folder / "components" / "synaptic_models" / "recurrent.json", recurrent_params or {})
    _json(folder / "components" / "synaptic_models" / "static.json", {})

    cortex = NetworkBuilder("cortex")
    cortex.add_nodes(N=N_CELLS, pop_name="izh", model_type="point_neuron", model_template=template,
                     dynamics_params="izh.json", **({"jitter": jitters} if jitter else {}))
    cortex.add_edges(source=cortex.nodes(), target=cortex.nodes(),
                     connection_rule=lambda s, t: int(recurrent_edges[s.node_id, t.node_id]),
                     syn_weight=2.0, delay=1.5, dynamics_params="recurrent.json", model_template=recurrent)
    cortex.build()
    cortex.save(output_dir=str(folder / "network"))
    thalamus = NetworkBuilder("thalamus")
    thalamus.add_nodes(N=N_INPUTS, pop_name="poisson", model_type="virtual")
    thalamus.add_edges(target=cortex.nodes(), connection_rule=lambda s, t: int(input_synapses[s.node_id, t.node_id]),
                       syn_weight=3.0, delay=1.0, dynamics_params="static.json", model_template="static_synapse")
    thalamus.build()
    thalamus.save(output_dir=str(folder / "network"))
    spikes = PoissonSpikeGenerator(population="thalamus", seed=seed)
    spikes.add(node_ids=list(range(N_INPUTS)), firing_rate=RATE_HZ, times=(0.0, tstop / 1000.0))
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    spikes.to_sonata(str(folder / "inputs" / "thalamus_spikes.h5"))
    return _config(folder, nest_modules, tstop)


def spikes(config: str | Path) -> list[tuple[int, float]]:
    """The (node_id, time) pairs a run of ``config`` wrote to its output folder, sorted."""
    csv = Path(config).parent / "output" / "spikes.csv"
    rows = [line.split() for line in csv.read_text().splitlines()]
    header, body = rows[0], [r for r in rows[1:] if r]
    node, time = header.index("node_ids"), header.index("timestamps")
    return sorted((int(r[node]), float(r[time])) for r in body)
