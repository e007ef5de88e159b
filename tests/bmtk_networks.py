"""Small, seeded, real BMTK PointNet networks for the tests, and a way to run them with plain BMTK.

The four networks of BMTK's tutorial "Extending PointNet Networks and Simulation with External and Customized
Models" (a built-in NEST model, a NESTML model loaded through ``nest_modules``, a ``@cell_model`` override that
jitters ``d``, ``tsodyks2_synapse`` edges) come from :func:`build_izhikevich_network` (and
:func:`write_cell_model_override` for the run script of example 3); a NESTML neuron-synapse pair network comes from
:func:`build_stdp_pair_network`. Every network is the same on every call with the same arguments (connectivity,
jitter and input spikes are seeded), and NEST is deterministic, so two runs give identical spikes.

BMTK facts these networks respect (see notes/bmtk-pointnet-on-nest-3.10.md): an edge ``model_template`` that starts
with ``nest`` loses its first 5 characters (so a plain run must name a NESTML synapse by its bare NEST name), and
relative ``nest_modules`` paths are taken from the working directory, so they are written absolute here.

This is a library, not a test module: no fixtures, no test functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NET = "net"  # the population of the simulated cells
VIRT = "virt_exc"  # the population of the virtual input nodes
N_VIRTUAL = 10

# The five usual BMTK lines, for run_plain_bmtk without a script: the config is sys.argv[1].
FIVE_LINES = """\
import sys
from bmtk.simulator import pointnet
configure = pointnet.Config.from_json(sys.argv[1])
configure.build_env()
network = pointnet.PointNetwork.from_config(configure)
sim = pointnet.PointSimulator.from_config(configure, network)
sim.run()
"""

ModulesArg = str | Path | Sequence[str | Path] | None


@dataclass
class Network:
    dir: Path  # the example's folder: network/, components/, inputs/, config.json
    config: Path  # dir / "config.json"
    output_dir: Path  # where spikes.csv / spikes.h5 go


# -- building blocks --------------------------------------------------------------------------------------------


def _write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    return path


def _rngs(seed: int, k: int) -> list[np.random.Generator]:
    """k independent generators from one seed, so that optional draws never shift the others."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]


def _matrix_rule(matrix: np.ndarray) -> Callable[..., int | None]:
    """A BMTK connection rule that returns the precomputed number of synapses source -> target (0: no edge)."""

    def rule(source: Any, target: Any) -> int | None:
        nsyns = int(matrix[source["node_id"], target["node_id"]])
        return nsyns or None

    return rule


def _random_matrix(rng: np.random.Generator, n_src: int, n_trg: int, p: float, no_self: bool) -> np.ndarray:
    m = (rng.random((n_src, n_trg)) < p).astype(int)
    if no_self:
        np.fill_diagonal(m, 0)
    return m


def _module_entry(module: str | Path) -> str:
    """An absolute path for anything that names a file or folder; a bare module name stays as it is."""
    text = str(module)
    if isinstance(module, Path) or os.sep in text or Path(text).exists():
        return str(Path(text).expanduser().resolve())
    return text


def _nest_modules(nest_modules: ModulesArg) -> str | list[str] | None:
    if nest_modules is None:
        return None
    if isinstance(nest_modules, (str, Path)):
        return _module_entry(nest_modules)
    return [_module_entry(m) for m in nest_modules]


def _poisson_inputs(path: Path, rate: float, tstop: float, seed: int) -> Path:
    """Seeded Poisson spike trains (Hz, over 0..tstop ms) for the N_VIRTUAL virtual nodes, as a SONATA file."""
    from bmtk.utils.reports.spike_trains import PoissonSpikeGenerator

    path.parent.mkdir(parents=True, exist_ok=True)
    state = np.random.get_state()  # PoissonSpikeGenerator seeds numpy's global generator: restore it after
    try:
        psg = PoissonSpikeGenerator(population=VIRT, seed=seed)
        psg.add(node_ids=list(range(N_VIRTUAL)), firing_rate=rate, times=(0.0, tstop / 1000.0))
        psg.to_sonata(str(path))
    finally:
        np.random.set_state(state)
    return path


def _add_virtual_nodes(virt: Any, virtual_template: str | None) -> None:
    extra = {"model_template": virtual_template} if virtual_template else {}
    virt.add_nodes(N=N_VIRTUAL, pop_name="virt_exc", ei="e", model_type="virtual", **extra)


