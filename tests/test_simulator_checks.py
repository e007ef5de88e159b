"""The simulator's logic around its boundaries: references, lock files, checks on plans and module files.

(The real runs, through a real registry, BMTK and NEST, are in test_simulator_runs.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nestml_registry.simulator import checks, install, lock
from nestml_registry.simulator.errors import SimulatorError
from nestml_registry.simulator.pairs import partner_of
from nestml_registry.simulator.plan import LocalToolchain, ModuleFile, Plan, Resolved
from nestml_registry.simulator.references import find_uses, reference_of

TC = LocalToolchain("nest3.10.0-linux-x86_64-gcc12.2.0-abi0-572123386539", "3.10.0", 0, "linux-x86_64",
                    frozenset({"iaf_psc_alpha", "izhikevich"}))
IZH_MODULE = ModuleFile("custom_izh_neuron_nestml_module", "a" * 64, ("custom_izh_neuron_nestml",))


def resolved(reference: str, model: str = "custom_izh_neuron_nestml", version: int = 1,
             module: ModuleFile = IZH_MODULE, kind: str = "neuron") -> Resolved:
    return Resolved(reference, model, version, kind, module, ("a", "b", "c", "d", "V_th"), ("V_m", "U_m"))


def plan_of(*items: Resolved) -> Plan:
    return Plan(TC, "http://registry:8000", {r.reference: r for r in items})


@pytest.mark.parametrize("template, reference", [
    ("nestml:custom_izh_neuron", "custom_izh_neuron"),
    ("nestml:custom_izh_neuron_nestml", "custom_izh_neuron_nestml"),
    (" nestml:custom_izh_neuron@12 ", "custom_izh_neuron@12"),
    ("nest:izhikevich", None), ("nestmlx:foo", None), (None, None), ("", None), ("izhikevich", None),
])
def test_references_in_templates(template, reference) -> None:
    assert reference_of(template) == reference


@pytest.mark.parametrize("template", ["nestml:", "nestml:foo@0", "nestml:foo@v2", "nestml:../../etc/passwd",
                                      "nestml:foo bar", "nestml:foo@1@2", "nestml:9lives"])
def test_invalid_references_say_how_to_write_one(template) -> None:
    with pytest.raises(SimulatorError, match="nestml:NAME@VERSION"):
        reference_of(template)


def test_uses_are_found_in_node_and_edge_types(tmp_path: Path) -> None:
    (tmp_path / "node_types.csv").write_text(
        "node_type_id model_template model_type dynamics_params\n"
        "100 nestml:custom_izh_neuron point_neuron izh.json\n101 nest:izhikevich point_neuron NULL\n"
        '102 "nestml:custom_izh_neuron@2" point_neuron NULL\n')
    (tmp_path / "edge_types.csv").write_text("edge_type_id model_template dynamics_params\n"
                                             "200 nestml:stdp_synapse__with_iaf_psc_exp_neuron stdp.json\n"
                                             "201 static_synapse NULL\n")
    uses = find_uses({"networks": {"nodes": [{"node_types_file": str(tmp_path / "node_types.csv")}],
                                   "edges": [{"edge_types_file": str(tmp_path / "edge_types.csv")}]}})
    assert [(u.kind, u.type_id, u.reference, u.dynamics_params) for u in uses] == [
        ("node", 100, "custom_izh_neuron", "izh.json"), ("node", 102, "custom_izh_neuron@2", None),
        ("edge", 200, "stdp_synapse__with_iaf_psc_exp_neuron", "stdp.json")]
    assert uses[0].where == f"node type 100 in {tmp_path / 'node_types.csv'}"


def test_a_missing_types_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="no such types file"):
        find_uses({"networks": {"nodes": [{"node_types_file": str(tmp_path / "nope.csv")}]}})


def test_lock_round_trip_and_damaged_locks(tmp_path: Path) -> None:
    plan = plan_of(resolved("custom_izh_neuron"), resolved("custom_izh_neuron_nestml@1"))
    path = lock.write(plan, tmp_path / "out", "/x/config.json")
    assert lock.read(path) == plan.resolved
    assert lock.toolchain_of(path)["id"] == TC.id
    assert json.loads(path.read_text())["modules"] == {IZH_MODULE.sha256: IZH_MODULE.to_dict()}
    for text in ("", "{", "[]", '{"nestml_registry_lock": 2}', '{"nestml_registry_lock": 1, "references": {}}'):
        path.write_text(text)
        with pytest.raises(SimulatorError, match="lock"):
            lock.read(path)
    with pytest.raises(SimulatorError, match="no such lock file"):
        lock.read(tmp_path / "missing.json")


def test_two_versions_of_one_model_are_refused() -> None:
    plan = plan_of(resolved("custom_izh_neuron@1"), resolved("custom_izh_neuron@2", version=2))
    with pytest.raises(SimulatorError, match=r"version 1 \(nestml:custom_izh_neuron@1\) and version 2"):
        checks.check_versions(plan)
    checks.check_versions(plan_of(resolved("custom_izh_neuron"), resolved("custom_izh_neuron_nestml@1")))


def test_modules_that_register_one_name_or_a_builtin_are_refused() -> None:
    other = ModuleFile("other_module", "b" * 64, ("custom_izh_neuron_nestml",))
    with pytest.raises(SimulatorError, match="both register 'custom_izh_neuron_nestml'"):
        checks.check_modules(plan_of(resolved("x"), resolved("y", model="custom_izh_neuron_nestml", module=other)))
    builtin = ModuleFile("izh_module", "c" * 64, ("izhikevich",))
    with pytest.raises(SimulatorError, match="which NEST has built in"):
        checks.check_modules(plan_of(resolved("izhikevich", model="izhikevich", module=builtin)))


def test_unknown_dynamics_params_name_the_closest_parameter(tmp_path: Path) -> None:
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "izh.json").write_text(json.dumps({"a": 0.02, "V_thr": 30.0, "U_m": 1.0}))
    (tmp_path / "nodes.csv").write_text("node_type_id model_template model_type dynamics_params\n"
                                        "100 nestml:custom_izh_neuron point_neuron izh.json\n")
    uses = find_uses({"networks": {"nodes": [{"node_types_file": str(tmp_path / "nodes.csv")}]}})
    components = {"point_neuron_models_dir": str(tmp_path / "cells")}
    with pytest.raises(SimulatorError, match="sets 'V_thr', which custom_izh_neuron_nestml@1 does not have; "
                                             "did you mean 'V_th'") as err:
        checks.check_params(plan_of(resolved("custom_izh_neuron")), uses, components)
    assert err.value.code == "invalid_parameter"
    (tmp_path / "cells" / "izh.json").write_text("[1, 2]")
    with pytest.raises(SimulatorError, match="not a JSON object"):
        checks.check_params(plan_of(resolved("custom_izh_neuron")), uses, components)
    (tmp_path / "cells" / "izh.json").unlink()
    with pytest.raises(SimulatorError, match="does not exist"):
        checks.check_params(plan_of(resolved("custom_izh_neuron")), uses, components)


def test_a_continuous_input_port_in_dynamics_params_is_named_as_one(tmp_path: Path) -> None:
    """The tutorial's model declares 'I_e pA <- continuous': a JSON that sets I_e is told why it cannot."""
    (tmp_path / "izh.json").write_text(json.dumps({"a": 0.02, "I_e": 5.0}))
    (tmp_path / "nodes.csv").write_text("node_type_id model_template model_type dynamics_params\n"
                                        "100 nestml:custom_izh_neuron point_neuron izh.json\n")
    uses = find_uses({"networks": {"nodes": [{"node_types_file": str(tmp_path / "nodes.csv")}]}})
    r = Resolved("custom_izh_neuron", "custom_izh_neuron_nestml", 1, "neuron", IZH_MODULE, ("a", "b", "c", "d"),
                 ("v", "u"), ("I_e",))
    with pytest.raises(SimulatorError, match="sets 'I_e', but in custom_izh_neuron_nestml@1 'I_e' is a continuous "
                                             "input port, not a parameter: a current drives it"):
        checks.check_params(plan_of(r), uses, {"point_neuron_models_dir": str(tmp_path)})
    plan = plan_of(r)
    assert lock.read(lock.write(plan, tmp_path / "out"))["custom_izh_neuron"].continuous_ports == ("I_e",)


