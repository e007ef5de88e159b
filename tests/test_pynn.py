"""PyNN 0.13 through the registry: ``nestml_registry.pynn.use_registry()`` before ``sim.setup()`` turns PyNN's
pending NESTML types (inline text and files, a neuron-synapse pair) into one registry build; real PyNN from
PyPI, real NEST, a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA
from server_fixtures import ROOT, Server, client_env, server_fixture

pytestmark = pytest.mark.slow

server = server_fixture("pynn-server")
NEURON = (DATA / "tiny_neuron.nestml").read_text().replace("model tiny_neuron:", "model tiny_pynn_neuron:")

PYNN_SCRIPT = r"""
import json, sys
import pyNN.nest as sim
from nestml_registry.pynn import use_registry

use_registry(progress=False)
text, stdp, iaf = sys.argv[1], sys.argv[2], sys.argv[3]
cell = sim.nestml.nestml_cell_type("tiny_pynn_neuron", open(text).read())   # inline NESTML text
plastic = sim.nestml.nestml_synapse_type("stdp_synapse", stdp, postsynaptic_neuron_nestml_description=iaf,
                                         weight_variable="w")
out = {}
for run in ("first", "second"):
    sim.setup(timestep=0.1)
    pop = sim.Population(1, cell(I_e=500.0))
    pop.record("spikes")
    # the pair's types resolve to the names NESTML co-generates, and NEST has them (PyNN cannot create the
    # paired iaf_psc_exp neuron itself: NESTML's co-generated model lists unit_psc in its defaults but does not
    # take it back, and PyNN sets every default; its own build path meets the same)
    import nest
    out["pair"] = [plastic.nest_name, plastic.postsynaptic_cell_type.nest_name["on_grid"]]
    out["in_nest"] = plastic.nest_name in nest.synapse_models and out["pair"][1] in nest.node_models
    sim.run(300.0)
    spikes = pop.get_data().segments[0].spiketrains[0]
    out[run] = [round(float(t), 4) for t in spikes.magnitude]
    sim.end()
print("@@" + json.dumps(out))
"""

PYNEST_SCRIPT = r"""
import json
import nest
import nestml_registry
name = nestml_registry.install("tiny_pynn_neuron", progress=False)
nest.set(resolution=0.1)
cell = nest.Create(name, params={"I_e": 500.0})
recorder = nest.Create("spike_recorder")
nest.Connect(cell, recorder)
nest.Simulate(300.0)
print("@@" + json.dumps([round(float(t), 4) for t in recorder.get("events")["times"]]))
"""


def _run(server: Server, code: str, *args: str) -> object:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env=client_env(server.env, PYNEST_QUIET="1", OMP_NUM_THREADS="1"))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][2:])


def _builds(server: Server) -> int:
    proc = server.cli("builds", "--json", "--limit", "500")
    assert proc.returncode == 0, proc.stderr
    return len(json.loads(proc.stdout))


def test_pynn_builds_its_nestml_types_in_the_registry(server: Server, models_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "neuron.txt"  # read by the script, handed to PyNN as a string
    text.write_text(NEURON)
    stdp, iaf = models_dir / "synapses" / "stdp_synapse.nestml", models_dir / "neurons" / "iaf_psc_exp_neuron.nestml"
    out = _run(server, PYNN_SCRIPT, str(text), str(stdp), str(iaf))
    assert isinstance(out, dict) and out["first"] and out["second"] == out["first"]  # the second setup() installs
    assert out["pair"] == ["stdp_synapse__with_iaf_psc_exp_neuron", "iaf_psc_exp_neuron__with_stdp_synapse"]
    assert out["in_nest"]
    built = _builds(server)
    again = _run(server, PYNN_SCRIPT, str(text), str(stdp), str(iaf))  # a second script: the same build
    assert again == out and _builds(server) == built
    assert _run(server, PYNEST_SCRIPT) == out["first"]  # PyNEST with the same module: the same spike times
