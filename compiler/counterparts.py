"""NESTML's shipped models and the NEST built-ins they reimplement: the table the workers check each
version against (a version whose NESTML model name is in the table is run beside the built-in under the
check's stimuli, :mod:`nestml_registry.compiler.comparison`, and the verdict is stored with its
characterisation).

The table is versioned (:data:`VERSION`, stored with every verdict, beside the protocol's version), and
says for each model what NESTML's own test suite asserts of it and, where the two are known to differ,
why: a verdict of "differs" always comes with the reason when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

VERSION = 1

# NESTML's names for NEST's, where the shipped models and the built-ins spell a parameter differently;
# set on the built-in where it has the name (as a same-name parameter is), reported where it has not
RENAMES = {"refr_T": "t_ref", "tau_syn_exc": "tau_syn_ex", "tau_syn_inh": "tau_syn_in", "E_exc": "E_ex",
           "E_inh": "E_in", "tau_syn_rise_exc": "tau_rise_ex", "tau_syn_decay_exc": "tau_decay_ex",
           "tau_syn_rise_inh": "tau_rise_in", "tau_syn_decay_inh": "tau_decay_in", "tau_exc": "tau_syn_ex",
           "tau_inh": "tau_syn_in", "G_ahp": "g_ahp", "tau_syn_rise_E": "tau_rise_ex",
           "tau_syn_decay_E": "tau_decay_ex", "tau_syn_rise_I": "tau_rise_in",
           "tau_syn_decay_I": "tau_decay_in", "firing_rate": "rate"}

_EQUIVALENCE = "NESTML's test_nest_neuron_model_equivalence.py compares V_m and spike times with the built-in"
_SUBTHRESHOLD = ("NESTML's own tests compare the aeif models below threshold only: NEST's built-in detects a "
                 "spike inside its adaptive GSL integration loop, in the middle of a time step, and the NESTML "
                 "model after the step")

_AEIF_PSC = ("the same V_m below threshold; at 1.1 x rheobase both fire twice, 150 ms apart, and from 1.5 x the "
             "NESTML model fires more (14 against 12 at 1.5 x, 26 against 23 at 2 x): where "
             "each detects the threshold crossing differs (" + _SUBTHRESHOLD.split(": ", 1)[1] + "); that this "
             "is the cause is likely (the conductance-based aeif models agree) but not verified")


@dataclass(frozen=True)
class Counterpart:
    """A NEST built-in that a NESTML model reimplements: ``maps`` (NESTML name to NEST name) beyond
    :data:`RENAMES`, what NESTML's tests assert (``asserted``), and why the two differ where that is known
    (``differs_because``)."""

    builtin: str
    kind: str = "neuron"
    maps: dict[str, str] = field(default_factory=dict)
    asserted: str = ""
    differs_because: str | None = None
    rule: str = ""  # a synapse's protocol: stdp (weight traces) or stp (efficacies against frequency)
    post_maps: dict[str, str] = field(default_factory=dict)  # a synapse's parameters its post neuron holds

    def renames(self, declared: Iterable[str]) -> dict[str, str]:
        """The renames that apply to a model declaring ``declared`` (parameters and state variables)."""
        names = set(declared)
        return {k: v for k, v in {**RENAMES, **self.maps}.items() if k in names and k != v}

    def split(self, values: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """A synapse's parameter values as its NEST counterpart names them: (the synapse's, its post
        neuron's); a rename to "" leaves one out."""
        syn, post = {}, {}
        for name, value in values.items():
            if name in self.post_maps:
                post[self.post_maps[name]] = value
            elif self.maps.get(name, name):
                syn[self.maps.get(name, name)] = value
        return syn, post


