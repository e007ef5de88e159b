"""Protocol 2's features from traces, without NEST: closed forms of a leaky membrane, spike trains of
known intervals, and the coarsest time step that keeps spike times."""

from __future__ import annotations

import math

import pytest

from nestml_registry.compiler import features

DT = 0.1


def _lif_step(rest: float, r_gohm: float, tau: float, current: float, onset: float = 100.0,
              step: float = 500.0, after: float = 100.0) -> list[float]:
    """V_m of a leaky membrane (every DT from DT) under a current step: V = rest + R I (1 - exp(-t/tau))."""
    v = []
    for i in range(1, round((onset + step + after) / DT) + 1):
        t = i * DT
        if t <= onset:
            v.append(rest)
        elif t <= onset + step:
            v.append(rest + r_gohm * current * (1 - math.exp(-(t - onset) / tau)))
        else:
            end = r_gohm * current * (1 - math.exp(-step / tau))
            v.append(rest + end * math.exp(-(t - onset - step) / tau))
    return v


def test_passive_properties_of_a_leaky_membrane() -> None:
    out = features.passive(_lif_step(-65.0, 0.1, 20.0, -7.5), DT, 100.0, 500.0, -7.5)
    assert out["input_resistance_MOhm"] == pytest.approx(100.0, rel=0.01)
    assert out["membrane_tau_ms"] == pytest.approx(20.0, rel=0.01)
    assert out["sag_ratio"] == pytest.approx(0.0, abs=1e-6)
    sagging = _lif_step(-65.0, 0.1, 20.0, -7.5)
    sagging[round(150 / DT)] -= 2.0  # a dip below the steady state
    assert features.passive(sagging, DT, 100.0, 500.0, -7.5)["sag_ratio"] > 0
    assert features.passive(_lif_step(-65.0, 0.1, 20.0, 7.5), DT, 100.0, 500.0, 7.5)["membrane_tau_ms"] is None


def test_spiking_features_and_the_fi_slope() -> None:
    regular = features.spiking([110.0, 120.0, 130.0, 140.0], 100.0, 500.0)
    assert regular == {"first_spike_latency_ms": 10.0, "isi_cv": 0.0, "adaptation_index": 0.0}
    slowing = features.spiking([105.0, 110.0, 120.0, 140.0], 100.0, 500.0)
    assert slowing["adaptation_index"] == pytest.approx(1 / 3) and slowing["isi_cv"] > 0
    assert features.spiking([], 100.0, 500.0)["first_spike_latency_ms"] is None
    curve = [{"current_pA": c, "rate_hz": max(0.0, 2.0 * (c - 10))} for c in range(0, 40, 2)]
    assert features.fi_slope(curve, 10.0) == pytest.approx(2.0)
    assert features.fi_slope(curve, None) is None


def test_the_coarsest_time_step_that_keeps_the_spike_times() -> None:
    runs = {0.01: [110.0, 150.0], 0.05: [110.2, 150.3], 0.1: [110.5, 151.0], 0.2: [112.0, 156.0]}
    assert features.coarsest_dt(runs, 1.0, 0.01, 100.0) == 0.1
    assert features.coarsest_dt({0.01: [110.0], 0.1: []}, 1.0, 0.01, 100.0) == 0.01
    assert features.coarsest_dt({}, 1.0, 0.01, 100.0) is None
    assert set(features.DEFINITIONS) >= {"input_resistance_MOhm", "membrane_tau_ms", "coarsest_dt_ms"}


def _spiking_trace(peak: float) -> tuple[list[float], list[float]]:
    """-65 mV at rest, a slow rise to -55 mV (2.5 mV/ms), one spike at 150 ms: a 1 ms upstroke to ``peak``, a
    1 ms fall to -75 mV, back towards rest."""
    v = []
    for i in range(1, round(300 / DT) + 1):
        t = i * DT
        if 145.0 < t <= 149.0:
            v.append(-65.0 + 2.5 * (t - 145.0))
        elif 149.0 < t <= 150.0:
            v.append(-55.0 + (peak + 55.0) * (t - 149.0))
        elif 150.0 < t <= 151.0:
            v.append(peak - (peak + 75.0) * (t - 150.0))
        elif 151.0 < t <= 160.0:
            v.append(-75.0 + 10.0 * (t - 151.0) / 9.0)
        else:
            v.append(-65.0)
    return v, [150.0]


def test_the_spike_shape_of_a_waveform_and_none_for_a_reset() -> None:
    v, spikes = _spiking_trace(40.0)
    shape = features.spike_shape(v, DT, spikes, 100.0, 600.0)
    assert shape["spike_amplitude_mV"] == pytest.approx(40.0 + 55.0, abs=1.0)
    assert shape["spike_half_width_ms"] == pytest.approx(1.0, abs=0.15)
    assert shape["ahp_depth_mV"] == pytest.approx(20.0, abs=1.0)
    reset, spikes = _spiking_trace(-50.0)  # an integrate-and-fire reset: no waveform above -20 mV
    assert features.spike_shape(reset, DT, spikes, 100.0, 600.0) == {
        "spike_amplitude_mV": None, "spike_half_width_ms": None, "ahp_depth_mV": None}
    assert features.spike_shape(v, DT, [], 100.0, 600.0)["spike_amplitude_mV"] is None
