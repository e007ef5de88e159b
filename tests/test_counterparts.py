"""The counterparts table and the stored check documents, without NEST: what a worker's check document
may hold (an HTTP worker's is checked as the child's answer is), and how a verdict is said."""

from __future__ import annotations

import pytest

from nestml_registry.compiler import counterparts
from nestml_registry.compiler.checking import answer, stored_check
from nestml_registry.compiler.comparison import align
from nestml_registry.registry.verdicts import verdict_document

ROW = {"stimulus": "step 10 pA", "spikes": [3, 3], "max_spike_time_diff_ms": 0.1, "max_vm_diff_mV": 0.01,
       "agree": True}
CHECK = {"verdict": "differs", "against": "nest:izhikevich", "protocol": 1, "counterparts": 1, "asserted": "x",
         "model": "izhikevich_neuron_nestml@2", "agree": False, "processes": 1,
         "tolerances": {"spike_ms": 1.0, "drift": 0.01, "vm_mv": 0.5}, "unmapped": ["V_m_init"],
         "stimuli": [ROW, dict(ROW, spikes=[3, 4], max_spike_time_diff_ms=None, agree=False)],
         "carried": [{"name": "a", "value": 0.1, "default": 0.02}], "aligned": {"V_m": "V_m"}, "not_aligned": [],
         "membrane": ["V_m", "V_m"], "notes": []}


def test_a_check_document_is_kept_bounded_and_said_in_a_line() -> None:
    stored = stored_check(dict(CHECK, extra="dropped", explanation="<b>" * 1000))
    assert "extra" not in stored and len(stored["explanation"]) == 2000
    said = verdict_document(stored, "izhikevich_neuron", "neuron", "izhikevich_neuron_nestml@2")
    assert said["summary"] == "differs from nest:izhikevich: spike counts"
    vm = dict(CHECK, stimuli=[dict(ROW, max_vm_diff_mV=3.0, agree=False)])
    assert verdict_document(vm, None, "neuron", "x@1")["summary"] == "differs from nest:izhikevich: V_m"
    assert verdict_document(None, "izhikevich_neuron", "neuron", "x@1")["summary"].startswith(
        "not checked against nest:izhikevich yet: `nestml-registry characterise x@1`")
    assert verdict_document(None, "my_neuron", "neuron", "x@1") == {"verdict": "none", "against": None,
                                                                   "summary": "no NEST counterpart"}


@pytest.mark.parametrize("forged", [
    dict(CHECK, verdict="great"),
    dict(CHECK, stimuli=[dict(ROW, max_vm_diff_mV="a lot")]),
    dict(CHECK, tolerances={"spike_ms": float("nan"), "drift": 0, "vm_mv": 0}),
    dict(CHECK, carried=[{"name": "a"}]),
    {"verdict": "failed"},
])
def test_a_forged_check_document_is_refused(forged: dict) -> None:
    with pytest.raises((TypeError, ValueError, KeyError)):
        stored_check(forged)


def test_what_a_check_child_answers_is_checked() -> None:
    good = {"status": "succeeded", "stimuli": [{"kind": "step", "current_pA": 5.0}],
            "responses": [{"model": "m", "membrane": "V_m", "recorded": True, "not_set": [], "carried": [],
                           "results": [{"spikes_ms": [1.0], "V_m": [-70.0]}]}]}
    assert answer(good, 1)["responses"][0]["results"] == [{"spikes_ms": [1.0], "V_m": [-70.0]}]
    for forged in (dict(good, stimuli=[{"kind": "rm -rf"}]), dict(good, responses=[]),
                   dict(good, responses=[dict(good["responses"][0], results=[{"spikes_ms": ["x"]}])])):
        with pytest.raises((TypeError, ValueError, KeyError)):
            answer(forged, 1)


def test_nestml_names_are_renamed_to_nests_where_the_model_has_them() -> None:
    iaf = counterparts.counterpart_of("iaf_psc_exp_neuron")
    assert iaf is not None and iaf.builtin == "iaf_psc_exp"
    renames = iaf.renames(["refr_T", "tau_syn_exc", "C_m"])
    assert renames == {"refr_T": "t_ref", "tau_syn_exc": "tau_syn_ex"}
    a = align([{"name": "refr_T", "value": 2.0}, {"name": "C_m", "value": 250.0}], [], {}, renames)
    assert a.optional == {"t_ref": 2.0, "C_m": 250.0} and a.parameters == {"refr_T": "t_ref", "C_m": "C_m"}
    mat2 = counterparts.counterpart_of("mat2_psc_exp_neuron")
    assert mat2 is not None
    left_out = align([{"name": "omega", "value": 19.0}], [], {}, mat2.renames(["omega"]))
    assert left_out.optional == {} and left_out.parameters == {}
    assert counterparts.counterpart_of("my_own_neuron") is None
    assert all(c.differs_because or c.asserted for c in counterparts.NEURONS.values())


def test_a_re_validation_flags_what_moved_on_the_new_toolchain() -> None:
    from nestml_registry.registry.tables import Characterisation
    from nestml_registry.registry.verdicts import differences

    old = Characterisation(status="succeeded", verdict="agrees",
                           result={"rheobase_pA": 100.0, "features": {"membrane_tau_ms": 10.0, "isi_cv": None}})
    same = Characterisation(status="succeeded", verdict="agrees",
                            result={"rheobase_pA": 100.05, "features": {"membrane_tau_ms": 10.2, "isi_cv": None}})
    assert differences(old, same) == []
    moved = Characterisation(status="succeeded", verdict="differs",
                             result={"rheobase_pA": 120.0, "features": {"membrane_tau_ms": 12.0, "isi_cv": 0.1}})
    assert differences(old, moved) == ["against NEST agrees -> differs", "rheobase 100.0 -> 120.0 pA",
                                       "isi_cv None -> 0.1", "membrane_tau_ms 10.0 -> 12.0"]