_N = Counterpart
NEURONS: dict[str, Counterpart] = {
    "iaf_psc_alpha_neuron": _N("iaf_psc_alpha", asserted=_EQUIVALENCE),
    "iaf_psc_delta_neuron": _N("iaf_psc_delta", asserted=_EQUIVALENCE),
    "iaf_psc_delta_fixed_timestep_neuron": _N("iaf_psc_delta", asserted="none against a built-in"),
    "iaf_psc_exp_neuron": _N("iaf_psc_exp", asserted=_EQUIVALENCE),
    "iaf_cond_alpha_neuron": _N("iaf_cond_alpha", asserted=_EQUIVALENCE),
    "iaf_cond_beta_neuron": _N("iaf_cond_beta", asserted=_EQUIVALENCE + ", with a parameter mapping"),
    "iaf_cond_exp_neuron": _N("iaf_cond_exp", asserted=_EQUIVALENCE + " (rtol 1e-6: NEST integrates with GSL)"),
    "izhikevich_neuron": _N("izhikevich", asserted=_EQUIVALENCE),
    "hh_psc_alpha_neuron": _N("hh_psc_alpha", asserted=_EQUIVALENCE + " (spiking, rtol 1e-5)"),
    "hh_cond_exp_traub_neuron": _N("hh_cond_exp_traub", asserted=_EQUIVALENCE + " (below threshold and f-I)"),
    "aeif_cond_alpha_neuron": _N("aeif_cond_alpha", asserted=_SUBTHRESHOLD, differs_because=_SUBTHRESHOLD),
    "aeif_cond_alpha_alt_neuron": _N("aeif_cond_alpha", asserted=_SUBTHRESHOLD, differs_because=_SUBTHRESHOLD),
    "aeif_cond_exp_neuron": _N("aeif_cond_exp", asserted=_SUBTHRESHOLD, differs_because=_SUBTHRESHOLD),
    "aeif_psc_alpha_neuron": _N("aeif_psc_alpha", asserted="none against a built-in",
                                differs_because=_AEIF_PSC),
    "aeif_psc_exp_neuron": _N("aeif_psc_exp", asserted="none against a built-in",
                              differs_because=_AEIF_PSC),
    "iaf_chxk_2008_neuron": _N("iaf_chxk_2008", asserted="none: NESTML's test leaves it out because NESTML does "
                               "not support SpikeEvent.set_offset()",
                               differs_because="the two agree under weak steps; under the strongest the spike "
                               "times drift apart (9 ms) and the NESTML model fires one spike fewer (32 against "
                               "33). The "
                               "built-in places each spike, and starts its after-hyperpolarisation, at the threshold "
                               "crossing inside the time step (SpikeEvent.set_offset()), which NESTML cannot express "
                               "(the reason NESTML's own test leaves this comparison out): that this is the cause "
                               "is likely, not verified"),
    "iaf_cond_exp_sfa_rr_neuron": _N("iaf_cond_exp_sfa_rr", asserted="none: NESTML's test leaves it out",
                                     differs_because="the same spikes under weak steps, then the NESTML model fires "
                                     "one spike fewer under the strongest (12 against 13, 22 against 23); not "
                                     "investigated further "
                                     "(NESTML's own test suite leaves this comparison out)"),
    "iaf_psc_exp_htum_neuron": _N("iaf_psc_exp_htum", asserted="none against a built-in",
                                  differs_because="the built-in counts V_m from the resting potential (0 mV at "
                                  "rest), the NESTML model in absolute mV (E_L at rest): V_m differs by E_L "
                                  "throughout, while the spikes agree"),
    "ignore_and_fire_neuron": _N("ignore_and_fire", asserted="NESTML's test_ignore_and_fire.py: the spike count "
                                 "equals firing_rate; no comparison with the built-in",
                                 differs_because="both fire at firing_rate whatever their input, but the NESTML "
                                 "model starts halfway through its period (phase_steps = firing_period_steps / 2: "
                                 "its first spike after 50 ms at 10 Hz) and the built-in a whole period before its "
                                 "first (phase 1): the trains are half a period apart, one spike apart in a window"),
    "mat2_psc_exp_neuron": _N("mat2_psc_exp", maps={"omega": ""}, asserted="none against a built-in",
                              differs_because="the NESTML model's omega is its resting threshold relative to E_L "
                              "(19 mV, i.e. -51 mV), the built-in's is absolute (-51 mV), so omega is not carried "
                              "over (the built-in keeps its -51 mV). With the same threshold they still part: "
                              "spike times 8 ms apart at 1.1 x rheobase, then one and two spikes more for the "
                              "built-in at 1.5 and 2 x: where each applies the threshold's jump at a spike within "
                              "the time step is the likely cause, not verified"),
    "hill_tononi_neuron": _N("ht_neuron", asserted="none: NESTML's test leaves it out",
                             differs_because="the NESTML model names its parameters otherwise than ht_neuron "
                             "(AMPA_g_peak against g_peak_AMPA, Tau_m against tau_m, ...), so almost none carry "
                             "over; and with its own defaults it fires about 660 spikes in each 700 ms stimulus, "
                             "with or without input current, where ht_neuron fires none without it; not "
                             "investigated further"),
}
_STDP_MAPS = {"tau_tr_pre": "tau_plus", "w": "weight"}
_STDP_POST = {"tau_tr_post": "tau_minus"}
_STDP_TESTS = "NESTML's {} compares the weight after every spike with the built-in's (MAX_ABS_ERROR 1e-6)"
_NN_PHANTOM = ("NEST's nearest-neighbour built-ins count the connection's creation (t = 0) as a presynaptic spike "
               "(t_lastspike starts at 0), so a postsynaptic spike before the first real presynaptic spike is "
               "potentiated by lambda (1 - w/Wmax)^mu exp(-t_post / tau_plus): +0.07 for a post spike at 50 ms in "
               "the STDP window, where the NESTML model, whose presynaptic trace starts at 0, depresses by 0.001. "
               "Only such early spikes differ: from the first presynaptic spike on the weights agree exactly (the "
               "20 Hz trains agree to the last bit)")