def _write_config(dir: Path, tstop: float, dt: float, nest_modules: ModulesArg, n_thread: int | None,
                  edge_files: Sequence[tuple[str, str]]) -> Path:
    """config.json in the tutorial's form; edge_files lists (source, target) populations."""
    run: dict[str, Any] = {"tstop": tstop, "dt": dt, "block_run": False, "block_size": 1000.0}
    if n_thread is not None:
        run["n_thread"] = n_thread
    components: dict[str, Any] = {"point_neuron_models_dir": "$MODELS_DIR/cell_models",
                                  "synaptic_models_dir": "$MODELS_DIR/synaptic_models"}
    modules = _nest_modules(nest_modules)
    if modules is not None:
        components["nest_modules"] = modules
    config = {
        "manifest": {"$BASE_DIR": "${configdir}", "$NETWORK_DIR": "$BASE_DIR/network",
                     "$MODELS_DIR": "$BASE_DIR/components", "$OUTPUT_DIR": "$BASE_DIR/output",
                     "$INPUT_DIR": "$BASE_DIR/inputs"},
        "run": run,
        "inputs": {"thalamus_spikes": {"input_type": "spikes", "module": "sonata",
                                       "input_file": "$INPUT_DIR/virt_exc_spikes.h5", "node_set": VIRT}},
        "reports": {},
        "output": {"log_file": "log.txt", "spikes_file": "spikes.h5", "spikes_file_csv": "spikes.csv",
                   "output_dir": "$OUTPUT_DIR", "overwrite_output_dir": True, "quiet_simulator": True},
        "target_simulator": "NEST",
        "components": components,
        "networks": {
            "nodes": [{"nodes_file": f"$NETWORK_DIR/{pop}_nodes.h5",
                       "node_types_file": f"$NETWORK_DIR/{pop}_node_types.csv"} for pop in (NET, VIRT)],
            "edges": [{"edges_file": f"$NETWORK_DIR/{src}_{trg}_edges.h5",
                       "edge_types_file": f"$NETWORK_DIR/{src}_{trg}_edge_types.csv"} for src, trg in edge_files],
        },
    }
    return _write_json(dir / "config.json", config)


# -- the tutorial's networks (examples 1-4) ---------------------------------------------------------------------

IZH_P_RECURRENT = 0.3  # recurrent connection probability (no self-connections)
IZH_W_RECURRENT = 2.0  # mV per spike (izhikevich: a spike moves V_m by its weight)
IZH_P_INPUT = 1.0  # virtual -> cell connection probability (all to all, nsyns varies)
IZH_W_INPUT = 3.0  # mV per synapse; nsyns per virtual -> cell edge is 1..4
IZH_RATE = 30.0  # Hz per virtual node


def _with_inputs(dir: Path, net: Any, inp: np.ndarray, w_input: float, rate: float, virtual_template: str | None,
                 run: dict[str, Any]) -> Network:
    """Save the built cells `net`, add the virtual input population wired by matrix `inp` (static synapses of
    weight w_input), its Poisson spikes at `rate` and the config; `run` holds tstop, dt, seed, nest_modules and
    n_thread."""
    from bmtk.builder import NetworkBuilder

    net_dir = dir / "network"
    net.build()
    net.save(output_dir=str(net_dir))
    virt = NetworkBuilder(VIRT)
    _add_virtual_nodes(virt, virtual_template)
    virt.add_edges(target=net.nodes(), connection_rule=_matrix_rule(inp), syn_weight=w_input, delay=1.0,
                   dynamics_params="static_syn.json", model_template="static_synapse")
    virt.build()
    virt.save(output_dir=str(net_dir))
    _poisson_inputs(dir / "inputs" / "virt_exc_spikes.h5", rate, run["tstop"], run["seed"])
    config = _write_config(dir, run["tstop"], run["dt"], run["nest_modules"], run["n_thread"],
                           [(NET, NET), (VIRT, NET)])
    return Network(dir=dir, config=config, output_dir=dir / "output")


