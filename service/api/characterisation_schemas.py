"""The API's documents of how a model version behaves in NEST: its characterisation (``GET
/v1/models/{name}/versions/{version}/characterisation``), its check against its NEST counterpart, and the
requests that queue them again; apart from the database tables they are read from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nestml_registry.service.api.schemas import Kind


class FIPoint(BaseModel):
    current_pA: float = Field(description="Constant current injected (added to the model's defaults), pA")
    rate_hz: float = Field(description="Spikes in the protocol's window divided by its length, Hz")


class Trace(BaseModel):
    kind: Literal["step", "psp"]
    label: str
    current_pA: float | None = Field(None, description="A step's current, pA")
    weight: float | None = Field(None, description="A PSP's input spike weight (the port's units)")
    t0_ms: float = Field(description="Time of the first V_m sample, ms")
    dt_ms: float = Field(description="Time between V_m samples, ms")
    V_m: list[float] = Field(description="Membrane potential samples, mV")
    spikes_ms: list[float] = Field(default_factory=list, description="Spike times in the trace, ms")


class PreviousCharacterisation(BaseModel):
    version: int
    rheobase_pA: float | None = None
    fi_curve: list[FIPoint] = Field(default_factory=list)
    features: dict[str, float | None] = Field(default_factory=dict)


class ToolchainResult(BaseModel):
    toolchain: str
    status: str
    verdict: str | None = None
    rheobase_pA: float | None = None
    features: dict[str, float | None] = Field(default_factory=dict)
    finished_at: datetime | None = None
    changed: str | None = None


class DtRun(BaseModel):
    dt_ms: float
    spikes: int


class DtSensitivity(BaseModel):
    """The 2 x rheobase step at several time steps (protocol 2)."""

    current_pA: float
    runs: list[DtRun] = Field(default_factory=list)
    coarsest_dt_ms: float | None = Field(None, description="The coarsest step whose spike times stay within the "
                                                           "check's tolerance of the finest's")


class CheckRow(BaseModel):
    stimulus: str
    spikes: list[int] = Field(description="Spike counts: the model's, the counterpart's")
    max_spike_time_diff_ms: float | None = Field(None, description="None: the counts differ, no spikes are paired")
    max_vm_diff_mV: float | None = Field(None, description="Before the first spike; None: not comparable")
    max_weight_diff: float | None = Field(None, description="A synapse's: weights (or efficacies); None: the "
                                                            "counts differ")
    agree: bool


class CheckCurve(BaseModel):
    """A synapse's curve beside its counterpart's: the STDP window, or the paired-pulse ratio or steady
    state against frequency."""

    title: str
    x_label: str
    y_label: str
    x: list[float]
    model: list[float | None]
    reference: list[float | None]


class CheckVerdict(BaseModel):
    """A version against the NEST built-in its NESTML model reimplements (``compiler.counterparts``)."""

    verdict: Literal["agrees", "differs", "failed", "none"]
    summary: str = Field(description="One line: agrees with nest:X, differs from nest:X: what, no NEST counterpart")
    against: str | None = None
    explanation: str | None = Field(None, description="Why the two differ, where it is known")
    asserted: str | None = Field(None, description="What NESTML's own tests assert of this model")
    error: str | None = None
    protocol: int | None = Field(None, description="The check protocol's version (the characterisation's)")
    counterparts: int | None = Field(None, description="The version of the counterparts table")
    tolerances: dict[str, float] | None = None
    stimuli: list[CheckRow] = Field(default_factory=list)
    carried: list[dict[str, Any]] = Field(default_factory=list, description="Set on the built-in from the model, "
                                                                             "with values other than its defaults")
    unmapped: list[str] = Field(default_factory=list, description="The model's parameters the built-in lacks")
    not_aligned: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    curves: list[CheckCurve] = Field(default_factory=list)


class Characterisation(BaseModel):
    """How a neuron model version behaves in NEST under the registry's documented protocol (``protocol``)."""

    model: str
    version: int
    kind: Kind
    status: Literal["none", "queued", "running", "succeeded", "failed", "not_applicable"]
    reason: str | None = Field(None, description="Why there is no result (not_applicable, none, no spike)")
    error: str | None = Field(None, description="Why the characterisation failed (the module stays usable)")
    protocol: dict[str, Any] | None = Field(None, description="The protocol the result was measured with")
    injection: Literal["port", "I_e"] | None = Field(
        None, description="port: a dc_generator into its continuous current input; I_e: its I_e parameter")
    rheobase_pA: float | None = Field(None, description="Smallest constant current that gives a spike within "
                                                        "the window; 0: fires without input")
    fi_curve: list[FIPoint] = Field(default_factory=list)
    traces: list[Trace] = Field(default_factory=list)
    toolchain: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    previous: PreviousCharacterisation | None = Field(
        None, description="The newest older version's rheobase, f-I curve and features, to compare with")
    check: CheckVerdict | None = Field(None, description="Against its NEST counterpart")
    membrane: str | None = Field(None, description="The state variable recorded as the membrane potential "
                                                   "(protocol 2): V_m, else the first in volts")
    membrane_reason: str | None = Field(None, description="Why there are no traces: no membrane potential")
    psp_reason: str | None = Field(None, description="Why there are no PSP traces: their simulation stalled")
    features: dict[str, float | None] = Field(
        default_factory=dict, description="Protocol 2's features (input_resistance_MOhm, membrane_tau_ms, sag_ratio, "
                                          "first_spike_latency_ms, isi_cv, adaptation_index, fi_slope_Hz_per_pA, "
                                          "coarsest_dt_ms): compiler.features.DEFINITIONS says how each is measured")
    dt_sensitivity: DtSensitivity | None = None
    changed: str | None = Field(None, description="What differs from this version's result on another toolchain "
                                                  "(re-validation after a NEST or NESTML upgrade)")
    toolchains: list[ToolchainResult] = Field(default_factory=list, description="Its result on each toolchain")


class CharacteriseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=300, description="NAME (its newest version) or NAME@VERSION")
    all: bool = Field(False, description="Every neuron version you own (an admin: every one)")


class CharacteriseQueued(BaseModel):
    model: str
    version: int
    status: Literal["queued", "skipped"]
    toolchain: str | None = None
    reason: str | None = None
