"""The API's documents (pydantic), apart from the database tables they are read from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BuildStatusName = Literal["queued", "running", "succeeded", "failed"]
Kind = Literal["neuron", "synapse"]


class ErrorBody(BaseModel):
    code: str = Field(description="A stable, machine-readable code, e.g. not_found, invalid_input, too_large")
    message: str = Field(description="What is wrong and what to do about it")
    details: Any = Field(default_factory=dict, description="More about the error (depends on the code)")


class ErrorResponse(BaseModel):
    """The shape of every error answer."""

    error: ErrorBody


class ModuleRef(BaseModel):
    name: str = Field(description="The module name (NEST loads <name>.so)")
    sha256: str
    size: int | None = None
    url: str = Field(description="Where to download the .so")


class ModelRef(BaseModel):
    name: str = Field(description="The name NEST registers")
    kind: Kind
    version: int
    breaks: dict[str, Any] = Field(default_factory=dict, description="What this new version drops of the version "
                                   "before (published with --breaking): from_version, parameters, state, input_ports")


class Diagnostic(BaseModel):
    model_config = ConfigDict(extra="allow")

    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    severity: str = "error"
    message: str = ""
    code: str | None = None


class SourceRef(BaseModel):
    name: str
    sha256: str


class Build(BaseModel):
    """The build document (as `compile --json` prints it, docs/guides/publishing.md) plus the queue's view of
    the build."""

    id: int
    key: str = Field(description="The build key: sha256 over sources, options and toolchain")
    status: BuildStatusName
    toolchain: str
    stage: str | None = None
    attempts: int
    max_attempts: int
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    module: ModuleRef | None = None
    models: list[ModelRef] = Field(default_factory=list)
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=dict, description="module, suffix, pairs, weight variables")
    log_url: str
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage of the last attempt "
                                                                          "(codegen, build, load)")
    warnings: list[str] = Field(default_factory=list, description="e.g. queued while no worker of its toolchain "
                                                                  "is alive")


class RebuildRequest(BaseModel):
    """Build a published model version for a toolchain."""

    model_config = ConfigDict(extra="forbid")

    toolchain: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
                                  description="A toolchain id (GET /v1/toolchains); default: the newest one")
    retry: bool = Field(default=False, description="Queue a failed identical build again")


class ModelSummary(BaseModel):
    name: str
    kind: Kind
    version: int = Field(description="The newest version")
    versions: int = Field(description="How many versions there are")
    nestml_name: str | None = None
    owner: str | None = None
    created_at: datetime | None = None
    description: str = Field("", description="The first line of the model's leading comment")
    toolchains: list[str] = Field(default_factory=list, description="Toolchains the newest version is built for")
    verdict: Literal["agrees", "differs", "failed"] | None = Field(
        None, description="The newest version against its NEST counterpart (none: it has none, or not checked yet)")


class Variable(BaseModel):
    """A parameter or state variable: its unit (NESTML type), default expression and NEST's default value."""

    model_config = ConfigDict(extra="allow")

    name: str
    unit: str | None = None
    type: str | None = None
    default: Any = None
    value: Any = None
    comment: str | None = None


class InputPort(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str | None = None
    type: str | None = None
    size: str | None = None


class SourceText(BaseModel):
    name: str
    sha256: str
    text: str


class ModuleLink(BaseModel):
    toolchain: str
    sha256: str
    name: str
    size: int
    url: str
    build: int | None = Field(None, description="The build that made the module")


class ParameterChange(BaseModel):
    name: str
    change: Literal["added", "removed", "changed"]
    before: Any = Field(None, description="The default expression before (None: added)")
    after: Any = Field(None, description="The default expression after (None: removed)")
    unit_before: str | None = None
    unit_after: str | None = None


class ModelDiff(BaseModel):
    """What changed between two versions of a model."""

    model: str
    from_version: int
    to_version: int
    parameters: list[ParameterChange] = Field(default_factory=list)
    state: list[ParameterChange] = Field(default_factory=list)
    source_diff: str = Field(description="The sources' unified diff (empty: the same text)")


class Breaks(BaseModel):
    """What a version drops of the version before: every simulation that names these breaks."""

    parameters: list[str] = Field(default_factory=list)
    state: list[str] = Field(default_factory=list)
    input_ports: list[str] = Field(default_factory=list)


class VersionChanges(BaseModel):
    from_version: int
    parameters: list[ParameterChange] = Field(default_factory=list)
    state: list[ParameterChange] = Field(default_factory=list)
    breaks: Breaks = Field(default_factory=Breaks)
    comments_only: bool = Field(False, description="Only the source's comments differ from the version before")
    same_module: bool = Field(False, description="Its module is the version before's (on some toolchain)")


class Yanked(BaseModel):
    reason: str
    by: str | None = None
    at: datetime | None = None


class YankRequest(BaseModel):
    reason: str = Field(description="Why the version is withdrawn (shown to whoever pins it)", min_length=1,
                        max_length=500)


class Metadata(BaseModel):
    """What a model's comment says of it (registry.metadata), and the keywords it is found by."""

    authors: list[str] = Field(default_factory=list)
    license: str | None = Field(None, description="An SPDX identifier where it can be told (GPL-2.0-or-later)")
    references: list[str] = Field(default_factory=list)
    dois: list[str] = Field(default_factory=list)
    see_also: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list, description="integrate-and-fire, conductance-based, STDP, ...")