def build_izhikevich_network(dir: Path, template: str = "nest:izhikevich", dynamics_params: dict | None = None,
                             nest_modules: ModulesArg = None, n: int = 10, seed: int = 1,
                             tstop: float = 1000.0, dt: float = 0.01, n_thread: int | None = None,
                             jitter: bool = False, recurrent_synapse: str = "static_synapse",
                             recurrent_params: dict | None = None, virtual_template: str | None = None) -> Network:
    """The tutorial's network: n recurrent cells of `template` driven by 10 virtual Poisson inputs.

    dynamics_params: the cells' JSON ({} or None: an empty file, NEST's defaults). jitter: a per-node `jitter`
    attribute (uniform 0.8..1.2, example 3). recurrent_synapse/recurrent_params: the recurrent edges' template and
    JSON (example 4: "tsodyks2_synapse", {"U": 0.5, "u": 0.5, "tau_rec": 800.0, "tau_fac": 0.0}). Virtual -> cell
    edges are static_synapse. virtual_template: a model_template for the virtual node type (none by default).
    """
    from bmtk.builder import NetworkBuilder

    dir = Path(dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    rng_rec, rng_in, rng_syns, rng_jit = _rngs(seed, 4)
    rec = _random_matrix(rng_rec, n, n, IZH_P_RECURRENT, no_self=True)
    inp = _random_matrix(rng_in, N_VIRTUAL, n, IZH_P_INPUT, no_self=False) * rng_syns.integers(1, 5, (N_VIRTUAL, n))
    jitters = rng_jit.uniform(0.8, 1.2, n)

    _write_json(dir / "components" / "cell_models" / "cell_params.json", dynamics_params or {})
    _write_json(dir / "components" / "synaptic_models" / "recurrent_syn.json", recurrent_params or {})
    _write_json(dir / "components" / "synaptic_models" / "static_syn.json", {})

    net = NetworkBuilder(NET)
    extra: dict[str, Any] = {"jitter": jitters} if jitter else {}
    net.add_nodes(N=n, pop_name="izh", ei="e", model_type="point_neuron", model_template=template,
                  dynamics_params="cell_params.json", **extra)
    net.add_edges(source=net.nodes(), target=net.nodes(), connection_rule=_matrix_rule(rec),
                  syn_weight=IZH_W_RECURRENT, delay=1.5, dynamics_params="recurrent_syn.json",
                  model_template=recurrent_synapse)
    return _with_inputs(dir, net, inp, IZH_W_INPUT, IZH_RATE, virtual_template,
                        dict(tstop=tstop, dt=dt, seed=seed, nest_modules=nest_modules, n_thread=n_thread))


# -- a NESTML neuron-synapse pair (STDP) ------------------------------------------------------------------------

STDP_P = 0.3  # recurrent plastic connection probability
STDP_W0 = 20.0  # initial plastic weight (pA); stdp_synapse keeps it in [Wmin, Wmax] = [0, 100] by default
STDP_W_INPUT = 600.0  # pA per virtual input synapse (iaf_psc_exp: C_m 250 pF, tau_syn 2 ms)
STDP_P_INPUT = 0.8
STDP_RATE = 40.0  # Hz per virtual node


def build_stdp_pair_network(dir: Path, neuron_template: str, synapse_template: str, synapse_params: dict | None = None,
                            nest_modules: ModulesArg = None, n: int = 10, seed: int = 1, tstop: float = 1000.0,
                            dt: float = 0.1, wrong_target_template: str | None = None) -> Network:
    """n cells of `neuron_template` (pop_name "pair") driven by 10 virtual Poisson inputs (static_synapse), with
    recurrent plastic edges whose model_template is `synapse_template` (any string, e.g. "stdp_synapse",
    "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml" or "nestml:..."), JSON from synapse_params. The cells
    fire at a moderate rate, so that pre and post both spike and the plastic weights change.

    wrong_target_template: also n cells (pop_name "other") of that template, driven the same way, which the plastic
    edges from the "pair" cells ALSO target (their own edge type), to test that a pair synapse whose target is not
    its partner neuron is refused.
    """
    from bmtk.builder import NetworkBuilder

    dir = Path(dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    n_other = n if wrong_target_template else 0
    total = n + n_other
    rng_rec, rng_in = _rngs(seed, 2)
    rec = _random_matrix(rng_rec, total, total, STDP_P, no_self=True)
    rec[n:, :] = 0  # only the "pair" cells are sources of plastic edges
    inp = _random_matrix(rng_in, N_VIRTUAL, total, STDP_P_INPUT, no_self=False)

    _write_json(dir / "components" / "cell_models" / "neuron_params.json", {})
    _write_json(dir / "components" / "synaptic_models" / "plastic_syn.json", synapse_params or {})
    _write_json(dir / "components" / "synaptic_models" / "static_syn.json", {})

    net = NetworkBuilder(NET)
    net.add_nodes(N=n, pop_name="pair", ei="e", model_type="point_neuron", model_template=neuron_template,
                  dynamics_params="neuron_params.json")
    if wrong_target_template:
        net.add_nodes(N=n_other, pop_name="other", ei="e", model_type="point_neuron",
                      model_template=wrong_target_template, dynamics_params="neuron_params.json")
    targets = ["pair", "other"] if wrong_target_template else ["pair"]
    for pop_name in targets:
        net.add_edges(source=net.nodes(pop_name="pair"), target=net.nodes(pop_name=pop_name),
                      connection_rule=_matrix_rule(rec), syn_weight=STDP_W0, delay=1.0,
                      dynamics_params="plastic_syn.json", model_template=synapse_template)
    return _with_inputs(dir, net, inp, STDP_W_INPUT, STDP_RATE, None,
                        dict(tstop=tstop, dt=dt, seed=seed, nest_modules=nest_modules, n_thread=None))


# -- the run script of example 3 (a @cell_model override) -------------------------------------------------------

OVERRIDE_SCRIPT = '''\
"""BMTK run script (tutorial example 3): a @cell_model override for {directive!r} that jitters d.

Usage: python run_override.py CONFIG.json [--registry]
With --registry, `from simulator import use_registry; use_registry()` runs first (nestml: resolution).
Prints one line "JITTERED_D <json>" per batch of cells it created: {{"template", "d_base", "jitter", "d"}}.
"""

import json
import sys

import nest
import numpy as np

from bmtk.simulator import pointnet
from bmtk.simulator.pointnet import cell_model
from bmtk.simulator.pointnet.io_tools import io

DIRECTIVE = {directive!r}
MULTIPLY_D_BY_JITTER = {multiply!r}


@cell_model(directive=DIRECTIVE, model_type="point_neuron")
def load_with_jitter(cell, template_name, dynamics_params):
    nodes = nest.Create(template_name, cell.n_nodes, dynamics_params)
    if MULTIPLY_D_BY_JITTER:
        if "d" in dynamics_params:
            d_base = np.full(cell.n_nodes, float(dynamics_params["d"]))
        else:  # an empty JSON: the model's default d
            d_base = np.atleast_1d(np.asarray(nodes.get("d"), dtype=float))
        jitter = np.asarray(cell["jitter"], dtype=float)
        d = d_base * jitter
        nodes.set(d=[float(x) for x in d])
        io.log_info(f"Modifying the parameters of {{cell.n_nodes}} {{template_name}} neurons.")
        got = np.atleast_1d(np.asarray(nodes.get("d"), dtype=float))
        print("JITTERED_D", json.dumps({{"template": template_name, "d_base": d_base.tolist(),
                                        "jitter": jitter.tolist(), "d": got.tolist()}}), flush=True)
    return nodes


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if "--registry" in argv:
        from nestml_registry.simulator import use_registry

        use_registry()
    configure = pointnet.Config.from_json(args[0])
    configure.build_env()
    network = pointnet.PointNetwork.from_config(configure)
    sim = pointnet.PointSimulator.from_config(configure, network)
    sim.run()


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def write_cell_model_override(dir: Path, directive: str, multiply_d_by_jitter: bool = True) -> Path:
    """Write dir/"run_override.py" (see OVERRIDE_SCRIPT); run it with run_plain_bmtk(config, script=...)."""
    path = Path(dir) / "run_override.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OVERRIDE_SCRIPT.format(directive=directive, multiply=bool(multiply_d_by_jitter)))
    return path


def read_jittered_d(stdout: str) -> list[dict[str, Any]]:
    """The "JITTERED_D" records that run_override.py printed, one per batch of cells."""
    prefix = "JITTERED_D "
    return [json.loads(line[len(prefix):]) for line in stdout.splitlines() if line.startswith(prefix)]


# -- running and reading ----------------------------------------------------------------------------------------


def run_plain_bmtk(config: Path, script: Path | None = None, env: Mapping[str, str | None] | None = None,
                   timeout: float = 600, cwd: Path | None = None,
                   args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run BMTK on `config` in a fresh `sys.executable` process (NEST's kernel state is per process).

    Without `script` it runs the five usual BMTK lines; with it, `python script config *args`. `env` entries are
    laid over a copy of os.environ (a None value removes a variable); PYNEST_QUIET=1 and OMP_NUM_THREADS=1 are
    defaults. cwd defaults to the config's folder (as in the tutorial). Output is captured as text; the
    returncode is not checked.
    """
    config = Path(config).resolve()
    full_env = dict(os.environ)
    full_env.setdefault("PYNEST_QUIET", "1")
    full_env.setdefault("OMP_NUM_THREADS", "1")
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    if script is None:
        cmd = [sys.executable, "-c", FIVE_LINES, str(config), *args]
    else:
        cmd = [sys.executable, str(script), str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=str(cwd or config.parent))


def read_spikes(output_dir: Path) -> list[tuple[int, float]]:
    """Sorted (node_id, timestamp) pairs from output_dir/spikes.csv, else output_dir/spikes.h5 (all populations)."""
    output_dir = Path(output_dir)
    csv = output_dir / "spikes.csv"
    spikes: list[tuple[int, float]] = []
    if csv.exists():
        lines = csv.read_text().split("\n")
        header = lines[0].split()
        i_node, i_time = header.index("node_ids"), header.index("timestamps")
        for line in lines[1:]:
            cols = line.split()
            if cols:
                spikes.append((int(cols[i_node]), float(cols[i_time])))
        return sorted(spikes)
    import h5py

    with h5py.File(output_dir / "spikes.h5", "r") as f:
        for pop in f["spikes"]:
            group = f["spikes"][pop]
            spikes.extend(zip(group["node_ids"][()].tolist(), group["timestamps"][()].tolist(), strict=True))
    return sorted((int(node), float(t)) for node, t in spikes)