_TRIPLET = ("A2_plus is declared 7.5e-10 but NESTML's generated synapse holds 0.75 (a unit conversion: the weight "
            "is in nS), and that is what the built-in is given as Aplus; with it the STDP window agrees, while over "
            "the 20 Hz trains the weights part by about 0.017: the triplet terms' update order is the likely cause, "
            "not verified")
_S = Counterpart
SYNAPSES: dict[str, Counterpart] = {
    "stdp_synapse": _S("stdp_synapse", "synapse", _STDP_MAPS, _STDP_TESTS.format("stdp_synapse_test.py"),
                       rule="stdp", post_maps=_STDP_POST),
    "stdp_nn_symm_synapse": _S("stdp_nn_symm_synapse", "synapse", _STDP_MAPS,
                               _STDP_TESTS.format("stdp_nn_synapse_test.py"), _NN_PHANTOM, rule="stdp",
                               post_maps=_STDP_POST),
    "stdp_nn_restr_symm_synapse": _S("stdp_nn_restr_synapse", "synapse", _STDP_MAPS,
                                     _STDP_TESTS.format("stdp_nn_synapse_test.py"), _NN_PHANTOM, rule="stdp",
                                     post_maps=_STDP_POST),
    "stdp_nn_pre_centered_synapse": _S("stdp_nn_pre_centered_synapse", "synapse", _STDP_MAPS,
                                       _STDP_TESTS.format("stdp_nn_synapse_test.py"), rule="stdp",
                                       post_maps=_STDP_POST),
    "stdp_triplet_synapse": _S("stdp_triplet_synapse", "synapse",
                               {"tau_x": "tau_plus_triplet", "A2_plus": "Aplus", "A3_plus": "Aplus_triplet",
                                "A2_minus": "Aminus", "A3_minus": "Aminus_triplet", "w": "weight"},
                               "NESTML's stdp_triplet_synapse_test.py compares the weights with the built-in's "
                               "(allclose, 1e-6)", _TRIPLET, rule="stdp",
                               post_maps={"tau_minus": "tau_minus", "tau_y": "tau_minus_triplet"}),
    "tsodyks_synapse": _S("tsodyks_synapse", "synapse", {"w": "weight"},
                          "NESTML's test_tsodyks_synapse.py compares the postsynaptic V_m with the built-in's",
                          rule="stp"),
}


def counterpart_of(nestml_name: str | None, kind: str = "neuron") -> Counterpart | None:
    """The NEST built-in a model of this NESTML name reimplements, or None."""
    return (NEURONS if kind == "neuron" else SYNAPSES).get(nestml_name or "")

