"""Real compiles of NESTML's shipped models, loaded and simulated in a fresh NEST."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_nest_script

from nestml_registry.compiler.integrity import sha256_file
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.compiler.result import BuildResult
from nestml_registry.compiler.sources import Source

IZH_COMPARE = r"""
import json, sys, nest
nest.set_verbosity("M_ERROR")
counts = {}
for model in ("izhikevich", "izhikevich_neuron_nestml"):
    for I_e in (5.0, 10.0, 20.0):
        nest.ResetKernel()          # unloads module models: install again each time
        nest.Install(sys.argv[1])
        n = nest.Create(model, params={"I_e": I_e})
        sr = nest.Create("spike_recorder")
        nest.Connect(n, sr)
        nest.Simulate(1000.0)
        counts[f"{model}@{I_e}"] = sr.n_events
print(json.dumps(counts))
"""


def test_izhikevich_fires_like_nest_builtin(izh_build: BuildResult) -> None:
    assert izh_build.module_name == "izhikevich_neuron_nestml_module"
    assert [(m.name, m.kind) for m in izh_build.models] == [("izhikevich_neuron_nestml", "neuron")]
    module = Path(izh_build.module_path or "")
    assert module.name == "izhikevich_neuron_nestml_module.so"
    assert izh_build.module_sha256 in str(module)  # the path carries the content hash
    assert sha256_file(module) == izh_build.module_sha256
    counts = json.loads(run_nest_script(IZH_COMPARE, str(module.with_suffix(""))))
    for I_e in (5.0, 10.0, 20.0):
        assert counts[f"izhikevich@{I_e}"] > 0
        assert counts[f"izhikevich_neuron_nestml@{I_e}"] == counts[f"izhikevich@{I_e}"]


def test_introspection_of_izhikevich(izh_build: BuildResult) -> None:
    (model,) = izh_build.models
    assert model.nestml_name == "izhikevich_neuron"
    assert model.source == "izhikevich_neuron.nestml"
    params = {p["name"]: p for p in model.parameters}
    assert params["c"]["type"] == "mV"
    assert params["c"]["default"] == "-65 mV"
    assert params["c"]["value"] == -65.0
    assert params["c"]["comment"]
    assert params["V_min"]["value"] == "-inf"  # not a JSON number: kept as text
    assert {s["name"] for s in model.state} == {"V_m", "U_m"}
    ports = {p["name"]: p for p in model.input_ports}
    assert ports["spikes"]["kind"] == "spike"
    assert ports["I_stim"]["kind"] == "continuous"
    assert ports["I_stim"]["type"] == "pA"


STDP_RUN = r"""
import json, sys, nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
pre = nest.Create("iaf_psc_exp", params={"I_e": 400.0})
post = nest.Create("iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml", params={"I_e": 400.0})
nest.Connect(pre, post, syn_spec={"synapse_model": "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml",
                                  "weight": 1.0})
before = nest.GetConnections(synapse_model="stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml").get("w")
nest.Simulate(300.0)
after = nest.GetConnections(synapse_model="stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml").get("w")
print(json.dumps({"before": before, "after": after}))
"""


def test_stdp_pair_weight_changes(stdp_pair_build: BuildResult) -> None:
    names = {m.name: m for m in stdp_pair_build.models}
    assert names["iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"].kind == "neuron"
    assert names["iaf_psc_exp_neuron_nestml"].kind == "neuron"
    syn = names["stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"]
    assert syn.kind == "synapse"
    assert sorted(syn.variants) == ["stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml_hpc",
                                    "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml_lbl"]
    assert syn.source == "stdp_synapse.nestml"
    assert any(p["name"] == "w" for p in syn.state)
    out = json.loads(run_nest_script(STDP_RUN, str(Path(stdp_pair_build.module_path or "").with_suffix(""))))
    assert out["before"] == 1.0
    assert out["after"] != out["before"]


STATIC_RUN = r"""
import json, sys, nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
a, b = nest.Create("iaf_psc_alpha", 2)
nest.Connect(a, b, syn_spec={"synapse_model": "static_synapse_nestml", "weight": 2.5})
print(json.dumps(nest.GetConnections(a, b).get("w")))
"""


def test_standalone_synapse_gets_a_suffix_and_a_weight(compiler: Compiler, models_dir: Path) -> None:
    src = Source.from_path(models_dir / "synapses" / "static_synapse.nestml")
    result = compiler.compile(BuildRequest.create([src]))
    assert result.ok, [d.format() for d in result.diagnostics]
    (syn,) = result.models
    assert (syn.name, syn.kind) == ("static_synapse_nestml", "synapse")
    assert sorted(syn.variants) == ["static_synapse_nestml_hpc", "static_synapse_nestml_lbl"]
    assert json.loads(run_nest_script(STATIC_RUN, str(Path(result.module_path or "").with_suffix("")))) == 2.5

    wrong = compiler.compile(BuildRequest.create([src], weight_variables={"static_synapse": "nope"}))
    assert wrong.status == "failed"
    (err,) = [d for d in wrong.diagnostics if d.severity == "error"]
    assert err.file == "static_synapse.nestml" and "'nope'" in err.message and "w" in err.message


DELAY_RUN = """
import json, sys, nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
a, b = nest.Create("parrot_neuron", 2)
nest.Connect(a, b, syn_spec={"synapse_model": "delayed_synapse_nestml", "delay": 2.5})
print(json.dumps(nest.GetConnections(a, b).get("dly")))
"""


def test_a_synapses_delay_variable_is_the_connections_delay(compiler: Compiler) -> None:
    """NESTML's delay_variable reaches code generation (PyNN's nestml_synapse_type(..., delay_variable=...),
    push --delay-variable): the synapse's own variable then is NEST's connection delay."""
    src = Source.from_path(Path(__file__).parent / "data" / "delayed_synapse.nestml")
    plain = compiler.compile(BuildRequest.create([src]))
    assert "delay_variables" not in BuildRequest.create([src]).to_dict()  # the build keys of such requests stay
    delayed = compiler.compile(BuildRequest.create([src], delay_variables={"delayed_synapse": "dly"}))
    assert plain.ok and delayed.ok, [d.format() for d in plain.diagnostics + delayed.diagnostics]
    assert json.loads(run_nest_script(DELAY_RUN, str(Path(plain.module_path or "").with_suffix("")))) == 1.0
    assert json.loads(run_nest_script(DELAY_RUN, str(Path(delayed.module_path or "").with_suffix("")))) == 2.5
    wrong = compiler.compile(BuildRequest.create([src], delay_variables={"delayed_synapse": "nope"}))
    (err,) = [d for d in wrong.diagnostics if d.severity == "error"]
    assert "'nope'" in err.message and "delay" in err.message and "dly" in err.message


def test_the_precompiled_header_is_compiled_in_the_sandbox(compiler: Compiler, izh_build: BuildResult) -> None:
    """Like every compile, the NEST header's is the sandbox user's (when the service runs as root), and
    nothing of its work folder is left."""
    import os
    import pwd

    from nestml_registry.compiler.pch import pch_header

    header = pch_header(compiler.toolchain, compiler.config.cache_dir)
    gch = header.with_name(header.name + ".gch")
    assert gch.is_file(), "the first build made the precompiled header"
    if os.geteuid() == 0 and compiler.sandbox.enabled:
        assert pwd.getpwuid(gch.stat().st_uid).pw_name == compiler.sandbox.config.user
    assert not [p for p in header.parent.iterdir() if p.name.startswith(".pch-")]
