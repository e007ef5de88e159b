"""How the CLI prints models: pairs together, NEST's defaults with their units, every version."""

from __future__ import annotations

import io

from nestml_registry.cli import console

PAIR_N = "iaf_psc_exp_neuron_nestml__with_stdp_synapse_nestml"
PAIR_S = "stdp_synapse_nestml__with_iaf_psc_exp_neuron_nestml"


def test_models_show_each_pair_together() -> None:
    models = [{"name": PAIR_S, "kind": "synapse", "version": 1, "versions": 1},
              {"name": "custom_izh_neuron_nestml", "kind": "neuron", "version": 2, "versions": 2},
              {"name": "iaf_psc_exp_neuron_nestml", "kind": "neuron", "version": 1, "versions": 1},
              {"name": PAIR_N, "kind": "neuron", "version": 1, "versions": 1}]
    out = io.StringIO()
    console.print_models(models, out)
    header, *rows = out.getvalue().splitlines()
    assert header.split()[-2:] == ["PAIRED", "WITH"]
    assert [r.split()[0] for r in rows] == [PAIR_S, PAIR_N, "custom_izh_neuron_nestml", "iaf_psc_exp_neuron_nestml"]
    assert rows[0].split()[-1] == PAIR_N and rows[1].split()[-1] == PAIR_S


def test_show_gives_nest_defaults_with_units_and_every_version() -> None:
    detail = {"name": "custom_izh_neuron_nestml", "kind": "neuron",
              "all_versions": [{"version": 10}, {"version": 2, "yanked": "wrong"}, {"version": 1}],
              "versions": [{"version": 2, "kind": "neuron", "yanked": {"reason": "wrong", "by": "ann"},
                            "parameters": [{"name": "a", "type": "real", "default": "0.02", "value": 0.02}],
                            "state": [{"name": "V_m", "type": "mV", "default": "V_m_init", "value": -65.0}]}]}
    out = io.StringIO()
    console.print_model(detail, "custom_izh_neuron_nestml@2", out)
    text = out.getvalue()
    assert "(versions 1, 2 (yanked), 10)" in text
    assert "yanked by ann: wrong" in text
    state_row = next(line for line in text.splitlines() if line.strip().startswith("V_m"))
    assert "-65 mV" in state_row
    assert "0.02" in next(line for line in text.splitlines() if line.strip().startswith("a "))
