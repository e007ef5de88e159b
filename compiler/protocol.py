"""The characterisation protocol: what a neuron model is put through, versioned and stored with every
result (``protocol``), so that a result always says how it was measured.

Read by the child that runs it in NEST (:mod:`nestml_registry.compiler.characterise`), by the worker
that stores it and by the service that shows it; none of them needs NEST to read this module.
"""

from __future__ import annotations

from typing import Any

VERSION = 2  # 2: the membrane variable found, a hyperpolarising step, features, time-step sensitivity

# every simulation: NEST's default resolution, each neuron from the model's initial state
RESOLUTION_MS = 0.1
# rheobase: the smallest constant current (added to the model's defaults) that gives at least one
# spike within WINDOW_MS; found by searching a grid of neurons at once, narrowed until hi - lo <= TOL * hi
WINDOW_MS = 1000.0
RHEOBASE_MAX_PA = 100_000.0  # no spike up to this: "does not fire"
RHEOBASE_TOLERANCE = 0.001
GRID = 32  # neurons per search round
# f-I curve: mean rate over WINDOW_MS at FI_POINTS currents from 0 to FI_SPAN x rheobase (one simulation)
FI_POINTS = 25
FI_SPAN = 3.0
FI_FALLBACK_MAX_PA = 1000.0  # the range for a model that fires without input (rheobase 0)
# step responses: STEP_BEFORE_MS at rest, STEP_MS of current, STEP_AFTER_MS at rest; V_m every TRACE_DT_MS
STEP_FACTORS = (0.5, 0.9, 1.1, 1.5, 2.0)  # x rheobase
STEP_BEFORE_MS, STEP_MS, STEP_AFTER_MS = 100.0, 500.0, 100.0
TRACE_DT_MS = 0.5
# PSP: one input spike at PSP_SPIKE_MS (delay 1 ms) of weight +-PSP_WEIGHT (the port's units: pA for
# current-based, nS for conductance-based inputs), V_m over PSP_MS every PSP_DT_MS
PSP_SPIKE_MS, PSP_MS, PSP_DT_MS, PSP_WEIGHT = 10.0, 100.0, 0.1, 100.0
PSP_TIMEOUT_S = 30.0  # the PSPs run in a NEST process of their own, stopped after this
MAX_TRACE_POINTS = 20_000
# version 2: the membrane potential recorded is the model's V_m, else its first state variable in volts;
# one hyperpolarising step of HYPER_FACTOR x rheobase (FI_FALLBACK_MAX_PA / FI_SPAN for a model that fires
# without input) gives the passive features; the spiking features come from the FEATURE_FACTOR step; the
# FEATURE_FACTOR step again at each of DT_STEPS_MS gives the coarsest step that keeps its spike times
HYPER_FACTOR = -0.5
FEATURE_FACTOR = 2.0
DT_STEPS_MS = (0.01, 0.025, 0.05, 0.1, 0.2)
# nestml-registry check: the same stimuli on two models (steps scaled to the first one's rheobase, and
# input spikes of a weight small enough to stay below threshold in most models)
CHECK_STEP_FACTORS = (0.5, 0.9, 1.1, 1.5, 2.0, 3.0)
CHECK_PSP_WEIGHT = 10.0


def describe() -> dict[str, Any]:
    """The protocol as stored with each result and shown to users."""
    return {
        "version": VERSION,
        "resolution_ms": RESOLUTION_MS,
        "injection": "a dc_generator into the model's continuous current input port if it has one, else its "
                     "I_e parameter (added to its default); a model with neither is not characterised",
        "rheobase": {"window_ms": WINDOW_MS, "max_pA": RHEOBASE_MAX_PA, "relative_tolerance": RHEOBASE_TOLERANCE,
                     "definition": "smallest constant current giving at least one spike within the window, "
                                   "from the model's initial state"},
        "fi_curve": {"points": FI_POINTS, "span": f"0 to {FI_SPAN:g} x rheobase", "window_ms": WINDOW_MS,
                     "rate": "spikes in the window / window length"},
        "steps": {"factors_of_rheobase": list(STEP_FACTORS), "before_ms": STEP_BEFORE_MS, "step_ms": STEP_MS,
                  "after_ms": STEP_AFTER_MS, "dt_ms": TRACE_DT_MS},
        "membrane": "the model's V_m, else its first state variable in volts (v of the Izhikevich models); "
                    "none: no step or PSP traces, and the page says why",
        "passive": {"factor_of_rheobase": HYPER_FACTOR, "definition": "a hyperpolarising step, as the steps"},
        "features": {"from": f"the {FEATURE_FACTOR:g} x rheobase step and the f-I curve"},
        "dt_sensitivity": {"dt_ms": list(DT_STEPS_MS), "step": f"{FEATURE_FACTOR:g} x rheobase",
                           "tolerance": "the check's: 1 ms + 0.01 x time since onset"},
        "psp": {"spike_ms": PSP_SPIKE_MS, "delay_ms": 1.0, "weight": PSP_WEIGHT, "duration_ms": PSP_MS,
                "dt_ms": PSP_DT_MS, "inputs": "each named spike receptor with +weight, else one port with "
                                              "+weight (excitatory) and -weight (inhibitory)"},
    }

# synapse checks (a NESTML synapse beside its NEST counterpart, each in its own little network):
# STDP rules: pre and post spike trains (SYNAPSE_RATE_HZ over SYNAPSE_MS, drawn once with SYNAPSE_SEED
# on the 1 ms grid), each pre spike through a parrot_neuron and the synapse into a post neuron that is
# made to fire at the post times (an input of FORCE_WEIGHT); the weight after every pre spike (a
# weight_recorder) is compared. The STDP window: one pairing per delay (post - pre, in WINDOW_DT_MS),
# read at a later pre spike (when NEST applies the potentiation).
SYNAPSE_SEED = 20261206
SYNAPSE_RATE_HZ = 20.0
SYNAPSE_MS = 1000.0
FORCE_WEIGHT = 99_999.0
# the post neurons' excitatory synaptic time constant (where they have one of these), so that a forcing
# input makes one spike, not a burst (as NESTML's own STDP tests set it)
FORCE_TAU_MS, FORCE_TAU_NAMES = 0.2, ("tau_syn_exc", "tau_syn_ex", "tau_syn", "tau_exc")
WINDOW_DT_MS = tuple(float(d) for d in range(-50, 55, 5))
WINDOW_PRE_MS, WINDOW_READ_MS = 100.0, 600.0
# short-term plasticity: SYNAPSE_PULSES pre spikes at each of STP_RATES_HZ into a reader neuron that
# integrates without leak, so each PSP is the synapse's efficacy; paired-pulse ratio (second / first)
# and steady state (last / first) against frequency
STP_RATES_HZ = (5.0, 10.0, 20.0, 50.0, 100.0)
SYNAPSE_PULSES = 10
# a weight (or efficacy) agrees within this, relative to max(1, |value|); NESTML's tests use 1e-6
WEIGHT_TOLERANCE = 1e-6
