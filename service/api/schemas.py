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