class MetadataUpdate(BaseModel):
    """What a version's owner says of it (``nestml-registry describe``): it replaces what was given before."""

    model_config = ConfigDict(extra="forbid")

    authors: list[str] = Field(default_factory=list, max_length=20)
    license: str | None = Field(None, max_length=64, description="An SPDX identifier: MIT, GPL-2.0-or-later, ...")
    references: list[str] = Field(default_factory=list, max_length=30)
    dois: list[str] = Field(default_factory=list, max_length=20, description="10.NNNN/suffix")
    keywords: list[str] = Field(default_factory=list, max_length=20)


class ModelVersion(BaseModel):
    version: int
    kind: Kind
    nestml_name: str | None = None
    content_digest: str
    created_at: datetime | None = None
    published_by: str | None = Field(None, description="Who published this version (a token's name; local)")
    yanked: Yanked | None = Field(None, description="Set when the version was withdrawn: an unpinned reference "
                                                    "never chooses it; NAME@VERSION and lock files still do")
    description: str = Field("", description="The first line of the model's leading comment")
    comment: str = Field("", description="The model's leading comment, as written")
    equations: str = Field("", description="The model's equations block, as written")
    metadata: Metadata = Field(default_factory=lambda: Metadata(license=None),
                               description="Read from the model's comment")
    paired_with: str | None = Field(None, description="A paired model's partner (as NEST names it)")
    changes: VersionChanges | None = Field(None, description="What changed since the version before")
    parameters: list[Variable] = Field(default_factory=list)
    state: list[Variable] = Field(default_factory=list)
    input_ports: list[InputPort] = Field(default_factory=list)
    receptor_types: dict[str, Any] = Field(default_factory=dict)
    variants: list[str] = Field(default_factory=list)
    source: SourceText | None = None
    modules: list[ModuleLink] = Field(default_factory=list)


class VersionNumber(BaseModel):
    version: int
    created_at: datetime | None = None
    yanked: str | None = Field(None, description="Why it was yanked, if it was")


class ModelDetail(BaseModel):
    name: str
    owner: str | None = None
    created_at: datetime | None = None
    kind: Kind | None = None
    version: int | None = Field(default=None, description="The newest version listed")
    versions: list[ModelVersion] = Field(description="Newest first; only the one asked for with NAME@VERSION")
    all_versions: list[VersionNumber] = Field(default_factory=list, description="Every version, newest first "
                                              "(also with NAME@VERSION)")


class Module(BaseModel):
    sha256: str
    name: str
    size: int
    toolchain: str
    created_at: datetime | None = None
    registers: list[str] = Field(description="Every name the module registers in NEST (variants included)")
    models: list[ModelRef] = Field(description="The model versions this module provides")
    url: str


class Resolution(BaseModel):
    model: str = Field(description="The name NEST registers")
    version: int
    kind: Kind
    module: ModuleRef
    toolchain: str
    yanked: str | None = Field(None, description="The reason, when a pinned reference names a yanked version")


class Resolutions(BaseModel):
    """The answer for several ``model`` parameters: one module set for one NEST process."""

    toolchain: str
    resolutions: list[Resolution]


class Toolchain(BaseModel):
    id: str
    first_seen: datetime
    last_seen: datetime
    details: dict[str, Any] = Field(default_factory=dict)
    approved: bool = Field(True, description="False: first reported by an HTTP worker and waiting for an admin "
                                             "(`nestml-registry toolchain approve ID`); nothing is built for it")
    first_seen_by: str | None = Field(None, description="The worker token's name that first reported it, if any")


class TokenInfo(BaseModel):
    id: int
    name: str = Field(description="The principal: who uses the token")
    role: str = Field(description="reader, publisher or admin")
    created_at: datetime
    revoked_at: datetime | None = None


class AuditEvent(BaseModel):
    id: int
    at: datetime
    actor: str | None = Field(description="the principal (a token's name; 'local' for anonymous publishing)")
    action: str = Field(description="publish, rebuild, token_create, token_revoke, owner")
    subject: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ToolchainHealth(BaseModel):
    """One toolchain's compile workers (by heartbeat) and the builds that wait for them."""

    toolchain: str
    live_workers: int
    queued: int
    running: int
    last_alive: datetime | None = Field(None, description="When a worker of it was last alive (now, if one is)")
    worker_retries: int = Field(0, description="Database or disk errors its live workers retried")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: a toolchain has queued builds and no live "
                                                          "worker (see problems)")
    database: Literal["ok"]
    sandbox: Literal["on", "off"] = Field(description="off when this server or the workers of a registered "
                                                       "toolchain run builds unsandboxed (NESTML_REGISTRY_SANDBOX=0)")
    unsandboxed_toolchains: list[str] = Field(default_factory=list)
    workers: list[ToolchainHealth] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="What makes the status degraded, and what to do")


class BuildSummary(BaseModel):
    """A build in a list: what ``GET /v1/builds/{id}`` answers in full."""

    id: int
    status: BuildStatusName
    toolchain: str
    stage: str | None = None
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    submitted_by: str = Field(description="The submitter's principal (a token's name; local)")
    module: str | None = Field(None, description="The module name asked for (or made)")
    sources: list[str] = Field(default_factory=list, description="The uploaded files' names")
    error: str | None = None
    url: str


class WorkerInfo(BaseModel):
    """A compile worker that reported lately: what it serves and what it is doing."""

    id: str
    toolchain: str
    host: str
    alive: bool
    started_at: datetime
    heartbeat_at: datetime
    build: int | None = Field(None, description="The build it is running")
    stage: str | None = Field(None, description="That build's stage")
    builds: int = Field(0, description="Builds it has finished")


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