def test_partners_of_paired_synapses() -> None:
    assert partner_of("stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml") == \
        "iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"
    assert partner_of("stdp_synapse_nestml") is None


def elf(machine: int = 62, symbols: bytes = b"_ZN4nest6Kernel3runEv") -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\0" * 11 + machine.to_bytes(2, "little") + b"\0" * 100 + symbols


@pytest.mark.parametrize("data, match", [
    (b"#!/bin/sh\n", "not a shared library"),
    (elf(symbols=b"_ZN4nest10ModelsList3addENSt7__cxx1112basic_stringIcEE"), r"C\+\+ string ABI 1, this NEST uses 0"),
])
def test_module_files_that_nest_cannot_load_are_refused(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "m.so"
    path.write_bytes(data)
    with pytest.raises(SimulatorError, match=match):
        install.check_file(path, IZH_MODULE, abi=0)


def test_a_module_for_another_machine_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install.platform, "machine", lambda: "x86_64")
    path = tmp_path / "m.so"
    path.write_bytes(elf(machine=183))
    with pytest.raises(SimulatorError, match="built for aarch64, this machine is x86_64"):
        install.check_file(path, IZH_MODULE, abi=0)
    path.write_bytes(elf())
    install.check_file(path, IZH_MODULE, abi=0)


def test_importing_the_simulator_imports_neither_nest_nor_bmtk() -> None:
    import subprocess
    import sys

    code = ("import sys, nestml_registry.simulator, nestml_registry.cli.run_command; "
            "print(sorted({'nest', 'bmtk'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_lock_cannot_name_a_path(tmp_path: Path) -> None:
    path = lock.write(plan_of(resolved("custom_izh_neuron")), tmp_path)
    doc = json.loads(path.read_text())
    doc["modules"][IZH_MODULE.sha256]["name"] = "../../../../tmp/evil"
    path.write_text(json.dumps(doc))
    with pytest.raises(SimulatorError, match="invalid module file name"):
        lock.read(path)
